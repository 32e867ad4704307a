"""Engine overhead per round of the offline star-pattern engine.

Runs 1,000 trivial rounds (4 analyzers return a small number, the aggregator averages and
stops after 1,000 rounds) with thread and with process isolation, several times, and prints
the median milliseconds per round next to the SDK harness's ~10 ms polling floor. The
figure is timed inside the aggregator from its first to its last aggregation, so it excludes
start-up (starting node processes) and measures messaging only.

Run: ``python benchmarks/engine_overhead.py``.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import time

from flame_offline import StarAggregator, StarAnalyzer, StarModelTester

ROUNDS = 1000
ANALYZERS = 4
REPEATS = {"thread": 5, "process": 3}
SDK_FLOOR_MS = 10.0


class TrivialAnalyzer(StarAnalyzer):
    """Returns a small number every round."""

    def analysis_method(self, data, aggregator_results):
        """Return 1.0, whatever the data."""
        return 1.0


class AveragingAggregator(StarAggregator):
    """Averages the analyzers' numbers; converges after ``ROUNDS`` rounds.

    The final result is ``(mean, seconds from the first to the last aggregation)``.
    """

    def __init__(self, flame):
        super().__init__(flame)
        self._started: float | None = None

    def aggregation_method(self, analysis_results):
        """Return the mean of the analyzers' numbers and the seconds since the first aggregation."""
        now = time.perf_counter()
        if self._started is None:
            self._started = now
        return sum(analysis_results) / len(analysis_results), now - self._started

    def has_converged(self, result, last_result):
        """Return whether ``ROUNDS`` rounds have been aggregated."""
        return self.num_iterations >= ROUNDS - 1


def ms_per_round(isolation: str) -> float:
    """Run one analysis and return the engine's milliseconds per round."""
    with contextlib.redirect_stdout(io.StringIO()):  # the tester prints the final result
        tester = StarModelTester(
            [[{"data.csv": b"x"}] for _ in range(ANALYZERS)],
            TrivialAnalyzer,
            AveragingAggregator,
            "s3",
            simple_analysis=False,
            isolation=isolation,
            log_handler=lambda record: None,
            timeout=60.0,
        )
    _, seconds = tester.result
    return seconds / (ROUNDS - 1) * 1000.0


def main() -> None:
    """Print the median ms per round for each isolation mode."""
    print(f"{ROUNDS} rounds, {ANALYZERS} analyzers, median of repeated runs")
    for isolation, repeats in REPEATS.items():
        figures = [ms_per_round(isolation) for _ in range(repeats)]
        median = statistics.median(figures)
        print(
            f"{isolation:>7}: {median:.3f} ms per round "
            f"(runs: {', '.join(f'{f:.3f}' for f in figures)}); "
            f"SDK harness polling floor ~{SDK_FLOOR_MS:.0f} ms per round "
            f"({SDK_FLOOR_MS / median:.0f}x slower)"
        )


if __name__ == "__main__":
    main()
