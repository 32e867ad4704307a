"""The log stream: every ``flame_log`` line of a node, as the pod orchestration receives it.

The SDK POSTs each log line to ``/po/stream_logs`` (through the node's nginx, Bearer token)
as ``{"log", "log_type", "analysis_id", "status", "progress"}``; production forwards them to
the Hub, where the analyst reads them. Here each node's lines go to
``<out>/logs/<node>.stream.log`` (one line each: seconds, log type, status, text) and into
the run's timeline.
"""

from __future__ import annotations

import threading
from pathlib import Path

from flame_offline.emulator.spec import AnalysisSpec, NodeSpec
from flame_offline.emulator.timeline import Timeline
from flame_offline.emulator.web import Request, Response

__all__ = ["LOG_TYPES", "LogStream"]

# What the pod orchestration accepts (flamesdk's LogTypeLiteral values).
LOG_TYPES = ("debug", "info", "notice", "warn", "alert", "emerg", "error", "crit")


class LogStream:
    """Collects the nodes' log streams into one file per node."""

    def __init__(self, spec: AnalysisSpec, timeline: Timeline, folder: Path) -> None:
        self.spec = spec
        self.timeline = timeline
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._files = {
            node.name: self.path(node.name).open("a", encoding="utf-8") for node in spec.nodes
        }

    def path(self, name: str) -> Path:
        """Return the stream log file of node ``name``."""
        return self.folder / f"{name}.stream.log"

    def handle(self, node: NodeSpec, request: Request) -> Response:
        """``POST /po/stream_logs`` from ``node``'s analysis."""
        if request.bearer() != node.keycloak_token:
            return Response.error(401, "invalid or missing access token")
        if request.method != "POST":
            return Response.error(405, "Method Not Allowed")
        try:
            body = request.json()
            text, log_type = str(body["log"]), str(body["log_type"])
            status, progress = str(body.get("status")), body.get("progress")
            if body.get("analysis_id") != self.spec.analysis_id:
                return Response.error(
                    404, f"analysis {body.get('analysis_id')!r} is not running here"
                )
        except (ValueError, KeyError, TypeError):
            return Response.error(
                422, "expected {'log', 'log_type', 'analysis_id', 'status', 'progress'}"
            )
        if log_type not in LOG_TYPES:
            return Response.error(422, f"log_type must be one of {', '.join(LOG_TYPES)}")
        event = self.timeline.record(
            "log", node.name, log_type=log_type, status=status, progress=progress, text=text
        )
        with self._lock:
            handle = self._files[node.name]
            if not handle.closed:
                handle.write(f"{event.seconds:9.3f} {log_type:<6} {status:<9} {text}\n")
                handle.flush()
        return Response.json(200, {"status": "ok"})

    def close(self) -> None:
        """Close every node's stream log file."""
        with self._lock:
            for handle in self._files.values():
                handle.close()
