"""A mixed-type clinical table, as hospital exports are (test helper).

Seeded ``numpy.random.default_rng``: numeric columns, a text categorical with 3 levels, a
second categorical with 2, a comorbidity flag coded 1/blank, a date column and a free-text
column (with commas, quoted) that the analysis does not choose, a few blanks in a chosen
numeric column, and a 0/1 label that is not the last column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURES = ["age", "ca19_9", "sex", "stage", "diabetes"]
CATEGORICAL = ["sex", "stage"]
LABEL = "pdac"


def clinical_frames(seed: int = 7, rows=(260, 200), n_blank: int = 5) -> list[pd.DataFrame]:
    """One raw export per hospital."""
    rng = np.random.default_rng(seed)
    frames = []
    for site, n in enumerate(rows):
        age = rng.normal(65, 10, n).round(0)
        ca19_9 = rng.lognormal(3, 1, n).round(2)
        sex = rng.choice(["F", "M"], n)
        stage = rng.choice(["I", "II", "III"], n, p=[0.3, 0.4, 0.3])
        diabetes = rng.random(n) < 0.3
        stage_effect = np.select([stage == "II", stage == "III"], [0.5, 1.0], 0.0)
        logit = (
            -6
            + 0.06 * age
            + 0.4 * np.log(ca19_9)
            + 0.5 * (sex == "M")
            + stage_effect
            + 0.8 * diabetes
        )
        pdac = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
        frame = pd.DataFrame(
            {
                "patient_id": [f"S{site}-{k:04d}" for k in range(n)],
                "visit_date": pd.date_range("2021-01-04", periods=n, freq="D").strftime("%Y-%m-%d"),
                "age": age,
                "pdac": pdac,
                "ca19_9": ca19_9,
                "sex": sex,
                "stage": stage,
                "diabetes": np.where(diabetes, "1", ""),
                "notes": rng.choice(["seen, stable", "follow-up", ""], n),
            }
        )
        frame.loc[rng.choice(n, n_blank, replace=False), "ca19_9"] = np.nan
        frames.append(frame)
    return frames


def to_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode()


def clinical_splits(frames=None, key="site{i}_export.csv") -> list[list[dict[str, bytes]]]:
    """Hospital-specific file names, as FLAME's s3 data."""
    frames = clinical_frames() if frames is None else frames
    return [[{key.format(i=i + 1): to_csv(frame)}] for i, frame in enumerate(frames)]


def pooled_design(frames) -> tuple[pd.DataFrame, pd.Series]:
    """Return the pooled complete cases, encoded by hand as R and statsmodels do.

    The reference level is the first in sorted order; the constant comes last.
    """
    pooled = pd.concat(frames, ignore_index=True)
    pooled["diabetes"] = pd.to_numeric(pooled["diabetes"]).fillna(0)
    pooled = pooled.dropna(subset=[*FEATURES, LABEL])
    X = pd.DataFrame(
        {
            "age": pooled["age"],
            "ca19_9": pooled["ca19_9"],
            "sex[M]": (pooled["sex"] == "M").astype(float),
            "stage[II]": (pooled["stage"] == "II").astype(float),
            "stage[III]": (pooled["stage"] == "III").astype(float),
            "diabetes": pooled["diabetes"],
            "intercept": 1.0,
        }
    )
    return X, pooled[LABEL]
