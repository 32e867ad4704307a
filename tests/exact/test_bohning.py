"""Böhning's bound shared once: chunks, rows, preconditioner, plan, fit and wire checks."""

from __future__ import annotations

import io
import itertools
import math
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from _damage import Damage, run_damaged
from _helpers import cohort_splits, run_analysis, sample_splits
from pancreas_fl.errors import MessageError
from pancreas_fl.exact import local_terms
from pancreas_fl.exact.bohning import (
    BohningPreconditioner,
    gram_chunks,
    local_gram_rows,
    triangle_offset,
)
from pancreas_fl.exact.curvature import message_bytes, plan_curvature
from pancreas_fl.exact.sums import design_matrix
from pancreas_fl.wire import AggregatorInbox, HospitalInbox, UpdateSpec


def packed_upper(M: np.ndarray) -> np.ndarray:
    return np.concatenate([M[i, i:] for i in range(M.shape[0])])


# ------------------------------------------------------------------------------ the chunks
@pytest.mark.parametrize(
    ("p", "first", "later"), [(9, 48, 200), (9, 1e9, 1e9), (100, 500, 1000), (1101, 8e5, 1e6)]
)
def test_the_chunks_cover_the_triangle_in_order_within_the_budget(p, first, later):
    chunks = gram_chunks(p, first, later)
    assert chunks[0][0] == 0
    assert chunks[-1][1] == p
    assert all(a[1] == b[0] for a, b in itertools.pairwise(chunks))
    sizes = [4 * (triangle_offset(b, p) - triangle_offset(a, p)) for a, b in chunks]
    assert sizes[0] <= first
    assert all(size <= later for size in sizes[1:])
    assert triangle_offset(p, p) == p * (p + 1) // 2


@pytest.mark.parametrize(("first", "later"), [(35, 1000), (40, 27), (-1, 1000)])
def test_no_chunks_when_a_row_does_not_fit(first, later):
    assert gram_chunks(9, first, later) is None  # row 0 has 9 entries (36 B), row 1 has 8


# ----------------------------------------------------------------------- at the hospital
@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("standardized", [False, True])
def test_the_hospital_sends_the_rows_of_its_gram_matrix(fit_intercept, standardized):
    rng = np.random.default_rng(3)
    X = rng.normal(8.0, 2.0, size=(2100, 7))  # more than one block of patients
    scaler = {"mean": X.mean(axis=0) + 0.1, "scale": X.std(axis=0) * 1.1} if standardized else {}
    Z = (X - scaler["mean"]) / scaler["scale"] if standardized else X
    G = design_matrix(Z, fit_intercept=fit_intercept)
    expected = packed_upper(G.T @ G)
    p = G.shape[1]
    parts = [
        local_gram_rows(X, rows, fit_intercept=fit_intercept, **scaler)
        for rows in [(0, 2), (2, 3), (3, p)]
    ]
    assert all(part.dtype == np.float32 for part in parts)
    np.testing.assert_allclose(np.concatenate(parts), expected, rtol=2**-23, atol=1e-6)


def test_rows_float32_would_lose_cross_in_float64():
    X = np.array([[1e30, 1.0], [2e30, -1.0], [0.5e30, 3.0]])
    rows = local_gram_rows(X, (0, 2), fit_intercept=False)
    assert rows.dtype == np.float64
    np.testing.assert_array_equal(rows, packed_upper(X.T @ X))


# ----------------------------------------------------------------------- the preconditioner
@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("C", [0.01, 1.0, math.inf])
def test_the_preconditioner_applies_the_inverse_of_bohnings_bound(fit_intercept, C):
    rng = np.random.default_rng(5)
    d = 300  # above the direct inverse's order: the triangular inverse recurses
    X = rng.normal(8.0, 2.0, size=(900, d)) + rng.normal(size=(900, 1))  # correlated
    G = design_matrix(X, fit_intercept=fit_intercept)
    p = G.shape[1]
    pen = np.zeros(p) if math.isinf(C) else np.ones(p)
    if fit_intercept:
        pen[-1] = 0.0
    factor = 1.0 if math.isinf(C) else C
    B = factor / 4 * (G.T @ G) + np.diag(pen)
    precondition = BohningPreconditioner(packed_upper(G.T @ G), p, C=factor, penalty_diag=pen)
    v = rng.normal(size=p)
    assert precondition.ridge == 0.0
    np.testing.assert_allclose(precondition(v), np.linalg.solve(B, v), rtol=1e-7)


