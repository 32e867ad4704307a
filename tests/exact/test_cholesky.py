"""pancreas_fl.exact.cholesky: the scaled, ridged factor and the triangular algebra."""

from __future__ import annotations

import numpy as np
import pytest

from pancreas_fl.exact.cholesky import lower_inverse, scaled_cholesky, solve_lower, solve_upper


def psd(p: int, rank: int, seed: int) -> np.ndarray:
    """Return a p x p positive semi-definite matrix of the given rank, columns unequally scaled."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(rank, p)) * 10.0 ** rng.uniform(-2, 2, p)
    return A.T @ A


@pytest.mark.parametrize("p", [1, 5, 63, 64, 65, 200, 300])
def test_a_definite_matrix_factorizes_without_a_ridge(p):
    H = psd(p, p + 5, seed=p)
    scaled = H / np.sqrt(np.outer(np.diag(H), np.diag(H)))
    work = H.copy()
    scale, L, ridge = scaled_cholesky(work)
    assert ridge == 0.0
    np.testing.assert_array_equal(scale, np.sqrt(np.diag(H)))
    np.testing.assert_allclose(work, scaled, rtol=1e-14, atol=1e-14)  # scaled in place
    np.testing.assert_allclose(L @ L.T, scaled, atol=1e-10)


def test_a_singular_matrix_factorizes_with_a_ridge():
    work = psd(30, 10, seed=1)  # rank 10
    _, L, ridge = scaled_cholesky(work)
    assert 1e-12 <= ridge <= 1e-2
    np.testing.assert_allclose(L @ L.T, work + ridge * np.eye(30), atol=1e-10)


@pytest.mark.parametrize(
    "H",
    [-np.eye(4), np.diag([1.0, 1.0, -5.0]), np.array([[1.0, 3.0], [3.0, 1.0]])],
    ids=["negative definite", "a negative direction", "indefinite"],
)
def test_a_matrix_no_ridge_makes_definite_leaves_the_scaled_matrix(H):
    work = H.copy()
    scale, L, ridge = scaled_cholesky(work)
    assert L is None
    assert ridge == pytest.approx(0.1)  # one past the last ridge tried, 1e-2
    np.testing.assert_allclose(work, H / scale[:, None] / scale[None, :])


@pytest.mark.parametrize("p", [1, 7, 64, 65, 130, 257, 600])
def test_the_triangular_solves_and_inverse_agree_with_numpy(p):
    rng = np.random.default_rng(p)
    L = np.linalg.cholesky(psd(p, p + 3, seed=p + 1) + np.eye(p))
    b = rng.normal(size=p)
    np.testing.assert_allclose(L @ solve_lower(L, b), b, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(L.T @ solve_upper(L, b), b, rtol=1e-9, atol=1e-9)
    inverse = lower_inverse(L)
    assert np.array_equal(inverse, np.tril(inverse))
    np.testing.assert_allclose(inverse @ L, np.eye(p), atol=1e-8)
