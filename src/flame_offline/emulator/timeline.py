"""What happened during a run, in order: every service records its events here.

The summary (message counts, largest message and object, rounds, failures) is derived from
this one list afterwards, so the services stay free of bookkeeping for the report.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

__all__ = ["Event", "Timeline"]


@dataclass(frozen=True)
class Event:
    """One thing that happened, ``seconds`` after the run started.

    ``kind`` is one of ``message`` (the broker accepted a message for delivery), ``delivery``
    (it reached a recipient's webhook, or failed to), ``stored`` (an object reached storage),
    ``log`` (a line of a node's log stream), ``status`` (the orchestrator saw a node's status
    change), ``fault`` (an injected fault took effect) and ``request`` (a request no service
    answers).
    """

    seconds: float
    kind: str
    node: str
    data: dict = field(default_factory=dict)


class Timeline:
    """A thread-safe, append-only list of :class:`Event`."""

    def __init__(self) -> None:
        self._start = time.monotonic()
        self._events: list[Event] = []
        self._lock = threading.Lock()

    def now(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self._start

    def record(self, kind: str, node: str, **data) -> Event:
        """Record an event of ``kind`` at ``node`` now; return it."""
        with self._lock:
            event = Event(self.now(), kind, node, data)
            self._events.append(event)
            return event

    def events(self, kind: str | None = None) -> list[Event]:
        """Return the events so far (of ``kind`` only, when given), oldest first."""
        with self._lock:
            return [e for e in self._events if kind is None or e.kind == kind]
