"""Message transport of the offline engine: in-memory mailboxes, thread bus and process router.

Guarantees (beyond the SDK's local mock):

* **Everything travels as bytes.** The core pickles every message (intermediate data,
  control messages, the final result) on send and unpickles it on receive, in both isolation
  modes, so an object that could not travel between FLAME nodes fails locally too. This
  module only ever moves ``bytes`` payloads.
* **No polling.** A waiting node blocks on a :class:`threading.Condition` of its own
  :class:`Mailbox` and is woken by the sender; in process isolation a reader thread in each
  child blocks on its pipe and fills the mailbox, and the tester's router blocks on
  :func:`multiprocessing.connection.wait`. Engine overhead per message is a few microseconds
  (the SDK's mock polls every 10 ms).
* **FIFO per sender and category.** A wait consumes exactly one message from each awaited
  sender (the oldest); later messages stay queued for the next wait. (The SDK's mock
  consumes all queued messages and keeps the newest.)
* **End announcement.** While a node waits for anything else, an ``analysis_finished``
  message in its mailbox ends the wait: the node is marked finished and every awaited sender
  maps to ``None`` (as in the SDK's mock).
* **Stop on failure.** When a node fails, every mailbox is stopped: each wait (and each
  later send) of the other nodes raises :class:`~flame_offline.errors.NodeStopped`
  immediately.
"""

from __future__ import annotations

import pickle
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait

from flame_offline.errors import NodeStopped, role_label
from flame_offline.logs import LogRecord

__all__ = [
    "FINISHED_CATEGORY",
    "ChildEndpoint",
    "FinalSubmission",
    "Mailbox",
    "NodeReport",
    "ProcessRouter",
    "RunState",
    "ThreadBus",
    "ThreadEndpoint",
    "WaitExpired",
    "default_bus",
]

#: Category of the end announcement sent by ``analysis_finished()``.
FINISHED_CATEGORY = "analysis_finished"


@dataclass
class FinalSubmission:
    """The aggregator's final result, as it leaves the node.

    Attributes
    ----------
    payload : bytes
        The pickled result object (after local DP, if any).
    bodies : list of tuple of (str, bytes)
        ``(output_type, file content)`` per result file: one entry, or one per element
        when ``multiple`` is true.
    multiple : bool
        Whether the result was split into several results.
    """

    payload: bytes
    bodies: list[tuple[str, bytes]]
    multiple: bool


@dataclass
class NodeReport:
    """How a node's run ended: ``'done'``, ``'failed'`` or ``'stopped'``."""

    node_id: str
    role: str
    status: str
    error_type: str = ""
    message: str = ""
    traceback: str = ""
    error_payload: bytes | None = field(default=None, repr=False)


class WaitExpired(Exception):
    """A mailbox wait ran out of time; carries what was consumed and who is missing."""

    def __init__(self, received: dict[str, bytes], missing: list[str]) -> None:
        super().__init__(missing)
        self.received = received
        self.missing = missing


