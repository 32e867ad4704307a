"""Each node's nginx: the one door between the analysis container and the node services.

The pod orchestration gives every analysis an nginx ``nginx-{DEPLOYMENT_NAME}`` (port 80)
with these locations (PrivateAIM/node-pod-orchestration, ``_create_nginx_config_map``), which
this class reproduces for requests *from the analysis*:

==========================================================  =========================  =======
location                                                    to                         rewrite
==========================================================  =========================  =======
``/healthz``                                                ``200 healthy``
``/kong``                                                   Kong (s3 data)             strip
``~ ^/storage/(final|local|intermediate)``                  storage service            strip
``/hub-adapter/kong/datastore/{PROJECT_ID}``                hub adapter                strip
``~ ^/message-broker/analyses/{ANALYSIS_ID}/participants``  message broker             strip
``~ ^/message-broker/analyses/{ANALYSIS_ID}/messages``      message broker             strip
``/message-broker/healthz``                                 message broker             strip
``/po/stream_logs``                                         pod orchestration (logs)   keep
``/analysis``                                               the analysis (port 8000)   strip
==========================================================  =========================  =======

``/analysis`` admits only the message broker and the pod orchestration, so the analysis
itself gets a 403 there; any other path is a 404. The node services reach the analysis
through :meth:`Gateway.to_analysis` (the ``/analysis`` location).
"""

from __future__ import annotations

import os
import re
import threading
from urllib.parse import urlsplit

from flame_offline.emulator.spec import AnalysisSpec, NodeSpec
from flame_offline.emulator.timeline import Timeline
from flame_offline.emulator.web import (
    Request,
    Response,
    UnixHTTPServer,
    request_over_unix_socket,
)

__all__ = ["Gateway"]


class Gateway:
    """One node's nginx, listening on a unix socket for the node's relay.

    Parameters
    ----------
    spec : AnalysisSpec
    node : NodeSpec
    services : object
        Holds ``broker``, ``storage``, ``datastores`` and ``logs`` (see the runner).
    socket_path : str
        Where the analysis side (the relay in the node's namespace) connects.
    analysis_socket : str
        Where the relay to the analysis's port 8000 listens (inside the namespace).
    timeline : Timeline
    """

    def __init__(self, spec, node, services, socket_path, analysis_socket, timeline) -> None:
        self.spec: AnalysisSpec = spec
        self.node: NodeSpec = node
        self.services = services
        self.socket_path = socket_path
        self.analysis_socket = analysis_socket
        self.timeline: Timeline = timeline
        analysis = re.escape(spec.analysis_id)
        self._broker_paths = re.compile(
            rf"^/message-broker/analyses/{analysis}/(participants(|/self)|messages(|/subscriptions))"
        )
        self._hub_adapter_prefix = f"/hub-adapter/kong/datastore/{spec.project_id}"
        self._server: UnixHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- the analysis's side
    def route(self, request: Request) -> Response:
        """Dispatch a request from the analysis as the node's nginx does."""
        path = request.path
        s = self.services
        if path == "/healthz" or path.startswith("/healthz/"):
            return Response.text(200, "healthy")
        if path.startswith("/kong"):
            return s.datastores.handle_kong(self.node, _strip(request, "/kong"))
        if re.match(r"^/storage/(final|local|intermediate)", path):
            return s.storage.handle(self.node, _strip(request, "/storage"))
        if path.startswith(self._hub_adapter_prefix):
            return s.datastores.handle_hub_adapter(self.node, _strip(request, "/hub-adapter"))
        if self._broker_paths.match(path) or path.startswith("/message-broker/healthz"):
            return s.broker.handle(self.node, _strip(request, "/message-broker"))
        if path.startswith("/po/stream_logs"):
            return s.logs.handle(self.node, request)
        if path.startswith("/analysis"):
            return Response(403, b"403 Forbidden", "text/html")
        self.timeline.record("request", self.node.name, method=request.method, path=path)
        return Response(404, b"404 Not Found", "text/html")

    def start(self) -> None:
        """Start serving the node's nginx socket in a daemon thread."""
        self._server = UnixHTTPServer(self.socket_path, self.route)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            daemon=True,
            name=f"nginx-{self.node.name}",
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving and remove the socket file."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)

    # ---------------------------------------------------------------- the services' side
    def to_analysis(self, method: str, url: str, body: bytes | None = None, timeout: float = 10.0):
        """Send a node service's request to ``url`` on this node's cluster.

        Only ``http://nginx-{DEPLOYMENT_NAME}/analysis/...`` leads anywhere (to port 8000).

        Returns ``(status, body)``; raises ``OSError`` when the host does not resolve or
        nothing answers (the analysis's API is not up, or its pod is gone).
        """
        parts = urlsplit(url)
        if parts.hostname != self.spec.nginx_host or (parts.port or 80) != 80:
            raise ConnectionError(f"{parts.netloc}: no such host on node {self.node.name}")
        if not (parts.path == "/analysis" or parts.path.startswith("/analysis/")):
            raise ConnectionError(f"{url}: only /analysis leads to the analysis")
        path = parts.path.removeprefix("/analysis") or "/"
        if parts.query:
            path += "?" + parts.query
        return request_over_unix_socket(
            self.analysis_socket,
            method,
            path,
            host=self.spec.nginx_host,
            body=body,
            timeout=timeout,
        )


def _strip(request: Request, prefix: str) -> Request:
    """Apply nginx's ``rewrite ^{prefix}(/.*) $1 break``."""
    path = request.path.removeprefix(prefix) or "/"
    return Request(request.method, path, request.query, request.headers, request.body)
