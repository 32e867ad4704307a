"""Newton's curvature by cost: the plan, the packed triangles and the statistics round."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest

from _helpers import cohort_splits, run_analysis
from pancreas_fl.exact import local_terms
from pancreas_fl.exact.curvature import (
    GRAM_ROWS,
    SQUARE_LIMIT_BYTES,
    message_bytes,
    pack_upper,
    plan_curvature,
    unpack_upper,
)
from pancreas_fl.exact.sums import aggregate_terms

sm = pytest.importorskip("statsmodels.api")  # the `test` extra installs it


def design(n=300, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.linspace(0.5, 3.0, d) + 1.0
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ np.linspace(-0.4, 0.4, d))))).astype(int)
    return X, y, np.linspace(-0.1, 0.1, d + 1)


# ------------------------------------------------------------------------------ the plan
@pytest.mark.parametrize(
    ("p", "budgets", "method", "encoding"),
    [
        (9, {}, "newton", "full"),  # narrow data cross as they always did
        (362, {}, "newton", "full"),  # the largest dense square kept (1 MiB)
        (363, {}, "newton", "triangle"),
        (1101, {}, "newton", "triangle"),
        (3999, {}, "newton", "triangle"),  # 64.0 MB: the last float64 triangle
        (4000, {}, "newton", "triangle32"),
        (5656, {}, "newton", "triangle32"),
        (5657, {"max_memory_mb": 1000}, "lbfgs", "diag"),  # beyond 64 MB even in float32
        (5657, {"max_message_mb": 65}, "newton", "triangle32"),
        (1101, {"max_memory_mb": 30}, "lbfgs", "diag"),  # neither 72 nor 32 p^2 bytes fit
        (1101, {"max_memory_mb": 100}, "newton", "triangle"),  # the packed aggregator fits
        (1101, {"max_memory_mb": 100, "float32": False}, "lbfgs", "diag"),  # Firth: 128 p^2
        (9, {"max_message_mb": 4e-4}, "newton", "triangle"),
        (9, {"max_message_mb": 2e-4}, "newton", "triangle32"),
        (9, {"max_message_mb": 1e-4}, "lbfgs", "diag"),
    ],
)
def test_auto_takes_newton_whenever_its_curvature_fits_the_budgets(p, budgets, method, encoding):
    plan = plan_curvature(p, "auto", **budgets)
    assert (plan.method, plan.encoding) == (method, encoding)
    assert plan.message_bytes == message_bytes(p, encoding)
    assert plan.statistics_round == (encoding == "triangle32")
    assert ("fits" in plan.reason) == (method == "newton")


def test_the_packed_aggregator_s_memory_estimate_decides_between_newton_and_the_bound():
    assert plan_curvature(1101, max_memory_mb=80).encoding == "bohning"  # 72 p^2 > 80 MB
    assert plan_curvature(1101, max_memory_mb=88).encoding == "triangle"  # 87.3 MB fits


def test_without_float32_newton_stops_at_the_float64_triangle():
    assert plan_curvature(4000, float32=False).method == "lbfgs"
    plan = plan_curvature(4000, "newton", float32=False)
    assert (plan.method, plan.encoding) == ("newton", "triangle")
    assert plan_curvature(3999, float32=False).encoding == "triangle"


def test_the_analyst_s_choice_holds_beyond_the_budgets():
    assert plan_curvature(9, "lbfgs").method == "lbfgs"
    forced = plan_curvature(8000, "newton")
    assert (forced.method, forced.encoding) == ("newton", "triangle32")
    assert "beyond the budgets" in forced.reason
    assert message_bytes(362, "full") <= SQUARE_LIMIT_BYTES < message_bytes(363, "full")


# ------------------------------------------------------------------- packed triangles
def test_a_float64_triangle_carries_the_matrix_exactly():
    X, y, theta = design()
    H = local_terms(X, y, theta, fit_intercept=True, hessian="triangle")["hess"]
    assert H["upper"].dtype == np.float64
    assert H["upper"].nbytes == message_bytes(7, "triangle")
    M = unpack_upper(H["upper"], 7)
    np.testing.assert_array_equal(M, M.T)
    assert pack_upper(M, "triangle")["upper"].tobytes() == H["upper"].tobytes()
    full = local_terms(X, y, theta, fit_intercept=True, hessian="full")["hess"]
    np.testing.assert_allclose(M, full, rtol=1e-13, atol=1e-12 * np.abs(full).max())


def test_float32_and_its_residual_together_carry_the_matrix_to_2_to_the_minus_48():
    X, y, theta = design()
    exact = unpack_upper(
        local_terms(X, y, theta, fit_intercept=True, hessian="triangle")["hess"]["upper"], 7
    )
    hi = local_terms(X, y, theta, fit_intercept=True, hessian="triangle32")["hess"]
    lo = local_terms(X, y, theta, fit_intercept=True, hessian="residual32")["hess"]
    assert hi["upper"].dtype == lo["upper"].dtype == np.float32
    both = unpack_upper(hi["upper"].astype(float), 7) + unpack_upper(lo["upper"].astype(float), 7)
    assert np.max(np.abs(both - exact) / np.abs(exact)) <= 2.0**-48
    assert (
        np.max(np.abs(unpack_upper(hi["upper"].astype(float), 7) - exact) / np.abs(exact))
        > 2.0**-30
    )


def test_taller_blocks_than_gram_rows_sum_the_same_matrix():
    X, y, theta = design(n=2 * GRAM_ROWS + 17, d=4, seed=1)
    blocked = local_terms(X, y, theta[:-1], fit_intercept=False, hessian="triangle")["hess"]
    full = local_terms(X, y, theta[:-1], fit_intercept=False, hessian="full")["hess"]
    np.testing.assert_allclose(unpack_upper(blocked["upper"], 4), full, rtol=1e-12)


def test_the_aggregator_sums_packed_triangles_in_float64():
    X, y, theta = design()
    parts = [
        local_terms(X[a:b], y[a:b], theta, fit_intercept=True, hessian="triangle32")
        for a, b in [(0, 100), (100, 300)]
    ]
    total = aggregate_terms(parts)["hess"]
    assert total.dtype == np.float64
    expected = parts[0]["hess"]["upper"].astype(float) + parts[1]["hess"]["upper"]
    np.testing.assert_array_equal(total, unpack_upper(expected, 7))


def test_a_packed_triangle_of_the_wrong_size_is_refused():
    with pytest.raises(ValueError, match="a packed triangle of 3 parameters has 6 numbers"):
        unpack_upper(np.zeros(5), 3)


# -------------------------------------------------------------- end to end, with statistics
def glm(X, y):
    Xd = np.column_stack([X, np.ones(len(X))])
    model = sm.GLM(y, Xd, family=sm.families.Binomial())
    first = model.fit(tol=1e-14, maxiter=100)
    return model.fit(start_params=first.params, tol=1e-14, maxiter=100)


@pytest.mark.parametrize(
    ("budget", "encoding", "extra"), [(4e-4, "triangle", 0), (2e-4, "triangle32", 1)]
)
def test_packed_curvature_keeps_the_fit_and_the_statistics_of_statsmodels(budget, encoding, extra):
    splits = cohort_splits(n_nodes=3, rows=150, n_features=8, seed=4)
    params = {"strategy": "exact", "fit_intercept": True, "C": math.inf}
    dense = run_analysis(splits, **params).result
    packed = run_analysis(splits, max_message_mb=budget, **params).result
    assert plan_curvature(9, max_message_mb=budget).encoding == encoding
    assert packed["rounds"] == dense["rounds"] + extra  # the statistics round, with float32
    np.testing.assert_allclose(packed["coef"], dense["coef"], rtol=1e-8)
    pooled = pd.concat([pd.read_csv(io.BytesIO(s[0]["pancreasData.csv"])) for s in splits])
    res = glm(pooled.iloc[:, :-1].to_numpy(float), pooled.iloc[:, -1].to_numpy())
    s = packed["statistics"]
    for ours, theirs in [
        ("coef", res.params),
        ("std_err", res.bse),
        ("p_value", res.pvalues),
        ("cov", res.cov_params()),
    ]:
        np.testing.assert_allclose(np.asarray(s[ours], float), np.asarray(theirs, float), rtol=1e-8)


@pytest.mark.parametrize("extreme", [1e40, 1e-40])
def test_a_matrix_float32_would_lose_crosses_as_the_float64_triangle(extreme):
    H = np.array([[2.0, extreme], [extreme, 3.0]])
    sent = pack_upper(H, "triangle32")
    assert sent["encoding"] == "triangle"
    assert sent["upper"].dtype == np.float64
    np.testing.assert_array_equal(unpack_upper(sent["upper"], 2), H)
    residual = pack_upper(H, "residual32")  # nothing left: the float64 triangle was exact
    assert residual["encoding"] == "residual32"
    assert not np.any(residual["upper"])
