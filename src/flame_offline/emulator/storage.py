"""The storage service of every node (PrivateAIM/node-result-service), over one shared store.

The analysis reaches it as ``/storage`` through its nginx (which passes only ``/storage/final``,
``/storage/local`` and ``/storage/intermediate``):

- ``PUT /intermediate`` (multipart: ``file``, optional form field ``remote_node_id``) ->
  200 ``{"url": ".../intermediate/{object_id}", "object_id": ...}``. In production the object
  goes to the analysis's temporary bucket at the Hub, encrypted for ``remote_node_id``;
  here it is kept as it came (see the README for what that does not prove).
- ``GET /intermediate/{object_id}`` -> the object's bytes (404 when there is none). Any node
  of the analysis may fetch it, as from the Hub's bucket.
- ``PUT /final`` (multipart ``file``) -> 204: the analysis's result, as the analyst downloads
  it from the Hub.

``/local`` (a node's own tagged storage) is not emulated: its requests get a 501 naming the
route, and the run's summary lists them.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass

from flame_offline.emulator.spec import AnalysisSpec, NodeSpec
from flame_offline.emulator.timeline import Timeline
from flame_offline.emulator.web import Request, Response, parse_multipart

__all__ = ["FinalResult", "ResultStorage"]


@dataclass(frozen=True)
class FinalResult:
    """One final result as submitted: the uploading node, its file name and exact bytes."""

    node: str
    filename: str | None
    content: bytes


class ResultStorage:
    """Intermediate objects and final results of one analysis."""

    def __init__(self, spec: AnalysisSpec, timeline: Timeline) -> None:
        self.spec = spec
        self.timeline = timeline
        self._objects: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self.final_results: list[FinalResult] = []

    def handle(self, node: NodeSpec, request: Request) -> Response:
        """Answer a request from ``node``'s analysis (path without ``/storage``)."""
        if request.bearer() != node.keycloak_token:
            return Response.error(401, "invalid or missing access token")
        path = request.path.rstrip("/") or "/"
        if request.method == "PUT" and path == "/intermediate":
            return self._put(node, request, final=False)
        if request.method == "PUT" and path == "/final":
            return self._put(node, request, final=True)
        if request.method == "GET" and path.startswith("/intermediate/"):
            object_id = path.removeprefix("/intermediate/")
            with self._lock:
                content = self._objects.get(object_id)
            if content is None:
                return Response.error(404, f"Object with ID {object_id} does not exist")
            return Response(200, content, "application/octet-stream")
        if path.startswith(("/local", "/final/localdp")):
            self.timeline.record(
                "request", node.name, method=request.method, path="/storage" + path
            )
            return Response.error(501, f"{request.method} /storage{path} is not emulated")
        return Response.error(404, "Not Found")

    def _put(self, node: NodeSpec, request: Request, *, final: bool) -> Response:
        try:
            fields = parse_multipart(request.headers.get("content-type", ""), request.body)
        except ValueError as exc:
            return Response.error(422, str(exc))
        if "file" not in fields:
            return Response.error(422, "field 'file' is required")
        filename, content = fields["file"]
        if final:
            with self._lock:
                self.final_results.append(FinalResult(node.name, filename, content))
            self.timeline.record("stored", node.name, where="final", bytes=len(content))
            return Response(204, content_type="application/json")
        remote = fields.get("remote_node_id", (None, b""))[1].decode("utf-8", "replace") or None
        recipient = self.spec.by_id(remote) if remote else None
        if remote is not None and recipient is None:
            return Response.error(404, f"Remote node with ID {remote} does not exist.")
        object_id = str(uuid.uuid4())
        with self._lock:
            self._objects[object_id] = content
        self.timeline.record(
            "stored",
            node.name,
            where="intermediate",
            bytes=len(content),
            recipient=recipient.name if recipient else None,
        )
        url = f"http://{self.spec.nginx_host}/storage/intermediate/{object_id}"
        return Response.json(200, {"url": url, "object_id": object_id})
