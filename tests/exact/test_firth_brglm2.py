"""Firth's fit (``penalty="firth"``) against R's brglm2, end to end over 3 hospitals.

The reference is ``glm(y ~ ., family = binomial, method = "brglmFit", type = "AS_mean")``
(``tests/fixtures/firth/brglm2_fit.R``) on the pooled rows. The fast suite compares with the
committed fixtures (rewrite them with ``tests/exact/_firth_data.py``); the tests marked
``brglm2`` run R live on fresh seeded tables and skip without ``Rscript``, unless
``PANCREAS_FL_REQUIRE_R=1`` (CI), where a missing ``Rscript`` fails.
"""

from __future__ import annotations

import math
import os
import shutil

import numpy as np
import pandas as pd
import pytest
from _firth_data import CASES, FIXTURES, brglm2, separated_table

from _helpers import DATASET, run_analysis

#: Coefficients and standard errors agree with brglm2 within this relative tolerance (the
#: issue's bar); measured: below 1e-9.
RTOL = 1e-6
#: The solver's tolerance for the comparison (brglm2 is run to epsilon = 1e-12).
TIGHT = 1e-10


def as_splits(frame: pd.DataFrame) -> list:
    """One CSV per hospital, every digit written (both sides read the same numbers)."""
    return [
        [
            {
                DATASET: part.drop(columns="hospital")
                .to_csv(index=False, float_format="%.17g")
                .encode()
            }
        ]
        for _, part in frame.groupby("hospital")
    ]


def firth_fit(frame: pd.DataFrame, fit_intercept: bool, **params) -> dict:
    run = run_analysis(
        as_splits(frame),
        strategy="exact",
        penalty="firth",
        fit_intercept=fit_intercept,
        tol=TIGHT,
        **params,
    )
    return run.result


def reference_order(statistics: dict, fit_intercept: bool) -> tuple[np.ndarray, np.ndarray]:
    """Our coefficients and standard errors in R's order (the intercept first)."""
    coef, se = np.array(statistics["coef"]), np.array(statistics["std_err"])
    if fit_intercept:
        coef, se = np.roll(coef, 1), np.roll(se, 1)
    return coef, se


def compare(result: dict, reference: pd.DataFrame, fit_intercept: bool) -> dict[str, float]:
    """Assert agreement with brglm2; return the largest relative differences."""
    s = result["statistics"]
    table = reference.set_index("term")["estimate"]
    terms = reference["term"][~reference["term"].str.startswith(".")]
    expected_coef = reference["estimate"][terms.index].to_numpy(float)
    expected_se = reference["std_err"][terms.index].to_numpy(float)
    coef, se = reference_order(s, fit_intercept)
    np.testing.assert_allclose(coef, expected_coef, rtol=RTOL)
    np.testing.assert_allclose(se, expected_se, rtol=RTOL)
    assert s["penalized_llf"] == pytest.approx(float(table[".penalized_loglik"]), rel=1e-9)
    assert s["penalized_llnull"] == pytest.approx(float(table[".null_penalized_loglik"]), rel=1e-9)
    return {
        "coef": float(np.max(np.abs(coef - expected_coef) / np.abs(expected_coef))),
        "se": float(np.max(np.abs(se - expected_se) / expected_se)),
    }


@pytest.mark.parametrize("case", list(CASES))
def test_firth_equals_brglm2_on_the_committed_tables(case):
    kind, _, fit_intercept = CASES[case]
    frame = pd.read_csv(FIXTURES / f"{kind}-data.csv")
    reference = pd.read_csv(FIXTURES / f"{case}.csv")
    result = firth_fit(frame, fit_intercept)
    assert result["stop_reason"] == "tolerance"
    compare(result, reference, fit_intercept)


@pytest.mark.parametrize("case", ["quasi", "complete"])
def test_the_penalized_lr_test_is_twice_the_gain_over_the_null_model(case):
    kind, _, fit_intercept = CASES[case]
    s = firth_fit(pd.read_csv(FIXTURES / f"{kind}-data.csv"), fit_intercept)["statistics"]
    assert s["penalty"] == "firth"
    assert s["lr_stat"] == pytest.approx(2 * (s["penalized_llf"] - s["penalized_llnull"]))
    assert s["lr_df"] == len(s["terms"]) - 1
    chi2 = pytest.importorskip("scipy.stats").chi2
    assert s["lr_p_value"] == pytest.approx(chi2.sf(s["lr_stat"], s["lr_df"]), rel=1e-10)


def test_firth_is_equivariant_under_the_pooled_standardization():
    frame = pd.read_csv(FIXTURES / "quasi-data.csv")
    raw = firth_fit(frame, True)
    scaled = firth_fit(frame, True, standardize=True)
    np.testing.assert_allclose(scaled["coef"], raw["coef"], rtol=1e-8)
    np.testing.assert_allclose(scaled["intercept"], raw["intercept"], rtol=1e-8)
    # the penalized LR test does not depend on the parametrization
    assert scaled["statistics"]["lr_stat"] == pytest.approx(raw["statistics"]["lr_stat"], rel=1e-8)


@pytest.mark.brglm2
def test_firth_equals_brglm2_live_with_two_rounds_per_step(tmp_path):
    _require_rscript()
    frame = separated_table("wide", 104, n=600)
    reference = brglm2(frame, True, tmp_path)
    result = firth_fit(frame, True)
    history = result["history"]
    assert all(entry["log_loss"] is None for entry in history[::2])  # the sums' rounds
    assert max(compare(result, reference, True).values()) < RTOL


def _require_rscript() -> None:
    if shutil.which("Rscript") is None:
        if os.environ.get("PANCREAS_FL_REQUIRE_R") == "1":
            pytest.fail("Rscript is missing: apt-get install r-base-core r-cran-brglm2")
        pytest.skip("Rscript is missing (apt-get install r-base-core r-cran-brglm2)")


@pytest.mark.brglm2
@pytest.mark.parametrize("fit_intercept", [True, False], ids=["intercept", "no-intercept"])
@pytest.mark.parametrize(("kind", "seed"), [("quasi", 101), ("quasi", 102), ("complete", 103)])
def test_firth_equals_brglm2_live_on_fresh_tables(kind, seed, fit_intercept, tmp_path):
    _require_rscript()
    frame = separated_table(kind, seed)
    reference = brglm2(frame, fit_intercept, tmp_path)
    result = firth_fit(frame, fit_intercept)
    worst = compare(result, reference, fit_intercept)
    assert max(worst.values()) < RTOL
    assert math.isfinite(result["statistics"]["lr_stat"])
