"""Shared test helpers: sample data, hospitals as FLAME s3 data, running the analysis."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pancreas_fl_tools.sample import make_cohort
from pancreas_fl_tools.simulation import simulate

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample"
DATASET = "pancreasData.csv"


def sample_splits() -> list[list[dict[str, bytes]]]:
    """data/sample/ as FLAME delivers it: one s3 source per hospital."""
    return [[{DATASET: (SAMPLE / name / DATASET).read_bytes()}] for name in ("node1", "node2")]


def frames_to_splits(frames) -> list[list[dict[str, bytes]]]:
    """Turn generated cohort frames into s3 data, formatted as the sample files are."""
    return [
        [{DATASET: frame.to_csv(index=False, float_format="%.3f", lineterminator="\n").encode()}]
        for frame in frames
    ]


def cohort_splits(**kwargs) -> list[list[dict[str, bytes]]]:
    """Generate a seeded synthetic cohort (``pancreas_fl_tools.sample.make_cohort``) as s3 data."""
    return frames_to_splits(make_cohort(**kwargs))


def run_analysis(splits, *, isolation="thread", **params):
    """Run the analysis on the offline engine, quietly, with a test-sized timeout."""
    return simulate(splits, isolation=isolation, timeout=60.0, stream_log_level=100, **params)


def golden_coef():
    """Load the tutorial's final coefficients on data/sample/ under the real SDK (golden file).

    Computed on one machine; compare with a tolerance (``rtol=1e-12``): on another CPU,
    OpenBLAS may pick other kernels and the last bits differ.
    """
    golden = json.loads((ROOT / "tests" / "golden" / "tutorial_sample.json").read_text())
    return np.array([float.fromhex(v) for v in golden["coef_hex"]]).reshape(golden["shape"])
