"""The storage service: intermediate objects, final results, what is not emulated."""

from __future__ import annotations

import json

import pytest
from _services import make_spec, multipart, sdk_request

from flame_offline.emulator.storage import ResultStorage
from flame_offline.emulator.timeline import Timeline


@pytest.fixture
def setup(tmp_path):
    spec = make_spec(tmp_path)
    return spec, ResultStorage(spec, Timeline())


def put(storage, node, path, fields):
    content_type, body = multipart(fields)
    return storage.handle(
        node, sdk_request(node, "PUT", path, body=body, content_type=content_type)
    )


def test_intermediate_object_round_trip(setup):
    spec, storage = setup
    node1 = spec.node("node1")
    blob = bytes(range(256))
    response = put(
        storage,
        node1,
        "/intermediate",
        {"file": ("r", blob), "remote_node_id": (None, spec.aggregator.node_id.encode())},
    )
    assert response.status == 200
    answer = json.loads(response.body)
    assert answer["url"] == f"http://{spec.nginx_host}/storage/intermediate/{answer['object_id']}"
    # the SDK takes the id from the url's last segment; any node of the analysis may fetch it
    object_id = answer["url"].split("/")[-1]
    agg = spec.aggregator
    fetched = storage.handle(
        agg, sdk_request(agg, "GET", f"/intermediate/{object_id}?remote_node_id={node1.node_id}")
    )
    assert (fetched.status, fetched.body) == (200, blob)
    [event] = storage.timeline.events("stored")
    assert event.data == {"where": "intermediate", "bytes": 256, "recipient": "aggregator"}


def test_final_result_is_kept_byte_for_byte(setup):
    spec, storage = setup
    agg = spec.aggregator
    response = put(storage, agg, "/final/", {"file": ("result_1", b"\x80\x04pickle\r\n")})
    assert (response.status, response.body) == (204, b"")
    [result] = storage.final_results
    assert (result.node, result.filename, result.content) == (
        "aggregator",
        "result_1",
        b"\x80\x04pickle\r\n",
    )


@pytest.mark.parametrize(
    ("method", "path", "fields", "status", "detail"),
    [
        ("GET", "/intermediate/nope", None, 404, "Object with ID nope does not exist"),
        ("PUT", "/intermediate", {"other": (None, b"x")}, 422, "field 'file' is required"),
        (
            "PUT",
            "/intermediate",
            {"file": ("f", b"x"), "remote_node_id": (None, b"ghost")},
            404,
            "Remote node with ID ghost does not exist.",
        ),
        ("PUT", "/local", {"file": ("f", b"x")}, 501, "PUT /storage/local is not emulated"),
        ("GET", "/local/tags", None, 501, "GET /storage/local/tags is not emulated"),
    ],
)
def test_refused_requests(setup, method, path, fields, status, detail):
    spec, storage = setup
    node1 = spec.node("node1")
    if fields is None:
        response = storage.handle(node1, sdk_request(node1, method, path))
    else:
        response = put(storage, node1, path, fields)
    assert response.status == status
    assert json.loads(response.body) == {"detail": detail}


def test_token_is_required(setup):
    spec, storage = setup
    node1 = spec.node("node1")
    request = sdk_request(
        node1, "GET", "/intermediate/x", authorization=f"Bearer {spec.aggregator.keycloak_token}x"
    )
    assert storage.handle(node1, request).status == 401
