"""The Newton direction: Cholesky solve with a ridge fallback for singular Hessians."""

from __future__ import annotations

import numpy as np
import pytest

from pancreas_fl.exact import local_terms
from pancreas_fl.exact.solver import newton_direction


def test_a_well_conditioned_system_is_solved_exactly():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(6, 6))
    H = A @ A.T + np.eye(6)
    g = rng.normal(size=6)
    np.testing.assert_allclose(H @ newton_direction(g, H), -g, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("p", [362, 363, 600])  # one LU solve, one scaled copy above 362
def test_wide_systems_are_solved_exactly_and_leave_the_hessian_alone(p):
    rng = np.random.default_rng(p)
    A = rng.normal(size=(p, p)) * np.logspace(-2, 2, p)
    H = A @ A.T + np.eye(p)
    before = H.copy()
    g = rng.normal(size=p)
    np.testing.assert_allclose(H @ newton_direction(g, H), -g, rtol=1e-8, atol=1e-8)
    np.testing.assert_array_equal(H, before)


def test_badly_scaled_features_are_solved_accurately():
    # uncentred features of very different scales: the Jacobi scaling makes Cholesky work
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3)) * np.array([1e-3, 1.0, 1e3]) + np.array([0.0, 8.0, 5e3])
    y = (rng.random(200) < 0.5).astype(int)
    terms = local_terms(X, y, np.zeros(4), fit_intercept=True)
    d = newton_direction(terms["grad"], terms["hess"])
    np.testing.assert_allclose(terms["hess"] @ d, -terms["grad"], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("rank", [1, 3])
def test_a_singular_hessian_still_gives_a_finite_descent_direction(rank):
    rng = np.random.default_rng(2)
    B = rng.normal(size=(5, rank))
    H = B @ B.T  # positive semi-definite, rank-deficient: Cholesky fails without a ridge
    g = rng.normal(size=5)
    d = newton_direction(g, H)
    assert np.all(np.isfinite(d))
    assert g @ d < 0


def test_a_zero_hessian_falls_back_to_a_finite_direction():
    d = newton_direction(np.array([1.0, -2.0]), np.zeros((2, 2)))
    assert np.all(np.isfinite(d))
    assert np.array([1.0, -2.0]) @ d < 0
