"""Small tables with (quasi-)separation split over 3 hospitals, and R's brglm2 on them.

Run as a script to rewrite the committed fixtures (``tests/fixtures/firth/``): it writes each
case's data and runs ``brglm2_fit.R`` on it (needs ``Rscript`` with ``r-cran-brglm2``)::

    .venv/bin/python tests/exact/_firth_data.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "firth"
R_SCRIPT = FIXTURES / "brglm2_fit.R"
HOSPITALS = 3
#: Markers of the ``"wide"`` table: with the exposure and the intercept, 52 parameters.
WIDE = 50

#: The committed cases: name -> (kind, seed, fit_intercept).
CASES = {
    "quasi": ("quasi", 0, True),
    "quasi-no-intercept": ("quasi", 0, False),
    "complete": ("complete", 1, True),
    "complete-no-intercept": ("complete", 1, False),
}


def separated_table(kind: str, seed: int, n: int = 60) -> pd.DataFrame:
    """Return a table of ``n`` patients over :data:`HOSPITALS` hospitals (column ``hospital``).

    ``"quasi"``: a rare binary exposure ``exposed`` seen only in cases (quasi-complete
    separation) beside two continuous markers; ``"complete"``: the marker ``ca19_9`` above a
    threshold exactly in the cases (complete separation). Either way the maximum-likelihood
    estimate does not exist; Firth's does. ``"wide"``: the quasi-separating exposure beside
    :data:`WIDE` markers, more parameters than :data:`~pancreas_fl.exact.firth.TENSOR_LIMIT`
    (two rounds per step).
    """
    rng = np.random.default_rng(seed)
    age = np.round(rng.normal(size=n), 6)
    bmi = np.round(rng.normal(size=n), 6)
    if kind == "quasi":
        exposed = (rng.random(n) < 0.15).astype(int)
        y = (rng.random(n) < 1 / (1 + np.exp(-(0.5 * age - 0.3 * bmi)))).astype(int)
        y[exposed == 1] = 1
        frame = pd.DataFrame({"age": age, "exposed": exposed, "bmi": bmi, "y": y})
    elif kind == "complete":
        marker = np.round(rng.normal(size=n), 6)
        y = (marker > 0.2).astype(int)
        frame = pd.DataFrame({"age": age, "ca19_9": marker, "y": y})
    elif kind == "wide":
        markers = np.round(rng.normal(size=(n, WIDE)), 6)
        exposed = (rng.random(n) < 0.1).astype(int)
        y = (rng.random(n) < 1 / (1 + np.exp(-0.3 * markers[:, :5].sum(1)))).astype(int)
        y[exposed == 1] = 1
        frame = pd.DataFrame(markers, columns=[f"m{j}" for j in range(WIDE)])
        frame["exposed"], frame["y"] = exposed, y
    else:
        raise ValueError(f"unknown kind {kind!r}")
    frame["hospital"] = np.arange(n) % HOSPITALS
    return frame


def brglm2(frame: pd.DataFrame, fit_intercept: bool, workdir: Path) -> pd.DataFrame:
    """Run ``brglm2_fit.R`` on ``frame``; return its table (term, estimate, std_err)."""
    data, out = workdir / "data.csv", workdir / "brglm2.csv"
    frame.to_csv(data, index=False, float_format="%.17g")
    subprocess.run(
        ["Rscript", str(R_SCRIPT), str(data), str(out), "TRUE" if fit_intercept else "FALSE"],
        check=True,
        capture_output=True,
    )
    return pd.read_csv(out)


def main() -> None:
    if shutil.which("Rscript") is None:
        sys.exit("Rscript is missing: apt-get install r-base-core r-cran-brglm2")
    for name, (kind, seed, fit_intercept) in CASES.items():
        frame = separated_table(kind, seed)
        frame.to_csv(FIXTURES / f"{kind}-data.csv", index=False, float_format="%.17g")
        brglm2(frame, fit_intercept, FIXTURES).to_csv(FIXTURES / f"{name}.csv", index=False)
    for scratch in ("data.csv", "brglm2.csv"):
        (FIXTURES / scratch).unlink()


if __name__ == "__main__":
    main()
