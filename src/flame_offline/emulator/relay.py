"""Byte relays between a pod's loopback and the host's unix sockets.

Inside a node's network namespace two relays run (in the pod's first process):

- ``127.0.0.1:80`` (where ``nginx-$DEPLOYMENT_NAME`` resolves) -> the node's nginx socket on
  the host side;
- the node's analysis socket -> ``127.0.0.1:8000`` (the SDK's own API), for the broker's
  webhook deliveries and the orchestrator's status checks.

Unix sockets with a path belong to the file system, not to a network namespace, so these
connections cross between the pod and the emulator without any network address.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading

__all__ = ["Relay"]

_CHUNK = 1 << 16


class Relay:
    """Accept on ``listen`` and pipe every connection to ``target``.

    Parameters
    ----------
    listen : tuple or str
        ``(host, port)`` for TCP, or a unix socket path.
    target : tuple or str
        Where each accepted connection is relayed to (same forms).
    """

    def __init__(self, listen, target) -> None:
        self.listen = listen
        self.target = target
        self._server = _make_socket(listen)
        if isinstance(listen, tuple):
            self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        elif os.path.exists(listen):
            os.unlink(listen)
        self._server.bind(listen)
        self._server.listen(64)
        self.address = self._server.getsockname()
        self._thread = threading.Thread(target=self._accept, daemon=True, name=f"relay-{listen}")

    def start(self) -> Relay:
        """Start accepting connections in a daemon thread; return the relay itself."""
        self._thread.start()
        return self

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        upstream = _make_socket(self.target)
        try:
            upstream.connect(self.target)
        except OSError:
            # nothing listens there (yet): the client sees the connection closed, as it would
            # see a refused connection
            upstream.close()
            client.close()
            return
        done = threading.Barrier(2, action=lambda: (client.close(), upstream.close()))
        threading.Thread(target=_pump, args=(client, upstream, done), daemon=True).start()
        _pump(upstream, client, done)

    def close(self) -> None:
        """Stop accepting and wait for the accepting thread to end.

        Closing a listening socket does not wake a thread blocked in ``accept()`` on Linux;
        shutting it down first does.
        """
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


def _make_socket(address) -> socket.socket:
    family = socket.AF_INET if isinstance(address, tuple) else socket.AF_UNIX
    return socket.socket(family, socket.SOCK_STREAM)


def _pump(source: socket.socket, sink: socket.socket, done: threading.Barrier) -> None:
    try:
        while True:
            data = source.recv(_CHUNK)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
    with contextlib.suppress(threading.BrokenBarrierError):
        done.wait(timeout=3600)
