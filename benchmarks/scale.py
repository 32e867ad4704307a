"""Wall time, time per round and peak memory of ``pancreas-fl simulate`` as the data grow.

For each cohort of the grid (hospitals x patients per hospital x features), generated exactly
as ``pancreas-fl sample --nodes H --rows P --features F --seed 7`` writes it (hospital sizes
1.25x to 0.75x of P), five runs, each in a fresh Python process so that its peak resident
memory (``ru_maxrss``) is its own:

* ``pandas``: parsing the hospitals' CSV files with ``pandas.read_csv`` and nothing else (no
  scikit-learn): the issue's yardstick, the floor any analysis of those files pays;
* ``imports``: importing what ``pancreas-fl simulate`` imports (pandas, scikit-learn and
  SciPy, the engine, the analysis), no data: the fixed cost of the analysis's libraries;
* ``fedavg``: ``pancreas-fl simulate`` with the default (tutorial) parameters;
* ``exact``: ``pancreas-fl simulate --strategy exact --fit-intercept``;
* ``tutorial``: the tutorial's own code (``tests/_tutorial.py``) on the offline engine, every
  hospital in one process as for ``simulate``.

Every hospital runs in one process (thread isolation), so the memory figures are those of the
whole federation. The table gives medians over ``--repeats`` runs: wall time (process start
to end, imports included), time per round (median interval between the aggregator's rounds,
from round 1 on: a hospital's step, the messages and the aggregation), peak RSS, and the
ratios side by side: ``RSS / pandas`` (the issue's goal: at most 1.6) and both times against
the tutorial's. A line under each cohort says whether FedAvg's result equals the tutorial's
bit for bit, and what every ``simulate`` must hold whatever the analysis does: the CSV files'
bytes and their float64 matrices.

Usage::

    python benchmarks/scale.py                  # the whole grid, 3 repeats (about 15 minutes)
    python benchmarks/scale.py --quick          # a small grid, 1 repeat
    python benchmarks/scale.py --cohort 4x100000x30 --repeats 1
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATASET = "pancreasData.csv"
SEED = 7

#: (hospitals, patients per hospital on average, features)
GRID = [(2, 1_000, 8), (4, 10_000, 30), (4, 100_000, 30), (4, 20_000, 300)]
QUICK_GRID = [(2, 1_000, 8), (4, 10_000, 30)]
RUNS = ("pandas", "imports", "fedavg", "exact", "tutorial")


# ----------------------------------------------------------------------------- worker side
def _peak_mib() -> float:
    """Return the peak resident memory of this process, in MiB.

    Linux's ``VmHWM`` is the high-water mark of this program's own memory. ``ru_maxrss`` is
    not: a process started by another inherits, at ``exec``, the high-water mark of the memory
    it was forked from (here the driver's, which wrote the cohort).
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _digest(coef) -> str:
    import numpy as np

    return hashlib.sha256(np.ascontiguousarray(coef, dtype=np.float64).tobytes()).hexdigest()


def _simulate(kind: str, folders: list[str]) -> dict:
    from pancreas_fl_tools.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        out, report = Path(tmp) / "m.pkl", Path(tmp) / "report.json"
        extra = ["--strategy", "exact", "--fit-intercept"] if kind == "exact" else []
        argv = ["simulate", *folders, *extra, "--quiet", "--out", str(out), "--report", str(report)]
        status = main(argv)
        assert status == 0, f"pancreas-fl simulate exited {status}"
        model = json.loads(report.read_text())
        result = pickle.loads(out.read_bytes())
    coef = result["coef"] if isinstance(result, dict) else result
    # each entry's seconds: since the previous round's aggregation (round 0: since the start)
    rounds = [entry["seconds"] for entry in model["history"][1:]]
    return {"rounds": model["rounds"], "round_seconds": rounds, "coef": _digest(coef)}


def _tutorial(folders: list[str]) -> dict:
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    sys.path.insert(0, str(ROOT / "tests"))
    import _tutorial
    from pancreas_fl_tools.simulation import read_hospital, simulate

    clock: list[float] = []

    class TimedAggregator(_tutorial.FederatedLogisticRegression):
        """The tutorial's aggregator, noting when each round's aggregation starts."""

        def aggregation_method(self, analysis_results):
            clock.append(time.perf_counter())
            return super().aggregation_method(analysis_results)

    warnings.simplefilter("ignore", ConvergenceWarning)  # the tutorial warns every round
    splits = [read_hospital(folder) for folder in folders]
    tester = simulate(
        splits,
        analyzer=_tutorial.PancreasAnalyzer,
        aggregator=TimedAggregator,
        stream_log_level=100,
    )
    intervals = [b - a for a, b in pairwise(clock)]
    return {"rounds": len(clock), "round_seconds": intervals, "coef": _digest(tester.result)}


def _worker(kind: str, folders: list[str]) -> dict:
    """One measured run in this (fresh) process."""
    start = time.perf_counter()
    out: dict = {"rounds": None, "round_seconds": [], "coef": None}
    if kind == "pandas":
        import pandas as pd

        frames = [pd.read_csv(Path(folder) / DATASET) for folder in folders]
        assert all(len(frame) for frame in frames)
    elif kind == "imports":  # what simulate has loaded before it reads any data
        modules = ("pancreas_fl_tools.cli", "pancreas_fl_tools.simulation", "pancreas_fl.analysis")
        for module in modules:
            importlib.import_module(module)
    elif kind in ("fedavg", "exact"):
        out = _simulate(kind, folders)
    elif kind == "tutorial":
        out = _tutorial(folders)
    else:
        raise ValueError(kind)
    return {**out, "seconds": time.perf_counter() - start, "peak_mib": _peak_mib()}


# ----------------------------------------------------------------------------- driver side
def _write_cohort(folder: Path, n_nodes: int, rows: int, n_features: int):
    """Write a cohort as ``pancreas-fl sample ... --seed 7`` does, in a process of its own.

    The driver stays small that way. Returns the hospitals' folders, the CSV files' bytes and
    the bytes of their float64 feature matrices.
    """
    argv = ["sample", "--nodes", str(n_nodes), "--rows", str(rows)]
    argv += ["--features", str(n_features), "--seed", str(SEED), "--out", str(folder)]
    cli = "import sys; from pancreas_fl_tools.cli import main; sys.exit(main(sys.argv[1:]))"
    subprocess.run([sys.executable, "-c", cli, *argv], check=True, capture_output=True)
    paths = [folder / f"node{i}" / DATASET for i in range(1, n_nodes + 1)]
    contents = [path.read_bytes() for path in paths]
    csv_bytes = sum(len(content) for content in contents)
    patients = sum(content.count(b"\n") - 1 for content in contents)  # a header, a line each
    return [str(path.parent) for path in paths], csv_bytes, 8 * patients * n_features


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


def _median(values) -> float | None:
    values = list(values)
    return statistics.median(values) if values else None


def _ratio(value: float | None, base: float | None) -> str:
    return "" if value is None or not base else f"{value / base:.2f}"


def _cohort(text: str) -> tuple[int, int, int]:
    try:
        n_nodes, rows, n_features = (int(part.replace(",", "")) for part in text.split("x"))
    except ValueError:
        message = f"expected HxPxF, e.g. 4x100000x30; got {text!r}"
        raise argparse.ArgumentTypeError(message) from None
    return n_nodes, rows, n_features


def main(argv=None) -> int:
    """Print the table (markdown) and a line per cohort; ``--worker`` runs one measurement."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a small grid, one repeat")
    parser.add_argument(
        "--cohort",
        action="append",
        type=_cohort,
        help="HxPxF: hospitals x patients x features instead of the grid (repeatable)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("folders", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.worker, args.folders)))
        return 0
    grid, repeats = (QUICK_GRID, 1) if args.quick else (GRID, args.repeats)
    grid = args.cohort or grid
    print(
        "| hospitals x patients x features | run | rounds | wall s | s / round | peak MiB "
        "| RSS / pandas | wall / tutorial | round / tutorial |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    notes = []
    for n_nodes, rows, n_features in grid:
        cohort = f"{n_nodes} x {rows:,} x {n_features}"
        with tempfile.TemporaryDirectory() as tmp:
            folders, csv_bytes, matrix_bytes = _write_cohort(Path(tmp), n_nodes, rows, n_features)
            # interleaved repeats: slow drifts of a shared machine hit every run alike
            runs: dict[str, list[dict]] = {kind: [] for kind in RUNS}
            for _ in range(repeats):
                for kind in RUNS:
                    runs[kind].append(_measure(kind, folders))
        summary = {
            kind: {
                "seconds": _median(run["seconds"] for run in done),
                "peak": _median(run["peak_mib"] for run in done),
                "round": _median(
                    _median(run["round_seconds"]) for run in done if run["round_seconds"]
                ),
                "rounds": done[0]["rounds"],
            }
            for kind, done in runs.items()
        }
        base_rss = summary["pandas"]["peak"]
        tutorial = summary["tutorial"]
        for kind in RUNS:
            s = summary[kind]
            per_round = "" if s["round"] is None else f"{s['round']:.3f}"
            timed = kind not in ("pandas", "imports")
            print(
                f"| {cohort} | {kind} | {s['rounds'] or ''} | {s['seconds']:.2f} | {per_round} "
                f"| {s['peak']:.0f} | {s['peak'] / base_rss:.2f} "
                f"| {_ratio(s['seconds'], tutorial['seconds']) if timed else ''} "
                f"| {_ratio(s['round'], tutorial['round']) if timed else ''} |",
                flush=True,
            )
        same = {run["coef"] for run in runs["fedavg"] + runs["tutorial"]}
        notes.append(
            f"{cohort}: FedAvg's result {'equals' if len(same) == 1 else 'DIFFERS FROM'} the "
            f"tutorial's bit for bit; CSV files {csv_bytes / 2**20:.1f} MiB, float64 feature "
            f"matrices {matrix_bytes / 2**20:.1f} MiB"
        )
    print()
    for note in notes:
        print(f"- {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
