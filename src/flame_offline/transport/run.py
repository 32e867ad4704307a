"""What the tester learns about a run: logs, the final result and how each node ended."""

from __future__ import annotations

import threading
from collections.abc import Callable

from flame_offline.errors import role_label
from flame_offline.logs import LogRecord
from flame_offline.transport.protocol import FinalSubmission, NodeReport

__all__ = ["RunState"]


class RunState:
    """The tester's view of a run, filled by the nodes' endpoints (or the process router).

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
        """Return the reason given to the nodes stopped because of the first failure."""
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
