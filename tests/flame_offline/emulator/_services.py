"""Shared pieces of the emulator's unit tests: an analysis spec, SDK-like requests."""

from __future__ import annotations

import json
from pathlib import Path

from flame_offline.emulator.spec import AnalysisSpec
from flame_offline.emulator.web import Request


def make_spec(tmp_path: Path, hospitals: dict[str, dict[str, bytes]] | None = None) -> AnalysisSpec:
    """Make an analysis with one folder per hospital (name -> {file name: bytes})."""
    hospitals = hospitals or {"node1": {"pancreasData.csv": b"a,b\n1,0\n"}, "node2": {}}
    folders = {}
    for name, files in hospitals.items():
        folder = tmp_path / name
        folder.mkdir()
        for key, content in files.items():
            (folder / key).write_bytes(content)
        folders[name] = folder
    return AnalysisSpec.create(folders)


def sdk_request(
    node, method: str, path: str, payload=None, *, body: bytes = b"", **headers
) -> Request:
    """Build a request from ``node``'s analysis, with its Bearer token as the SDK sends it."""
    merged = {"authorization": f"Bearer {node.keycloak_token}"}
    merged.update({k.replace("_", "-").lower(): v for k, v in headers.items()})
    if payload is not None:
        body = json.dumps(payload).encode()
        merged["content-type"] = "application/json"
    path, _, query = path.partition("?")
    params = dict(p.split("=", 1) for p in query.split("&") if p)
    return Request(method, path, params, merged, body)


def multipart(
    fields: dict[str, tuple[str | None, bytes]], boundary: str = "b0und4ry"
) -> tuple[str, bytes]:
    """``(content type, body)`` of a multipart/form-data request, as httpx builds one."""
    parts = []
    for name, (filename, content) in fields.items():
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        if filename is not None:
            head += "Content-Type: application/octet-stream\r\n"
        parts.append(head.encode() + b"\r\n" + content + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body