def test_a_singular_bound_takes_a_ridge_and_stays_finite():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(50, 1))
    G = np.hstack([x, 2 * x, np.ones((50, 1))])  # aliased columns, no penalty
    precondition = BohningPreconditioner(packed_upper(G.T @ G), 3, C=1.0, penalty_diag=np.zeros(3))
    assert precondition.ridge > 0
    assert np.all(np.isfinite(precondition(rng.normal(size=3))))


# ------------------------------------------------------------------------------ the plan
@pytest.mark.parametrize(
    ("p", "budgets", "encoding", "rounds"),
    [
        (1101, {"max_message_mb": 1}, "bohning", 3),  # the README's measurement
        (1101, {"max_message_mb": 2.43}, "triangle32", 0),  # Newton fits again
        (1101, {"max_memory_mb": 80}, "bohning", 1),  # Newton's 9 p x p (87 MB) do not fit
        (1101, {"max_memory_mb": 30}, "diag", 0),  # nor Böhning's 4
        (1101, {"max_message_mb": 0.02}, "diag", 0),  # moments and a row do not fit
        (5657, {}, "bohning", 2),  # the defaults: beyond 64 MB in float32
        (8000, {}, "bohning", 3),
        (11315, {}, "diag", 0),  # 4 p x p beyond 4,096 MB
        (9, {"max_message_mb": 2e-4, "max_memory_mb": 4e-3}, "bohning", 2),
    ],
)
def test_auto_shares_bohnings_bound_when_newton_does_not_fit(p, budgets, encoding, rounds):
    plan = plan_curvature(p, "auto", **budgets)
    assert plan.encoding == encoding
    assert len(plan.gram_rows) == rounds
    if encoding == "bohning":
        assert plan.method == "lbfgs"
        assert plan.message_bytes <= budgets.get("max_message_mb", 64) * 1e6
        assert plan.message_bytes > message_bytes(p, "diag")
        assert "Böhning" in plan.reason


@pytest.mark.parametrize("solver", ["lbfgs", "newton"])
def test_an_explicit_solver_never_shares_the_bound(solver):
    plan = plan_curvature(1101, solver, max_message_mb=1)
    assert plan.encoding != "bohning"
    assert not plan.gram_rows


def test_firth_never_shares_the_bound():
    assert plan_curvature(1101, max_message_mb=1, float32=False).encoding == "diag"


# ------------------------------------------------------------------------- the fit
def pooled_fit(splits, fit_intercept: bool) -> np.ndarray:
    pooled = pd.concat([pd.read_csv(io.BytesIO(s[0]["pancreasData.csv"])) for s in splits])
    X, y = pooled.iloc[:, :-1].to_numpy(float), pooled.iloc[:, -1].to_numpy()
    model = LogisticRegression(
        C=1.0, fit_intercept=fit_intercept, solver="newton-cholesky", tol=1e-12, max_iter=100
    ).fit(X, y)
    return np.append(model.coef_.ravel(), model.intercept_) if fit_intercept else model.coef_[0]


def fitted(result, fit_intercept: bool) -> np.ndarray:
    coef = np.asarray(result["coef"]).ravel()
    return np.append(coef, result["intercept"]) if fit_intercept else coef


WIDE = cohort_splits(n_nodes=3, rows=[200, 200, 200], n_features=30, seed=11)


@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("standardize", [False, True])
def test_the_shared_bound_reaches_the_pooled_fit_in_fewer_rounds(fit_intercept, standardize):
    params = {"strategy": "exact", "fit_intercept": fit_intercept, "standardize": standardize}
    p = 30 + fit_intercept
    budget = {"max_message_mb": 1e-3}  # 1,000 bytes: Newton's float32 triangle does not fit
    plan = plan_curvature(p, **budget)
    assert plan.encoding == "bohning"
    assert len(plan.gram_rows) >= 3
    shared = run_analysis(WIDE, **budget, **params).result
    plain = run_analysis(WIDE, solver="lbfgs", **params).result
    assert shared["stop_reason"] == plain["stop_reason"] == "tolerance"
    # the rounds follow the BLAS kernels' last bits: 0.46 to 0.60 of plain L-BFGS's here with
    # OpenBLAS's SkylakeX, Haswell and Sandybridge kernels
    assert shared["rounds"] <= 0.7 * plain["rounds"]
    if not standardize:  # the standardized fit's penalty acts on other coefficients
        reference = pooled_fit(WIDE, fit_intercept)
        ours = fitted(shared, fit_intercept)
        assert np.linalg.norm(ours - reference) <= 1e-8 * np.linalg.norm(reference)
    np.testing.assert_allclose(
        fitted(shared, fit_intercept), fitted(plain, fit_intercept), rtol=1e-7, atol=1e-9
    )


