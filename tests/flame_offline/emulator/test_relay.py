"""The byte relay between a pod's loopback and the host's unix sockets."""

from __future__ import annotations

import socket
import threading

from flame_offline.emulator.relay import Relay


def echo_server(path):
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen()

    def serve():
        conn, _ = server.accept()
        with conn:
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
            conn.sendall(data[::-1])

    threading.Thread(target=serve, daemon=True).start()
    return server


def test_relay_pipes_both_ways_until_each_side_closes(tmp_path):
    server = echo_server(str(tmp_path / "target.sock"))
    relay = Relay(str(tmp_path / "listen.sock"), str(tmp_path / "target.sock")).start()
    payload = bytes(range(256)) * 1000
    with socket.socket(socket.AF_UNIX) as client:
        client.settimeout(10)
        client.connect(str(tmp_path / "listen.sock"))
        client.sendall(payload)
        client.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := client.recv(65536):
            received += chunk
    assert received == payload[::-1]
    relay.close()
    server.close()
    assert not relay._thread.is_alive()  # no thread left behind (it would stop fork)


def test_relay_closes_the_client_when_nothing_listens_behind_it(tmp_path):
    relay = Relay(str(tmp_path / "listen.sock"), str(tmp_path / "absent.sock")).start()
    with socket.socket(socket.AF_UNIX) as client:
        client.settimeout(10)
        client.connect(str(tmp_path / "listen.sock"))
        assert client.recv(1) == b""
    relay.close()
