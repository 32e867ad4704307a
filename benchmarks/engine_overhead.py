"""Engine overhead per round of the offline star-pattern engine, next to the FLAME SDK's harness.

Runs 300 trivial rounds (4 analyzers return a small number, the aggregator averages and stops
after 300 rounds) under the engine's ``StarModelTester`` with thread and with process
isolation, and under the FLAME SDK's own ``StarModelTester`` (``flame.star``), interleaved,
several times each, and prints the median milliseconds per round and how many times slower
the SDK's harness is. Each figure is timed inside the aggregator from its first to its last
aggregation, so it excludes start-up (starting threads or node processes) and measures
messaging only.

The SDK is on no package registry (see ``../shared/wheels``): it is measured in this
interpreter when ``flame.star`` imports here, otherwise in the interpreter given by
``--sdk-python`` (``make bench`` passes the one ``make flame-venv`` builds). Without either,
the SDK's line says how to get it.

Run: ``python benchmarks/engine_overhead.py [--sdk-python .venv-flame-0.5.0/bin/python]
[--repeats N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import platform
import statistics
import subprocess
import sys
import time

ROUNDS = 300
ANALYZERS = 4
REPEATS = {"thread": 15, "process": 7, "sdk": 3}


def node_classes(analyzer_base: type, aggregator_base: type) -> tuple[type, type]:
    """Return the trivial analyzer and the averaging aggregator on the given base classes."""

    class TrivialAnalyzer(analyzer_base):
        """Returns a small number every round."""

        def analysis_method(self, data, aggregator_results):
            """Return 1.0, whatever the data."""
            return 1.0

    class AveragingAggregator(aggregator_base):
        """Averages the analyzers' numbers; converges after ``ROUNDS`` rounds.

        Each aggregate is ``(mean, seconds from the first to this aggregation)``; the class
        keeps the last one's seconds in ``seconds`` (the SDK's harness returns no result).
        """

        seconds: float | None = None

        def __init__(self, flame):
            super().__init__(flame)
            self._started: float | None = None

        def aggregation_method(self, analysis_results):
            """Return the mean of the analyzers' numbers and the seconds since the first one."""
            now = time.perf_counter()
            if self._started is None:
                self._started = now
            type(self).seconds = now - self._started
            return sum(analysis_results) / len(analysis_results), now - self._started

        def has_converged(self, result, last_result):
            """Return whether ``ROUNDS`` rounds have been aggregated."""
            return self.num_iterations >= ROUNDS - 1

    return TrivialAnalyzer, AveragingAggregator


def engine_ms_per_round(isolation: str) -> float:
    """Run one analysis on the engine and return its milliseconds per round."""
    from flame_offline import StarAggregator, StarAnalyzer, StarModelTester

    analyzer, aggregator = node_classes(StarAnalyzer, StarAggregator)
    with contextlib.redirect_stdout(io.StringIO()):  # the tester prints the final result
        tester = StarModelTester(
            [[{"data.csv": b"x"}] for _ in range(ANALYZERS)],
            analyzer,
            aggregator,
            "s3",
            simple_analysis=False,
            isolation=isolation,
            log_handler=lambda record: None,
            timeout=60.0,
        )
    _, seconds = tester.result
    return seconds / (ROUNDS - 1) * 1000.0


def sdk_ms_per_round() -> float:
    """Run one analysis under the FLAME SDK's ``StarModelTester``; return its ms per round."""
    from flame.star import StarAggregator, StarAnalyzer, StarModelTester

    analyzer, aggregator = node_classes(StarAnalyzer, StarAggregator)
    # the SDK's harness prints every node's logs and the final result
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        StarModelTester(
            [[{"data.csv": b"x"}] for _ in range(ANALYZERS)],
            analyzer,
            aggregator,
            "s3",
            simple_analysis=False,
        )
    if aggregator.seconds is None:  # the SDK's harness prints a failure and returns
        raise RuntimeError("the SDK's StarModelTester did not aggregate")
    return aggregator.seconds / (ROUNDS - 1) * 1000.0


def sdk_runner(sdk_python: str | None):
    """Return how to measure the SDK's harness (a callable) and which interpreter does it."""
    if importlib.util.find_spec("flame") is not None:
        return sdk_ms_per_round, f"Python {platform.python_version()} (this interpreter)"
    if sdk_python is None:
        return None, None

    def in_sdk_python() -> float:
        done = subprocess.run(
            [sdk_python, __file__, "--sdk-only"],
            check=True,
            capture_output=True,
            text=True,
        )
        return float(done.stdout.split()[-1])

    version = subprocess.run(
        [sdk_python, "-c", "import platform; print(platform.python_version())"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return in_sdk_python, f"Python {version} ({sdk_python})"


def main(argv: list[str] | None = None) -> None:
    """Print the median ms per round of the engine (both isolations) and of the SDK's harness."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdk-python", help="a Python with the FLAME SDK (flame.star)")
    parser.add_argument(
        "--repeats", type=int, help="runs of each harness (default: thread 15, process 7, SDK 3)"
    )
    parser.add_argument("--sdk-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sdk_only:  # one measurement, for the interpreter that runs the table
        print(sdk_ms_per_round())
        return
    sdk, sdk_where = sdk_runner(args.sdk_python)
    runs = {"thread": lambda: engine_ms_per_round("thread")}
    runs["process"] = lambda: engine_ms_per_round("process")
    if sdk is not None:
        runs["sdk"] = sdk
    repeats = REPEATS if args.repeats is None else dict.fromkeys(REPEATS, args.repeats)
    figures: dict[str, list[float]] = {name: [] for name in runs}
    for repeat in range(max(repeats.values())):  # interleaved: the machine's load hits all
        for name, run in runs.items():
            if repeat < repeats[name]:
                figures[name].append(run())
    sdk_median = statistics.median(figures["sdk"]) if sdk is not None else None
    print(
        f"{ROUNDS} rounds, {ANALYZERS} analyzers, median ms per round of interleaved runs; "
        f"engine on Python {platform.python_version()}"
    )
    print(f"{'harness':<32} {'ms/round':>9}  {'SDK / this':>10}  runs")
    labels = {
        "thread": "engine, thread isolation",
        "process": "engine, process isolation",
        "sdk": "FLAME SDK StarModelTester",
    }
    for name, values in figures.items():
        median = statistics.median(values)
        ratio = f"{sdk_median / median:.0f}x" if sdk_median is not None else "-"
        listed = ", ".join(f"{v:.3f}" for v in values)
        print(f"{labels[name]:<32} {median:>9.3f}  {ratio:>10}  {listed}")
    if sdk is None:
        print(
            "FLAME SDK StarModelTester: not measured (flame.star does not import here); "
            "pass --sdk-python with the Python `make flame-venv` builds, or run `make bench`"
        )
    else:
        print(f"(the SDK's harness on {sdk_where})")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