@pytest.mark.parametrize("C", [0.01, math.inf])
def test_the_shared_bound_reaches_newtons_fit_at_any_penalty(C):
    params = {"strategy": "exact", "fit_intercept": True, "C": C}
    shared = run_analysis(WIDE, max_message_mb=1e-3, **params).result
    newton = run_analysis(WIDE, **params).result  # the curvature fits: Newton
    assert shared["stop_reason"] == newton["stop_reason"] == "tolerance"
    ours, theirs = fitted(shared, True), fitted(newton, True)
    assert np.linalg.norm(ours - theirs) <= 1e-8 * np.linalg.norm(theirs)


# -------------------------------------------------------------- the checks of what crosses
SAMPLE_SPLITS = sample_splits()
#: data/sample: 8 features and the intercept; Newton's 9 p x p exceed the memory budget,
#: the bound's 4 fit, and its rows cross in model rounds 0, (0, 1) with the moments, and 1,
#: (1, 9).
BOHNING = {
    "strategy": "exact",
    "fit_intercept": True,
    "max_message_mb": 2e-4,
    "max_memory_mb": 4e-3,
}
STOPPED = "The analysis is stopped; no result is written."


def test_the_sample_analysis_shares_the_bound_in_two_rounds():
    assert plan_curvature(9, **{k: BOHNING[k] for k in ("max_message_mb", "max_memory_mb")})
    honest = run_damaged(SAMPLE_SPLITS, None, **BOHNING)
    plain = run_damaged(SAMPLE_SPLITS, None, **{**BOHNING, "solver": "lbfgs"})
    assert honest.result["stop_reason"] == "tolerance"
    np.testing.assert_allclose(
        fitted(honest.result, True), fitted(plain.result, True), rtol=1e-7, atol=1e-9
    )


@pytest.mark.parametrize(
    ("k", "kind", "match"),
    [
        (0, "none", r"whose gram is a NoneType, not a float32 array"),
        (1, "string", r"whose gram is a str, not a float32 array"),
        (1, "missing_key", r"that lacks the key\(s\) 'gram'"),
        (0, "extra_key", r"that holds the unexpected key\(s\) 'damaged'"),
    ],
)
def test_a_damaged_gram_stops_the_run_naming_the_hospital(k, kind, match):
    with pytest.raises(MessageError, match=match) as info:
        run_damaged(SAMPLE_SPLITS, Damage("up", k, 1, ("update", "gram"), kind), **BOHNING)
    text = str(info.value)
    assert text.startswith(f"hospital 'node-2' sent a round-{k} update ")
    assert text.endswith(f"its data or installation is faulty. {STOPPED}")
    assert "\n" not in text


def gram_round(rng_seed: int = 0, *, at_zero_rows=(0, 4), later_rows=(4, 6)):
    """Return an inbox that checked a hospital's round at zero, and its honest next round."""
    rng = np.random.default_rng(rng_seed)
    X = rng.normal(8.0, 2.0, size=(60, 5))
    y = (rng.random(60) < 0.5).astype(int)
    inbox = AggregatorInbox()
    inbox.counts["h"] = (60, int(y.sum()))
    terms = local_terms(X, y, np.zeros(6), fit_intercept=True, hessian="diag")
    gram = local_gram_rows(X, at_zero_rows, fit_intercept=True)
    update = {"terms": terms, "moments": None, "n_extreme": 0, "firth": None, "gram": gram}
    spec = UpdateSpec("terms", 5, True, "diag", at_zero=True, gram=at_zero_rows)
    inbox.check_updates([{"node": "h", "update": update}], 0, spec)
    theta = rng.normal(0.0, 0.05, size=6)
    terms = local_terms(X, y, theta, fit_intercept=True, hessian=None)
    gram = local_gram_rows(X, later_rows, fit_intercept=True)
    update = {"terms": terms, "moments": None, "n_extreme": 0, "firth": None, "gram": gram}
    return inbox, update, UpdateSpec("terms", 5, True, "none", gram=later_rows)


def damage_gram(update, how: str):
    gram = update["gram"].copy()
    if how == "off_diagonal":
        gram[1] *= 1e3
    elif how == "diagonal":
        gram[0] *= 0.99  # above, it is beyond sqrt(E_j E_j) too
    elif how == "nan":
        gram[2] = np.nan
    elif how == "short":
        gram = gram[:-1]
    elif how == "float16":
        gram = gram.astype(np.float16)
    return {**update, "gram": gram}


