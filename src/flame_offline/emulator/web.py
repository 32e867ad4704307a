"""Plain HTTP/1.1 over unix sockets: the emulator's server, client and request parsing.

Every service of the emulated node is an ordinary HTTP server, but it listens on a unix socket
(a path in the run directory): the node's network namespace reaches it through a relay, and
nothing of the emulator ever listens on a TCP port of the host.
"""

from __future__ import annotations

import http.client
import json
import socket
import socketserver
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "Request",
    "Response",
    "UnixHTTPConnection",
    "UnixHTTPServer",
    "parse_multipart",
    "request_over_unix_socket",
]

MAX_BODY = 1 << 30  # what one request may carry (1 GiB); larger ones are refused with 413


@dataclass
class Request:
    """One HTTP request as a service sees it.

    ``path`` is without the query string; ``headers`` has lower-case names.
    """

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self):
        """Parse the body as JSON (``ValueError`` when it is not)."""
        return json.loads(self.body.decode("utf-8"))

    def bearer(self) -> str | None:
        """Return the token of an ``Authorization: Bearer ...`` header, if any."""
        value = self.headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None


@dataclass
class Response:
    """What a service answers: status, body and content type (plus any extra headers)."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload) -> Response:
        """Return a response with ``payload`` as JSON."""
        return cls(status, json.dumps(payload).encode("utf-8"))

    @classmethod
    def text(cls, status: int, text: str) -> Response:
        """Return a plain-text response."""
        return cls(status, text.encode("utf-8"), "text/plain; charset=utf-8")

    @classmethod
    def error(cls, status: int, detail: str) -> Response:
        """FastAPI's error shape, ``{"detail": ...}``, which the node services use."""
        return cls.json(status, {"detail": detail})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as nginx speaks to its clients
    server_version = "nginx"
    sys_version = ""

    def _handle(self) -> None:
        try:
            body = self._read_body()
        except ValueError as exc:
            self._send(Response.error(400, str(exc)))
            self.close_connection = True
            return
        except _TooLarge:
            self._send(Response.error(413, "request entity too large"))
            self.close_connection = True
            return
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        try:
            response = self.server.app(request)
        except Exception as exc:  # a bug in a service must not kill the connection thread
            response = Response.error(500, f"{type(exc).__name__}: {exc}")
        self._send(response)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise ValueError("connection closed inside a chunked body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise _TooLarge
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise _TooLarge
        return self.rfile.read(length) if length else b""

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_message(self, format, *args) -> None:
        pass  # requests are recorded by the services themselves


class _TooLarge(Exception):
    pass


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """A threaded HTTP/1.1 server on a unix socket that hands each request to ``app``.

    Parameters
    ----------
    path : str
        Where the socket is created.
    app : callable
        ``app(Request) -> Response``; called from one thread per connection.
    """

    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, path: str, app) -> None:
        self.app = app
        super().__init__(path, _Handler)


class UnixHTTPConnection(http.client.HTTPConnection):
    """``http.client.HTTPConnection`` whose transport is a unix socket.

    ``host`` is only what goes into the ``Host`` header.
    """

    def __init__(self, socket_path: str, host: str, timeout: float) -> None:
        super().__init__(host, timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        """Connect to the Unix socket instead of a TCP host."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def request_over_unix_socket(
    socket_path: str,
    method: str,
    path: str,
    *,
    host: str,
    body: bytes | None = None,
    content_type: str = "application/json",
    timeout: float = 10.0,
) -> tuple[int, bytes]:
    """Send one request (``Connection: close``) and return ``(status, body)``.

    Raises
    ------
    OSError
        When nothing listens behind the socket or the connection breaks (including timeouts).
    """
    connection = UnixHTTPConnection(socket_path, host, timeout)
    try:
        headers = {"Connection": "close"}
        if body is not None:
            headers["Content-Type"] = content_type
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    except http.client.HTTPException as exc:
        raise ConnectionError(f"broken HTTP exchange: {type(exc).__name__}: {exc}") from exc
    finally:
        connection.close()


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """Parse the fields of a ``multipart/form-data`` body, byte-exact.

    Returns
    -------
    dict
        Field name -> ``(filename or None, content)``.

    Raises
    ------
    ValueError
        When the content type has no boundary or the body is not well-formed multipart.
    """
    mime, _, params = content_type.partition(";")
    if mime.strip().lower() != "multipart/form-data":
        raise ValueError(f"expected multipart/form-data, got {mime.strip() or 'no content type'}")
    boundary = None
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary":
            boundary = value.strip().strip('"')
    if not boundary:
        raise ValueError("multipart/form-data without a boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    pieces = body.split(delimiter)
    if len(pieces) < 3 or not pieces[-1].startswith(b"--"):
        raise ValueError("malformed multipart body (no closing boundary)")
    fields: dict[str, tuple[str | None, bytes]] = {}
    for piece in pieces[1:-1]:
        if not piece.startswith(b"\r\n") or not piece.endswith(b"\r\n"):
            raise ValueError("malformed multipart body (part not delimited by CRLF)")
        head, sep, content = piece[2:-2].partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("malformed multipart body (part without headers)")
        name = filename = None
        for line in head.decode("latin-1").split("\r\n"):
            header, _, value = line.partition(":")
            if header.strip().lower() != "content-disposition":
                continue
            for param in value.split(";")[1:]:
                key, _, raw = param.strip().partition("=")
                raw = raw.strip()
                if raw.startswith('"') and raw.endswith('"'):
                    raw = raw[1:-1].replace('\\"', '"')
                if key.lower() == "name":
                    name = raw
                elif key.lower() == "filename":
                    filename = raw
        if name is None:
            raise ValueError("malformed multipart body (part without a name)")
        fields[name] = (filename, content)
    return fields