class Mailbox:
    """The inbox of one node: queues per ``(category, sender)`` behind one condition."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._queues: dict[tuple[str, str], deque[bytes]] = {}
        self._finished = False
        self._stop_reason: str | None = None

    @property
    def stop_reason(self) -> str | None:
        """Why the mailbox was stopped, or ``None`` while the run goes on."""
        return self._stop_reason

    @property
    def finished(self) -> bool:
        """Whether the end of the analysis was announced to this node."""
        return self._finished

    def put(self, sender: str, category: str, payload: bytes) -> None:
        """Queue one message and wake the owner if it waits."""
        with self._cond:
            self._queues.setdefault((category, sender), deque()).append(payload)
            if category == FINISHED_CATEGORY:
                self._finished = True
            self._cond.notify_all()

    def stop(self, reason: str) -> None:
        """Stop the mailbox: current and later waits raise ``NodeStopped(reason)``."""
        with self._cond:
            if self._stop_reason is None:
                self._stop_reason = reason
            self._cond.notify_all()

    def take(
        self, senders: list[str], category: str, timeout: float | None
    ) -> dict[str, bytes] | None:
        """Block until each sender has a message of ``category``; consume one from each.

        Returns
        -------
        dict or None
            Sender to payload, in the order of ``senders``; ``None`` when an end
            announcement arrived (and ``category`` is not the announcement's).

        Raises
        ------
        NodeStopped
            If the run was stopped.
        WaitExpired
            If ``timeout`` seconds passed first (what had arrived is consumed and carried).
        """
        senders = list(dict.fromkeys(senders))
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._stop_reason is not None:
                    raise NodeStopped(self._stop_reason)
                if self._finished and category != FINISHED_CATEGORY:
                    return None
                missing = [s for s in senders if not self._queues.get((category, s))]
                if not missing:
                    return {s: self._queues[category, s].popleft() for s in senders}
                remaining = None
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        received = {
                            s: self._queues[category, s].popleft()
                            for s in senders
                            if s not in missing
                        }
                        raise WaitExpired(received, missing)
                self._cond.wait(remaining)


class RunState:
    """What the tester learns about a run: logs, the final result and how each node ended.

    Parameters
    ----------
    roles : dict
        Node id to FLAME role, for every participant.
    log_sink : callable
        Called with each :class:`LogRecord`, serialized (one at a time).
    """

    def __init__(self, roles: dict[str, str], log_sink: Callable[[LogRecord], None]) -> None:
        self.roles = roles
        self._log_sink = log_sink
        self._log_lock = threading.Lock()
        self._cond = threading.Condition()
        self.reports: dict[str, NodeReport] = {}
        self.first_failure: NodeReport | None = None
        self.submission: FinalSubmission | None = None

    @property
    def all_reported(self) -> bool:
        """Whether every node has reported how it ended."""
        return len(self.reports) == len(self.roles)

    def stop_reason(self) -> str:
        """The reason given to the nodes stopped because of the first failure."""
        assert self.first_failure is not None
        failed = self.first_failure
        return f"stopped because node {failed.node_id!r} ({role_label(failed.role)}) failed"

    def log(self, record: LogRecord) -> None:
        """Deliver one log record to the sink."""
        with self._log_lock:
            self._log_sink(record)

    def submit(self, submission: FinalSubmission) -> None:
        """Keep the final result."""
        with self._cond:
            self.submission = submission

    def report(self, report: NodeReport) -> bool:
        """Record how a node ended; return whether this is the run's first failure."""
        with self._cond:
            if report.node_id in self.reports:
                return False
            self.reports[report.node_id] = report
            first = report.status == "failed" and self.first_failure is None
            if first:
                self.first_failure = report
            self._cond.notify_all()
            return first

    def wait(self, grace: float) -> None:
        """Block until every node reported, or until ``grace`` s after the first failure."""
        with self._cond:
            self._cond.wait_for(lambda: self.all_reported or self.first_failure is not None)
            if not self.all_reported:
                self._cond.wait_for(lambda: self.all_reported, timeout=grace)


def _print_record(record: LogRecord) -> None:
    if record.level >= 20:
        print(f"[{record.node_id}] {record.message}", file=sys.stderr)


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
                box = self._mailboxes.setdefault(node_id, Mailbox())
                if self._stop_reason is not None:
                    box.stop(self._stop_reason)
        return box

    def open(self, node_id: str) -> Mailbox:
        """The mailbox of a node that starts now.

        A mailbox left over from an earlier, finished analysis under the same id (the
        long-lived default bus) is replaced by an empty one, so a second run in the same
        interpreter does not see the first run's end announcement or leftover messages.
        """
        with self._lock:
            box = self._mailboxes.get(node_id)
            if box is not None and box.finished:
                box = self._mailboxes[node_id] = Mailbox()
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
    """A node's connection to a :class:`ThreadBus`.

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
        self._mailbox = bus.open(node_id)

    def post(self, receivers: list[str], category: str, payload: bytes) -> None:
        """Deliver ``payload`` to each receiver's mailbox."""
        if self.bus.stop_reason is not None:
            raise NodeStopped(self.bus.stop_reason)
        for receiver in receivers:
            self.bus.mailbox(receiver).put(self.node_id, category, payload)

    def take(
        self, senders: list[str], category: str, timeout: float | None
    ) -> dict[str, bytes] | None:
        """Wait for one message of ``category`` from each sender (see :meth:`Mailbox.take`)."""
        return self._mailbox.take(senders, category, timeout)

    def log(self, record: LogRecord) -> None:
        """Deliver a log record to the tester (or print it without a tester)."""
        if self.bus.run is None:
            _print_record(record)
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
    """The process-wide bus used by ``StarModel(test_mode=True)`` without an engine endpoint.

    Like the SDK's mock broker it lives as long as the interpreter, so nodes started from
    the user's own threads can talk to each other.
    """
    return _DEFAULT_BUS


class ChildEndpoint:
    """A node's connection to the tester when the node runs in its own process.

    A daemon reader thread receives routed messages from the pipe into a local
    :class:`Mailbox`; sends, logs and reports are written to the pipe (serialized by a lock).

    Parameters
    ----------
    conn : multiprocessing.connection.Connection
        The child's end of its duplex pipe to the tester.
    node_id : str
        The node.
    timeout : float, optional
        Longest wait for messages, or ``None`` to wait forever.
    """

    def __init__(self, conn: Connection, node_id: str, timeout: float | None = None) -> None:
        self.node_id = node_id
        self.timeout = timeout
        self._conn = conn
        self._send_lock = threading.Lock()
        self._mailbox = Mailbox()
        threading.Thread(target=self._read, name="flame-engine-reader", daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                kind, *args = self._conn.recv()
            except (EOFError, OSError):
                self._mailbox.stop("the connection to the tester was closed")
                return
            if kind == "msg":
                self._mailbox.put(*args)
            else:  # "stop"
                self._mailbox.stop(args[0])

    def _send(self, message: tuple) -> None:
        with self._send_lock:
            self._conn.send(message)

    def post(self, receivers: list[str], category: str, payload: bytes) -> None:
        """Send ``payload`` to the receivers through the tester's router."""
        if self._mailbox.stop_reason is not None:
            raise NodeStopped(self._mailbox.stop_reason)
        self._send(("send", list(receivers), category, payload))

    def take(
        self, senders: list[str], category: str, timeout: float | None
    ) -> dict[str, bytes] | None:
        """Wait for one message of ``category`` from each sender (see :meth:`Mailbox.take`)."""
        return self._mailbox.take(senders, category, timeout)

    def log(self, record: LogRecord) -> None:
        """Send a log record to the tester (delivered live)."""
        self._send(("log", record))

    def submit(self, submission: FinalSubmission) -> None:
        """Send the final result to the tester."""
        self._send(("final", submission))

    def report(self, report: NodeReport) -> None:
        """Send how the node ended to the tester."""
        self._send(("report", report))


class ProcessRouter:
    """The tester's side of process isolation: routes messages between child processes.

    Blocks on all child pipes at once; forwards ``send`` requests to the receivers' pipes,
    hands logs, the final result and reports to the :class:`RunState`. A child whose pipe
    closes before it reported died without reporting: that is a node failure too. After the
    first failure every other child is told to stop; children still running ``grace``
    seconds later are killed by :meth:`close`.

    Parameters
    ----------
    conns : dict
        Node id to the tester's end of that node's pipe (filled as children start).
    processes : dict
        Node id to its started :class:`multiprocessing.Process`.
    run : RunState
        Where logs, the final result and reports go.
    patience : float
        How long :meth:`close` lets children exit on their own after a normal end.
    """

    def __init__(
        self,
        conns: dict[str, Connection],
        processes: dict,
        run: RunState,
        patience: float = 1.5,
    ) -> None:
        self._conns = conns
        self._processes = processes
        self._run = run
        self._patience = patience

    def route(self, grace: float) -> None:
        """Route until every node reported (or ``grace`` s after the first failure)."""
        live = dict(self._conns)
        node_of = {id(conn): node_id for node_id, conn in live.items()}
        deadline: float | None = None
        while live and not self._run.all_reported:
            timeout = None if deadline is None else deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                self._patience = 0.0  # the grace is over: stragglers are killed at once
                break
            for conn in wait(list(live.values()), timeout):
                node_id = node_of[id(conn)]
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    del live[node_id]
                    if node_id not in self._run.reports:
                        self._report(self._died(node_id), live)
                        deadline = deadline or time.monotonic() + grace
                    continue
                if self._handle(node_id, message, live):
                    deadline = deadline or time.monotonic() + grace

    def _handle(self, node_id: str, message: tuple, live: dict[str, Connection]) -> bool:
        kind, *args = message
        if kind == "send":
            receivers, category, payload = args
            for receiver in receivers:
                conn = live.get(receiver)
                if conn is not None:
                    try:
                        conn.send(("msg", node_id, category, payload))
                    except OSError:  # the receiver is exiting; nothing waits for this
                        continue
        elif kind == "log":
            self._run.log(args[0])
        elif kind == "final":
            self._run.submit(args[0])
        else:  # "report"
            return self._report(args[0], live)
        return False

    def _report(self, report: NodeReport, live: dict[str, Connection]) -> bool:
        first = self._run.report(report)
        if first:
            reason = self._run.stop_reason()
            for conn in live.values():
                try:
                    conn.send(("stop", reason))
                except OSError:
                    continue
        return first

    def _died(self, node_id: str) -> NodeReport:
        process = self._processes[node_id]
        process.join(1.0)
        message = (
            f"the node's process exited (exit code {process.exitcode}) "
            "without reporting a result or an error"
        )
        return NodeReport(
            node_id,
            self._run.roles[node_id],
            "failed",
            "ChildProcessError",
            message,
            error_payload=pickle.dumps(ChildProcessError(message)),
        )

    def close(self, patience: float | None = None) -> None:
        """Let the children exit (up to ``patience`` s), kill stragglers, close the pipes."""
        if patience is None:
            patience = self._patience
        end = time.monotonic() + patience
        for process in self._processes.values():
            process.join(max(0.0, end - time.monotonic()))
        for process in self._processes.values():
            if process.is_alive():
                process.kill()
                process.join()
        for conn in self._conns.values():
            conn.close()