@pytest.mark.parametrize(
    ("how", "match"),
    [
        ("off_diagonal", r"gram holds 1 value\(s\) beyond sqrt\(E_j E_k\)"),
        ("diagonal", r"gram has 1 diagonal value\(s\) that are not the column's sum of squares"),
        ("nan", r"gram holds 1 non-finite value\(s\)"),
        ("short", r"gram has shape \(2,\) instead of \(3,\)"),
        ("float16", r"gram is a ndarray, not a float32 array"),
    ],
)
def test_damaged_gram_rows_are_refused_naming_the_hospital(how, match):
    inbox, update, spec = gram_round()
    inbox.check_updates([{"node": "h", "update": pickle.loads(pickle.dumps(update))}], 1, spec)
    with pytest.raises(MessageError, match=r"^hospital 'h' sent a round-1 update whose " + match):
        inbox.check_updates([{"node": "h", "update": damage_gram(update, how)}], 1, spec)


def test_a_gradient_only_round_carries_no_curvature():
    inbox, update, spec = gram_round()
    terms = {**update["terms"], "hess": {"s": 1.0}}
    with pytest.raises(MessageError, match=r"whose terms\.hess is a dict, not None"):
        inbox.check_updates([{"node": "h", "update": {**update, "terms": terms}}], 1, spec)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"gram": (1, 5)}, r"whose gram asks for rows that are none of the plan's chunks"),
        ({"gram": "rows"}, r"whose gram is a str, not a pair of row numbers"),
        ({"gram": (-1, 9)}, r"whose gram\[0\] is negative"),
        ({"curvature": "full"}, r"whose curvature is not the solver's 'bohning'"),
    ],
)
def test_a_damaged_request_for_rows_stops_the_hospital(change, match):
    inbox = HospitalInbox("exact", True, False, "model", budgets=(2e-4, 4e-3))
    honest = {
        "next_theta": np.zeros(9),
        "curvature": "none",
        "scaler": None,
        "firth": None,
        "gram": (1, 9),
    }
    inbox.receive(honest, 1, 8)
    with pytest.raises(MessageError, match=r"^the aggregator sent a round-1 broadcast " + match):
        inbox.receive({**honest, **change}, 1, 8)


def test_rows_are_refused_where_the_plan_shares_no_bound():
    inbox = HospitalInbox("exact", True, False, "model")
    broadcast = {"next_theta": np.zeros(9), "curvature": "full", "scaler": None, "firth": None}
    inbox.receive(broadcast, 1, 8)
    with pytest.raises(MessageError, match=r"asks for a Gram matrix the plan does not share"):
        inbox.receive({**broadcast, "gram": (0, 9)}, 1, 8)


@pytest.mark.parametrize("scale", [1e-100, 1e-20, 1.0, 1e20, 1e100])
@pytest.mark.parametrize("standardized", [False, True])
def test_no_honest_gram_breaks_a_bound(scale, standardized):
    rng = np.random.default_rng(int(np.log10(scale)) % 97)
    n, d = 40, 6
    X = rng.normal(size=(n, d)) * scale * rng.uniform(0.1, 10, size=d)
    X[:, 0] = np.round(X[:, 0] / scale)  # a 0/1-like column
    y = (rng.random(n) < 0.5).astype(int)
    scaler = {"mean": X.mean(axis=0), "scale": X.std(axis=0) + 1e-300} if standardized else {}
    inbox = AggregatorInbox()
    inbox.counts["h"] = (n, int(y.sum()))
    chunks = gram_chunks(d + 1, 4 * 12, 4 * 10)
    for k, rows in enumerate(chunks):
        theta = np.zeros(d + 1) if k == 0 else rng.normal(size=d + 1) / (scale * 10)
        if standardized and k:
            theta = rng.normal(size=d + 1)
        curvature = "diag" if k == 0 else None
        terms = local_terms(X, y, theta, fit_intercept=True, hessian=curvature, **scaler)
        gram = local_gram_rows(X, rows, fit_intercept=True, **scaler)
        update = {"terms": terms, "moments": None, "n_extreme": 0, "firth": None, "gram": gram}
        spec = UpdateSpec(
            "terms", d, True, curvature or "none", at_zero=k == 0, scaler=scaler or None, gram=rows
        )
        inbox.check_updates([{"node": "h", "update": update}], k, spec)
