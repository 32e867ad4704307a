"""Each node's nginx: which path goes where, and the way to the analysis."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from _services import make_spec, sdk_request

from flame_offline.emulator.gateway import Gateway
from flame_offline.emulator.timeline import Timeline
from flame_offline.emulator.web import Response


class Service:
    def __init__(self, name):
        self.name = name

    def __getattr__(self, method):
        def handle(node, request):
            return Response.json(
                200, {"service": self.name, "method": method, "path": request.path}
            )

        return handle


@pytest.fixture
def gateway(tmp_path):
    spec = make_spec(tmp_path)
    services = SimpleNamespace(
        broker=Service("broker"),
        storage=Service("storage"),
        datastores=Service("datastores"),
        logs=Service("logs"),
    )
    return Gateway(
        spec,
        spec.node("node1"),
        services,
        str(tmp_path / "n.sock"),
        str(tmp_path / "a.sock"),
        Timeline(),
    )


def test_routes(gateway):
    spec = gateway.spec
    a, p = spec.analysis_id, spec.project_id
    table = {
        "/kong/x-s3/s3/key": ("datastores", "handle_kong", "/x-s3/s3/key"),
        "/storage/intermediate": ("storage", "handle", "/intermediate"),
        "/storage/final": ("storage", "handle", "/final"),
        f"/hub-adapter/kong/datastore/{p}": (
            "datastores",
            "handle_hub_adapter",
            f"/kong/datastore/{p}",
        ),
        f"/message-broker/analyses/{a}/participants/self": (
            "broker",
            "handle",
            f"/analyses/{a}/participants/self",
        ),
        f"/message-broker/analyses/{a}/messages/subscriptions": (
            "broker",
            "handle",
            f"/analyses/{a}/messages/subscriptions",
        ),
        "/message-broker/healthz": ("broker", "handle", "/healthz"),
        "/po/stream_logs": ("logs", "handle", "/po/stream_logs"),
    }
    for path, (service, method, forwarded) in table.items():
        response = gateway.route(sdk_request(gateway.node, "GET", path))
        assert response.status == 200, path
        assert (
            response.body
            == Response.json(200, {"service": service, "method": method, "path": forwarded}).body
        )


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/healthz", 200),
        ("/analysis/healthz", 403),  # only the broker and the pod orchestration may go there
        ("/message-broker/analyses/other-analysis/participants", 404),
        ("/hub-adapter/kong/datastore/other-project", 404),
        ("/storage/elsewhere", 404),
        ("/", 404),
    ],
)
def test_nginx_answers_itself(gateway, path, status):
    assert gateway.route(sdk_request(gateway.node, "GET", path)).status == status


def test_unknown_paths_are_recorded(gateway):
    gateway.route(sdk_request(gateway.node, "POST", "/nowhere"))
    [event] = gateway.timeline.events("request")
    assert (event.node, event.data) == ("node1", {"method": "POST", "path": "/nowhere"})


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("http://elsewhere/analysis/webhook", "elsewhere: no such host on node node1"),
        ("http://{host}:8000/analysis/webhook", "no such host"),
        ("http://{host}/webhook", "only /analysis leads to the analysis"),
    ],
)
def test_to_analysis_only_through_the_analysis_location(gateway, url, match):
    with pytest.raises(ConnectionError, match=match):
        gateway.to_analysis("POST", url.format(host=gateway.spec.nginx_host), b"{}")


def test_to_analysis_fails_when_the_api_is_not_up(gateway):
    with pytest.raises(FileNotFoundError, match="No such file or directory"):
        gateway.to_analysis("GET", f"http://{gateway.spec.nginx_host}/analysis/healthz", timeout=1)
