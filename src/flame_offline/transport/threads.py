"""Thread isolation: every node is a thread of the tester's process, on one in-memory bus."""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence

from flame_offline.errors import NodeStopped
from flame_offline.logs import LogRecord
from flame_offline.transport.mailbox import Mailbox
from flame_offline.transport.protocol import Delivery, FinalSubmission, NodeReport
from flame_offline.transport.run import RunState

__all__ = ["ThreadBus", "ThreadEndpoint", "default_bus", "print_record"]


def print_record(record: LogRecord, level: int = 20) -> None:
    """Print a record from ``level`` up to stderr as ``[node_id] message``."""
    if record.level >= level:
        print(f"[{record.node_id}] {record.message.rstrip(chr(10))}", file=sys.stderr)


class ThreadBus:
    """In-memory message bus for nodes running as threads of one process.

    Mailboxes are created on first use, so nodes may start in any order.

    Parameters
    ----------
    run : RunState, optional
        The tester's run state; without it (the module-level default bus used by a bare
        ``StarModel(test_mode=True)``) logs go to stderr and final results stay in the core.
    """

    def __init__(self, run: RunState | None = None) -> None:
        self.run = run
        self._mailboxes: dict[str, Mailbox] = {}
        self._lock = threading.Lock()
        self._stop_reason: str | None = None

    def mailbox(self, node_id: str) -> Mailbox:
        """Return (creating it if needed) the mailbox of ``node_id``."""
        box = self._mailboxes.get(node_id)
        if box is None:
            with self._lock:
                box = self._mailboxes.setdefault(node_id, Mailbox(node_id))
                if self._stop_reason is not None:
                    box.stop(self._stop_reason)
        return box

    def open(self, node_id: str) -> Mailbox:
        """Open the mailbox of a node that starts now.

        A mailbox left over from an earlier, finished analysis under the same id (the
        long-lived default bus) is replaced by an empty one, so a second run in the same
        interpreter does not see the first run's end announcement or leftover messages.
        """
        with self._lock:
            box = self._mailboxes.get(node_id)
            if box is not None and box.finished:
                box = self._mailboxes[node_id] = Mailbox(node_id)
        return self.mailbox(node_id)

    @property
    def stop_reason(self) -> str | None:
        """Why the bus was stopped, or ``None``."""
        return self._stop_reason

    def stop_all(self, reason: str) -> None:
        """Stop every mailbox (wakes every waiting node)."""
        with self._lock:
            self._stop_reason = reason
            boxes = list(self._mailboxes.values())
        for box in boxes:
            box.stop(reason)


class ThreadEndpoint:
    """A node's :class:`~flame_offline.transport.protocol.Endpoint` on a :class:`ThreadBus`.

    Parameters
    ----------
    bus : ThreadBus
        The bus.
    node_id : str
        The node.
    timeout : float, optional
        Longest wait for messages, or ``None`` to wait forever.
    """

    def __init__(self, bus: ThreadBus, node_id: str, timeout: float | None = None) -> None:
        self.bus = bus
        self.node_id = node_id
        self.timeout = timeout
        self.mailbox = bus.open(node_id)

    def post(self, receivers: list[str], deliveries: Sequence[Delivery]) -> None:
        """Put ``deliveries`` into each receiver's mailbox."""
        if self.bus.stop_reason is not None:
            raise NodeStopped(self.bus.stop_reason)
        for receiver in receivers:
            self.bus.mailbox(receiver).put(*deliveries)

    def log(self, record: LogRecord) -> None:
        """Deliver a log record to the tester (or print it without a tester)."""
        if self.bus.run is None:
            print_record(record)
        else:
            self.bus.run.log(record)

    def submit(self, submission: FinalSubmission) -> None:
        """Hand the final result to the tester (kept in the core without a tester)."""
        if self.bus.run is not None:
            self.bus.run.submit(submission)

    def report(self, report: NodeReport) -> None:
        """Report how the node ended; the first failure stops every other node."""
        run = self.bus.run
        if run is not None and run.report(report):
            self.bus.stop_all(run.stop_reason())


_DEFAULT_BUS = ThreadBus()


def default_bus() -> ThreadBus:
    """Return the process-wide bus of ``StarModel(test_mode=True)`` without an engine endpoint.

    Like the SDK's mock broker it lives as long as the interpreter, so nodes started from
    the user's own threads can talk to each other.
    """
    return _DEFAULT_BUS
