"""Wall time, time per round and peak memory of ``pancreas-fl simulate`` as the data grow.

For each cohort of the grid (hospitals x patients x features, generated with the seeded
``pancreas_fl.sample.make_cohort`` and written as CSV files like ``data/sample/``), four runs,
each in a fresh Python process so that its peak resident memory (``ru_maxrss``) is its own:

* ``pandas``: parsing the hospitals' CSV files with ``pandas.read_csv`` and nothing else, the
  floor any analysis of those files pays;
* ``fedavg``: ``pancreas-fl simulate`` with the default (tutorial) parameters;
* ``exact``: ``pancreas-fl simulate --strategy exact --fit-intercept``;
* ``tutorial``: the tutorial's own code (``tests/_tutorial.py``) on the offline engine, every
  hospital in one process as for ``simulate``.

Every hospital runs in one process (thread isolation), so the memory figures are those of the
whole federation. The table gives medians over ``--repeats`` runs and the ratios side by side:
``RSS / pandas`` (the issue's goal: at most 1.6) and ``time / tutorial``.

Usage::

    python benchmarks/scale.py                  # the whole grid, 3 repeats (several minutes)
    python benchmarks/scale.py --quick          # a small grid, 1 repeat
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATASET = "pancreasData.csv"

#: (hospitals, patients per hospital, features)
GRID = [(2, 1_000, 8), (4, 10_000, 30), (4, 100_000, 30), (4, 20_000, 300)]
QUICK_GRID = [(2, 1_000, 8), (4, 10_000, 30)]
RUNS = ("pandas", "fedavg", "exact", "tutorial")


# ----------------------------------------------------------------------------- worker side
def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _worker(kind: str, folders: list[str]) -> dict:
    """One measured run in this (fresh) process; returns seconds, rounds and peak MiB."""
    start = time.perf_counter()
    rounds = None
    if kind == "pandas":
        import pandas as pd

        frames = [pd.read_csv(Path(folder) / DATASET) for folder in folders]
        assert all(len(frame) for frame in frames)
    elif kind in ("fedavg", "exact"):
        from pancreas_fl.cli import main

        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "report.json"
            extra = ["--strategy", "exact", "--fit-intercept"] if kind == "exact" else []
            argv = ["simulate", *folders, *extra, "--quiet", "--out", str(Path(tmp) / "m.pkl")]
            status = main([*argv, "--report", str(report)])
            assert status == 0, f"pancreas-fl simulate exited {status}"
            rounds = json.loads(report.read_text())["rounds"]
    elif kind == "tutorial":
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        sys.path.insert(0, str(ROOT / "tests"))
        import _tutorial
        from pancreas_fl.simulation import read_hospital, simulate

        class CountingAggregator(_tutorial.FederatedLogisticRegression):
            """The tutorial's aggregator, logging one line per round so rounds can be counted."""

            def aggregation_method(self, analysis_results):
                self.flame.flame_log("aggregated", log_type="debug")
                return super().aggregation_method(analysis_results)

        warnings.simplefilter("ignore", ConvergenceWarning)  # the tutorial warns every round
        splits = [read_hospital(folder) for folder in folders]
        tester = simulate(
            splits,
            analyzer=_tutorial.PancreasAnalyzer,
            aggregator=CountingAggregator,
            stream_log_level=100,
        )
        rounds = sum(record.message == "aggregated" for record in tester.logs)
    else:
        raise ValueError(kind)
    return {"seconds": time.perf_counter() - start, "rounds": rounds, "peak_mib": _peak_mib()}


# ----------------------------------------------------------------------------- driver side
def _write_cohort(folder: Path, n_nodes: int, rows: int, n_features: int) -> list[str]:
    from pancreas_fl.sample import make_cohort

    folders = []
    for index, frame in enumerate(
        make_cohort(n_nodes=n_nodes, rows=[rows] * n_nodes, n_features=n_features, seed=7),
        start=1,
    ):
        node = folder / f"node{index}"
        node.mkdir(parents=True)
        frame.to_csv(node / DATASET, index=False, float_format="%.3f", lineterminator="\n")
        folders.append(str(node))
    return folders


def _measure(kind: str, folders: list[str]) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", kind, *folders],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PANCREAS_FL_SDK": "local"},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} run failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a small grid, one repeat")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("folders", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.worker, args.folders)))
        return 0
    grid, repeats = (QUICK_GRID, 1) if args.quick else (GRID, args.repeats)
    print(
        "| hospitals x patients x features | run | rounds | wall s | s / round | peak MiB "
        "| RSS / pandas | time / tutorial |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for n_nodes, rows, n_features in grid:
        with tempfile.TemporaryDirectory() as tmp:
            folders = _write_cohort(Path(tmp), n_nodes, rows, n_features)
            runs = {kind: [_measure(kind, folders) for _ in range(repeats)] for kind in RUNS}
        base_rss = _median(runs["pandas"], "peak_mib")
        base_time = _median(runs["tutorial"], "seconds")
        for kind in RUNS:
            seconds, rss = _median(runs[kind], "seconds"), _median(runs[kind], "peak_mib")
            rounds = runs[kind][0]["rounds"]
            per_round = "" if rounds is None else f"{seconds / rounds:.3f}"
            vs_tutorial = "" if kind == "pandas" else f"{seconds / base_time:.2f}"
            print(
                f"| {n_nodes} x {rows:,} x {n_features} | {kind} | {rounds or ''} "
                f"| {seconds:.2f} | {per_round} | {rss:.0f} | {rss / base_rss:.2f} "
                f"| {vs_tutorial} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
