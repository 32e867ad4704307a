"""Process isolation: every node is an OS process with one duplex pipe to the tester.

The tester's :class:`ProcessRouter` blocks on all node pipes at once
(:func:`multiprocessing.connection.wait`) and routes ``POST`` frames to the receivers' pipes;
in each node process a :class:`ChildEndpoint` reader thread blocks on the pipe and fills the
node's mailbox. Nothing polls. The frames are listed in
:mod:`flame_offline.transport.protocol`.

When the tester goes away (it was killed, or its process ended), the node processes notice
the closed pipe and end at once, without a traceback: nobody is left to hear from them.
"""

from __future__ import annotations

import os
import pickle
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

from flame_offline.errors import NodeStopped, ScriptGuardError
from flame_offline.logs import LogRecord
from flame_offline.transport.mailbox import Mailbox
from flame_offline.transport.protocol import Delivery, FinalSubmission, Frame, NodeReport
from flame_offline.transport.run import RunState

__all__ = [
    "REIMPORTED_MAIN_EXIT",
    "TESTER_GONE_EXIT",
    "ChildEndpoint",
    "ProcessRouter",
    "tester_gone",
]

#: Exit code of a node process whose tester went away.
TESTER_GONE_EXIT = 1
#: Exit code of a node process that found the tester's main script starting a tester again
#: while importing it (a script without an ``if __name__ == "__main__":`` guard).
REIMPORTED_MAIN_EXIT = 87


def tester_gone() -> None:
    """End this node process at once and quietly: its tester is gone."""
    os._exit(TESTER_GONE_EXIT)


class ChildEndpoint:
    """A node's :class:`~flame_offline.transport.protocol.Endpoint` in its own process.

    A daemon reader thread receives ``DELIVER`` and ``STOP`` frames into the node's mailbox;
    ``POST``, ``LOG``, ``FINAL`` and ``REPORT`` frames are written to the pipe (serialized by
    a lock). A closed pipe before the node reported means the tester is gone: the process
    ends at once (:func:`tester_gone`).

    Parameters
    ----------
    conn : multiprocessing.connection.Connection
        The node's end of its duplex pipe to the tester.
    node_id : str
        The node.
    timeout : float, optional
        Longest wait for messages, or ``None`` to wait forever.
    """

    def __init__(self, conn: Connection, node_id: str, timeout: float | None = None) -> None:
        self.node_id = node_id
        self.timeout = timeout
        self.mailbox = Mailbox(node_id)
        self._conn = conn
        self._send_lock = threading.Lock()
        self._reported = False
        threading.Thread(target=self._read, name="flame-offline-reader", daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                frame = self._conn.recv()
            except (EOFError, OSError):
                if not self._reported:
                    tester_gone()
                return
            if frame[0] is Frame.DELIVER:
                self.mailbox.put(*frame[1])
            else:  # Frame.STOP
                self.mailbox.stop(frame[1])

    def _send(self, frame: tuple) -> None:
        with self._send_lock:
            try:
                self._conn.send(frame)
            except OSError:  # broken pipe: the tester is gone
                tester_gone()

    def post(self, receivers: list[str], deliveries: Sequence[Delivery]) -> None:
        """Send ``deliveries`` to the receivers through the tester's router.

        The ``DELIVER`` frame is pickled here, once: the router forwards its bytes as they are.
        """
        if self.mailbox.stop_reason is not None:
            raise NodeStopped(self.mailbox.stop_reason)
        frame = pickle.dumps((Frame.DELIVER, tuple(deliveries)), pickle.HIGHEST_PROTOCOL)
        self._send((Frame.POST, list(receivers), frame))

    def log(self, record: LogRecord) -> None:
        """Send a log record to the tester (delivered live)."""
        self._send((Frame.LOG, record))

    def submit(self, submission: FinalSubmission) -> None:
        """Send the final result to the tester."""
        self._send((Frame.FINAL, submission))

    def report(self, report: NodeReport) -> None:
        """Send how the node ended to the tester (the node's last frame)."""
        self._reported = True
        self._send((Frame.REPORT, report))


class ProcessRouter:
    """The tester's side of process isolation: routes frames between node processes.

    Forwards ``POST`` frames to the receivers' pipes and hands logs, the final result and
    reports to the :class:`RunState`. A node whose pipe closes before it reported died
    without reporting: that is a node failure too. After the first failure every other node
    is told to stop; nodes still running ``grace`` seconds later are killed by :meth:`close`.

    Parameters
    ----------
    conns : dict
        Node id to the tester's end of that node's pipe (filled as nodes start).
    processes : dict
        Node id to its started :class:`multiprocessing.Process`.
    run : RunState
        Where logs, the final result and reports go.
    patience : float
        How long :meth:`close` lets node processes exit on their own after a normal end.
    main_path : str, optional
        The tester's main script, named when a node process finds it unguarded.
    """

    def __init__(
        self,
        conns: dict[str, Connection],
        processes: dict[str, Any],
        run: RunState,
        patience: float = 1.5,
        main_path: str | None = None,
    ) -> None:
        self._conns = conns
        self._processes = processes
        self._run = run
        self._patience = patience
        self._main_path = main_path

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
                    frame = conn.recv()
                except (EOFError, OSError):
                    del live[node_id]
                    if node_id not in self._run.reports:
                        self._report(self._died(node_id), live)
                        deadline = deadline or time.monotonic() + grace
                    continue
                if self._handle(node_id, frame, live):
                    deadline = deadline or time.monotonic() + grace

    def _handle(self, node_id: str, frame: tuple, live: dict[str, Connection]) -> bool:
        kind = frame[0]
        if kind is Frame.POST:
            _, receivers, deliver = frame
            for receiver in receivers:
                conn = live.get(receiver)
                if conn is not None:
                    try:
                        conn.send_bytes(deliver)  # a pickled frame: the node's recv() reads it
                    except OSError:  # the receiver is exiting; nothing waits for this
                        continue
        elif kind is Frame.LOG:
            self._run.log(frame[1])
        elif kind is Frame.FINAL:
            self._run.submit(frame[1])
        else:  # Frame.REPORT
            return self._report(frame[1], live)
        return False

    def _report(self, report: NodeReport, live: dict[str, Connection]) -> bool:
        first = self._run.report(report)
        if first:
            reason = self._run.stop_reason()
            for conn in live.values():
                try:
                    conn.send((Frame.STOP, reason))
                except OSError:
                    continue
        return first

    def _died(self, node_id: str) -> NodeReport:
        process = self._processes[node_id]
        process.join(1.0)
        error: Exception
        if process.exitcode == REIMPORTED_MAIN_EXIT:
            error = ScriptGuardError(self._main_path)
        else:
            error = ChildProcessError(
                f"the node's process exited (exit code {process.exitcode}) "
                "without reporting a result or an error"
            )
        return NodeReport(
            node_id,
            self._run.roles[node_id],
            "failed",
            type(error).__name__,
            str(error),
            error_payload=pickle.dumps(error),
        )

    def close(self, patience: float | None = None) -> None:
        """Let node processes exit (up to ``patience`` s), kill stragglers, close the pipes."""
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
