"""The HTTP plumbing: multipart parsing, the unix-socket server and client."""

from __future__ import annotations

import socket
import threading

import pytest
from _services import multipart

from flame_offline.emulator.web import (
    Response,
    UnixHTTPServer,
    parse_multipart,
    request_over_unix_socket,
)


@pytest.mark.parametrize(
    "content",
    [b"", b"plain", b"\r\n--b0und4\r", bytes(range(256)) * 4, b"ends with CRLF\r\n"],
)
def test_multipart_is_byte_exact(content):
    content_type, body = multipart(
        {"file": ("result_ab12", content), "remote_node_id": (None, b"x")}
    )
    fields = parse_multipart(content_type, body)
    assert fields == {"file": ("result_ab12", content), "remote_node_id": (None, b"x")}


def test_multipart_quoted_boundary():
    _, body = multipart({"file": ("f", b"abc")}, boundary="q-1")
    assert parse_multipart('multipart/form-data; boundary="q-1"', body)["file"] == ("f", b"abc")


@pytest.mark.parametrize(
    ("content_type", "body", "match"),
    [
        ("application/json", b"{}", "expected multipart/form-data, got application/json"),
        ("multipart/form-data", b"", "without a boundary"),
        ("multipart/form-data; boundary=x", b"--x\r\nabc", "no closing boundary"),
        ("multipart/form-data; boundary=x", b"--x\r\nno-blank-line\r\n--x--", "without headers"),
    ],
)
def test_multipart_errors(content_type, body, match):
    with pytest.raises(ValueError, match=match):
        parse_multipart(content_type, body)


@pytest.fixture
def server(tmp_path):
    seen = []

    def app(request):
        seen.append(request)
        if request.path == "/boom":
            raise RuntimeError("bug")
        return Response.json(
            200, {"path": request.path, "query": request.query, "n": len(request.body)}
        )

    path = str(tmp_path / "s.sock")
    srv = UnixHTTPServer(path, app)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield path, seen
    srv.shutdown()
    srv.server_close()


def test_server_round_trip(server):
    path, seen = server
    status, body = request_over_unix_socket(
        path, "PUT", "/x/y?a=1&b=", host="nginx-a", body=b"12345", timeout=5
    )
    assert status == 200
    assert body == b'{"path": "/x/y", "query": {"a": "1", "b": ""}, "n": 5}'
    assert seen[0].method == "PUT"
    assert seen[0].headers["host"] == "nginx-a"


def test_server_reads_chunked_bodies(server):
    path, seen = server
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(
            b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n"
            b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n"
        )
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200")
    assert seen[0].body == b"abcde"


def test_server_turns_a_service_bug_into_a_500(server):
    path, _ = server
    status, body = request_over_unix_socket(path, "GET", "/boom", host="h", timeout=5)
    assert (status, body) == (500, b'{"detail": "RuntimeError: bug"}')


def test_client_raises_oserror_when_nothing_listens(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such file or directory"):
        request_over_unix_socket(str(tmp_path / "none.sock"), "GET", "/", host="h", timeout=1)
