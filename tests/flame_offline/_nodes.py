"""Analyzer and aggregator classes for the engine tests (importable by spawned processes)."""

from __future__ import annotations

import math
import os
import threading
import time

from flame_offline import StarAggregator, StarAnalyzer

#: Incremented by :class:`GlobalCounterAnalyzer` (shows state leaking between nodes).
COUNTER = 0


def csv_values(data: list[dict]) -> list[int]:
    """Return the integers of every object of every data source (comma-separated ``bytes``)."""
    return [
        int(value)
        for source in data
        for content in source.values()
        for value in content.decode().split(",")
        if value
    ]


class SumAnalyzer(StarAnalyzer):
    """Returns ``(sum, count)`` of the node's integers."""

    def analysis_method(self, data, aggregator_results):
        values = csv_values(data)
        return sum(values), len(values)


class MeanAggregator(StarAggregator):
    """Exact pooled mean of ``(sum, count)`` pairs (integer sums: order-independent)."""

    def aggregation_method(self, analysis_results):
        total = sum(s for s, _ in analysis_results)
        count = sum(c for _, c in analysis_results)
        return total / count

    def has_converged(self, result, last_result):
        return True


class FsumMeanAggregator(MeanAggregator):
    """Mean of the analyzers' float means with :func:`math.fsum` (exactly rounded)."""

    def aggregation_method(self, analysis_results):
        return math.fsum(analysis_results) / len(analysis_results)


class FloatMeanAnalyzer(StarAnalyzer):
    """Returns the mean of the node's values as a float."""

    def analysis_method(self, data, aggregator_results):
        values = csv_values(data)
        return sum(values) / len(values)


class ListAggregator(StarAggregator):
    """Returns the analyzers' results as received (a plain list)."""

    def aggregation_method(self, analysis_results):
        return list(analysis_results)

    def has_converged(self, result, last_result):
        return True


class EchoAnalyzer(StarAnalyzer):
    """Returns its data (tests of queries and data formats)."""

    def analysis_method(self, data, aggregator_results):
        return data


class IdentityAnalyzer(StarAnalyzer):
    """Returns what the core tells it about the analysis."""

    def analysis_method(self, data, aggregator_results):
        flame = self.flame
        return {
            "id": self.id,
            "role": self.role,
            "get_id": flame.get_id(),
            "get_role": flame.get_role(),
            "aggregator_id": flame.get_aggregator_id(),
            "participants": flame.get_participants(),
            "participant_ids": flame.get_participant_ids(),
            "partner_node_ids": self.partner_node_ids,
            "analysis_id": flame.get_analysis_id(),
            "project_id": flame.get_project_id(),
        }


class IterationAnalyzer(StarAnalyzer):
    """Returns ``(node id, num_iterations, aggregator_results)`` every round."""

    def analysis_method(self, data, aggregator_results):
        return self.id, self.num_iterations, aggregator_results


class HistoryAggregator(StarAggregator):
    """Records every ``has_converged`` call; stops when ``num_iterations > max_iter - 1``.

    The result of a round is ``{'round': ..., 'results': ..., 'calls': ...}`` where
    ``calls`` lists ``(num_iterations, last_result is None)`` of every ``has_converged`` call
    (the list is shared, so the final result holds all of them).
    """

    def __init__(self, flame, max_iter=3, always=None):
        super().__init__(flame)
        self.max_iter = max_iter
        self.always = always
        self.calls = []

    def aggregation_method(self, analysis_results):
        return {"round": self.num_iterations, "results": analysis_results, "calls": self.calls}

    def has_converged(self, result, last_result):
        self.calls.append((self.num_iterations, last_result is None))
        if self.always is not None:
            return self.always
        return self.num_iterations > self.max_iter - 1


class GlobalCounterAnalyzer(StarAnalyzer):
    """Increments the module-global :data:`COUNTER` and returns its new value."""

    def analysis_method(self, data, aggregator_results):
        global COUNTER
        COUNTER += 1
        return COUNTER


