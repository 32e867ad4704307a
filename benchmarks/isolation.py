"""Wall time of ``pancreas-fl simulate`` with process isolation next to thread isolation.

Runs the command end to end (a fresh interpreter each time: imports, reading the hospitals'
files, the federated run, the evaluation, writing the model), alternating
``--isolation thread`` and ``--isolation process`` so that both see the same machine load,
and prints for each case the median wall time of each mode and the median of the per-pair
ratios process / thread. Cases:

* ``sample``: data/sample/ with the default (tutorial) analysis;
* ``large``: 4 hospitals x 100,000 patients x 30 features (``pancreas-fl sample --nodes 4
  --rows 100000 --features 30 --seed 7``, generated once into ``--large-dir``) with
  ``--strategy exact --fit-intercept``.

Usage: ``python benchmarks/isolation.py [--repeats 7] [--large-dir /tmp/big] [--case ...]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "pancreas_fl_tools.cli"]


def ensure_large(folder: Path) -> list[str]:
    """Return the large cohort's hospital folders, generating them on first use."""
    nodes = [folder / f"node{i}" for i in range(1, 5)]
    if not all((node / "pancreasData.csv").exists() for node in nodes):
        options = ["--nodes", "4", "--rows", "100000", "--features", "30", "--seed", "7"]
        subprocess.run(
            [*CLI, "sample", *options, "--out", str(folder)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return [str(node) for node in nodes]


def wall_time(arguments: list[str], isolation: str, out: Path) -> float:
    """Seconds one ``pancreas-fl simulate`` run takes, end to end."""
    command = [*CLI, "simulate", *arguments, "--isolation", isolation, "--quiet"]
    start = time.perf_counter()
    subprocess.run(
        [*command, "--out", str(out)],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def measure(name: str, arguments: list[str], repeats: int, out: Path) -> None:
    """Print the medians and the median ratio of ``repeats`` thread/process pairs."""
    wall_time(arguments, "thread", out)  # warm the file cache
    times: dict[str, list[float]] = {"thread": [], "process": []}
    ratios = []
    for index in range(repeats):
        order = ("thread", "process") if index % 2 == 0 else ("process", "thread")
        pair = {isolation: wall_time(arguments, isolation, out) for isolation in order}
        for isolation, seconds in pair.items():
            times[isolation].append(seconds)
        ratios.append(pair["process"] / pair["thread"])
    thread, process = (statistics.median(times[i]) for i in ("thread", "process"))
    print(
        f"{name:>7}: thread {thread:.2f} s, process {process:.2f} s "
        f"(median of {repeats}); process / thread = {statistics.median(ratios):.2f} "
        f"(median of the pairs' ratios; range {min(ratios):.2f}-{max(ratios):.2f})"
    )


def main() -> None:
    """Run the cases given on the command line (default: both)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--large-dir", type=Path, default=Path(tempfile.gettempdir()) / "big")
    parser.add_argument("--case", choices=["sample", "large"], action="append")
    args = parser.parse_args()
    cases = args.case or ["sample", "large"]
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "model.pkl"
        if "sample" in cases:
            measure("sample", [], args.repeats, out)
        if "large" in cases:
            large = ensure_large(args.large_dir)
            options = ["--strategy", "exact", "--fit-intercept"]
            measure("large", [*large, *options], args.repeats, out)


if __name__ == "__main__":
    main()
