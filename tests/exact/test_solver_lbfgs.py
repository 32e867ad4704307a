"""The L-BFGS pieces: the centred-diagonal preconditioner and the two-loop recursion."""

from __future__ import annotations

import numpy as np
import pytest

from pancreas_fl.exact import local_terms
from pancreas_fl.exact.solver import CentredDiagonal, LBFGSMemory


def moments_of(seed: int, n: int = 80, d: int = 4, *, fit_intercept: bool) -> dict:
    rng = np.random.default_rng(seed)
    X = rng.normal(8.0, 2.0, size=(n, d))
    y = (rng.random(n) < 0.4).astype(int)
    theta = rng.normal(0.0, 0.1, size=d + fit_intercept)
    return local_terms(X, y, theta, fit_intercept=fit_intercept, hessian="diag")["hess"]


def explicit_matrix(moments: dict, C: float, pen: np.ndarray, fit_intercept: bool) -> np.ndarray:
    """Write out the matrix M that CentredDiagonal inverts (see its docstring)."""
    s, sx, sxx = moments["s"], moments["sx"], moments["sxx"]
    m = sx / s
    D = np.diag(C * (sxx - sx * m) + (pen[:-1] if fit_intercept else pen))
    if not fit_intercept:
        return D + C * s * np.outer(m, m)
    # block-diagonal in the centred parametrisation (w, b + m.w): M = T' diag(D, C s) T
    d = len(m)
    T = np.eye(d + 1)
    T[d, :d] = m
    block = np.zeros((d + 1, d + 1))
    block[:d, :d] = D
    block[d, d] = C * s
    return T.T @ block @ T


@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("C", [0.1, 1.0, 100.0])
def test_the_preconditioner_inverts_the_matrix_it_describes(fit_intercept, C):
    moments = moments_of(1, fit_intercept=fit_intercept)
    pen = np.ones(4 + fit_intercept)
    if fit_intercept:
        pen[-1] = 0.0
    precondition = CentredDiagonal(moments, C=C, penalty_diag=pen, fit_intercept=fit_intercept)
    v = np.random.default_rng(2).normal(size=4 + fit_intercept)
    expected = np.linalg.solve(explicit_matrix(moments, C, pen, fit_intercept), v)
    np.testing.assert_allclose(precondition(v), expected, rtol=1e-9)


def test_the_preconditioner_is_the_inverse_hessian_for_uncorrelated_centred_features():
    # v-weighted centred features with orthogonal columns: the Hessian is exactly M
    X = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]]) + np.array([3.0, -2.0])
    y = np.array([1, 0, 0, 1])
    terms = local_terms(X, y, np.zeros(3), fit_intercept=True, hessian="full")
    diag = local_terms(X, y, np.zeros(3), fit_intercept=True, hessian="diag")["hess"]
    pen = np.array([1.0, 1.0, 0.0])
    precondition = CentredDiagonal(diag, C=1.0, penalty_diag=pen, fit_intercept=True)
    v = np.array([0.3, -1.0, 2.0])
    np.testing.assert_allclose(
        precondition(v), np.linalg.solve(terms["hess"] + np.diag(pen), v), rtol=1e-12
    )


def bfgs_inverse(pairs, H0: np.ndarray) -> np.ndarray:
    """Apply the BFGS inverse-Hessian updates written as matrices (Nocedal & Wright, eq. 6.17)."""
    H = H0
    eye = np.eye(len(H0))
    for s, y in pairs:
        rho = 1.0 / (y @ s)
        H = (eye - rho * np.outer(s, y)) @ H @ (eye - rho * np.outer(y, s)) + rho * np.outer(s, s)
    return H


def spd_pairs(seed: int, k: int, p: int = 5):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(p, p))
    A = A @ A.T + p * np.eye(p)  # a convex quadratic: y = A s
    return [(s, A @ s) for s in rng.normal(size=(k, p))]


@pytest.mark.parametrize("k", [1, 3])
def test_the_two_loop_recursion_equals_the_bfgs_matrices(k):
    pairs = spd_pairs(3, k)
    memory = LBFGSMemory(10)
    for s, y in pairs:
        memory.add(s, y)
    g = np.random.default_rng(4).normal(size=5)
    s, y = pairs[-1]
    H0 = np.eye(5) * (s @ y) / (y @ y)  # the scaled identity without a preconditioner
    np.testing.assert_allclose(memory.direction(g, None), -bfgs_inverse(pairs, H0) @ g, rtol=1e-10)


def test_the_two_loop_recursion_starts_from_the_scaled_preconditioner():
    pairs = spd_pairs(5, 2)
    memory = LBFGSMemory(10)
    for s, y in pairs:
        memory.add(s, y)
    M_inv = np.diag([1.0, 2.0, 0.5, 4.0, 1.5])
    s, y = pairs[-1]
    H0 = M_inv * (s @ y) / (y @ M_inv @ y)
    g = np.arange(1.0, 6.0)
    np.testing.assert_allclose(
        memory.direction(g, lambda v: M_inv @ v), -bfgs_inverse(pairs, H0) @ g, rtol=1e-10
    )


def test_without_pairs_the_first_direction_is_a_bounded_gradient_step():
    memory = LBFGSMemory(5)
    np.testing.assert_array_equal(memory.direction(np.array([4.0, -2.0]), None), [-1.0, 0.5])
    np.testing.assert_array_equal(memory.direction(np.array([0.5, -0.25]), None), [-0.5, 0.25])


def test_the_memory_keeps_the_newest_pairs_with_positive_curvature():
    memory = LBFGSMemory(2)
    pairs = spd_pairs(6, 3)
    for s, y in pairs:
        memory.add(s, y)
    assert len(memory.s) == 2
    np.testing.assert_array_equal(memory.s[0], pairs[1][0])
    memory.add(np.array([1.0, 0, 0, 0, 0]), np.array([-1.0, 0, 0, 0, 0]))  # s.y < 0: skipped
    memory.add(np.array([1.0, 0, 0, 0, 0]), np.array([0.0, 1.0, 0, 0, 0]))  # s.y = 0: skipped
    np.testing.assert_array_equal(memory.s[-1], pairs[2][0])
    memory.clear()
    assert memory.s == []
    assert memory.y == []