class FailingAnalyzer(StarAnalyzer):
    """Raises ``ValueError`` on the node named ``fail_on`` (the others return 1)."""

    def __init__(self, flame, fail_on="node-2"):
        super().__init__(flame)
        self.fail_on = fail_on

    def analysis_method(self, data, aggregator_results):
        if self.id == self.fail_on:
            raise ValueError(f"boom on {self.id}")
        return 1


class CountingAggregator(StarAggregator):
    """Sums the results; iterates forever (for failure tests)."""

    def aggregation_method(self, analysis_results):
        return sum(analysis_results)

    def has_converged(self, result, last_result):
        return False


class LambdaAnalyzer(StarAnalyzer):
    """Returns a result that cannot be pickled (a lambda)."""

    def analysis_method(self, data, aggregator_results):
        return {"f": lambda x: x}


class LockError(Exception):
    """An exception that cannot be pickled (it holds a lock)."""

    def __init__(self, message):
        super().__init__(message)
        self.lock = threading.Lock()


class UnpicklableErrorAnalyzer(StarAnalyzer):
    """Raises :class:`LockError`."""

    def analysis_method(self, data, aggregator_results):
        raise LockError("cannot travel")


class SleepyAnalyzer(StarAnalyzer):
    """Sleeps ``delay[node id]`` seconds, then returns its id."""

    def __init__(self, flame, delay=None):
        super().__init__(flame)
        self.delay = delay or {}

    def analysis_method(self, data, aggregator_results):
        time.sleep(self.delay.get(self.id, 0.0))
        return self.id


class MutatingAnalyzer(StarAnalyzer):
    """Appends its id to the ``seen`` list it was given; returns the list."""

    def __init__(self, flame, seen):
        super().__init__(flame)
        self.seen = seen

    def analysis_method(self, data, aggregator_results):
        self.seen.append(self.id)
        return self.seen


class HardExitAnalyzer(StarAnalyzer):
    """Ends its process at once with exit code 3 (no report)."""

    def analysis_method(self, data, aggregator_results):
        os._exit(3)


class LoggingAnalyzer(StarAnalyzer):
    """Logs one message of every log type given in ``log_types`` (on ``only``, if given).

    Returns 0.
    """

    def __init__(self, flame, log_types=(), only=None):
        super().__init__(flame)
        self.log_types = log_types
        self.only = only

    def analysis_method(self, data, aggregator_results):
        if self.only in (None, self.id):
            for log_type in self.log_types:
                self.flame.flame_log(f"{log_type} from {self.id}", log_type=log_type)
        return 0


class ErrorLoggingAggregator(StarAggregator):
    """Logs an error and then returns the analyzers' results normally."""

    def aggregation_method(self, analysis_results):
        self.flame.flame_log("the aggregate looks wrong", log_type="error")
        return list(analysis_results)

    def has_converged(self, result, last_result):
        return True


class PidAnalyzer(StarAnalyzer):
    """Writes its process id to ``<folder>/<node id>.pid``, then sleeps ``seconds``."""

    def __init__(self, flame, folder, seconds=0.0):
        super().__init__(flame)
        self.folder = folder
        self.seconds = seconds

    def analysis_method(self, data, aggregator_results):
        path = os.path.join(self.folder, f"{self.id}.pid")
        with open(path + ".part", "w") as handle:
            handle.write(str(os.getpid()))
        os.replace(path + ".part", path)
        time.sleep(self.seconds)
        return os.getpid()


class ConstantAggregator(StarAggregator):
    """Returns ``value`` (default: the first analyzer's result)."""

    def __init__(self, flame, value=None):
        super().__init__(flame)
        self.value = value

    def aggregation_method(self, analysis_results):
        return analysis_results[0] if self.value is None else self.value

    def has_converged(self, result, last_result):
        return True


class AffinityAnalyzer(StarAnalyzer):
    """Returns the CPUs its thread (or process) may run on, sorted."""

    def analysis_method(self, data, aggregator_results):
        return sorted(os.sched_getaffinity(0))


class AffinityAggregator(ListAggregator):
    """Returns the analyzers' CPUs and, last, its own."""

    def aggregation_method(self, analysis_results):
        return [*analysis_results, sorted(os.sched_getaffinity(0))]
