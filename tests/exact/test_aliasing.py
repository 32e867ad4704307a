"""Aliased terms from the information matrix, by R's rule (limited pivoting, column order)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pancreas_fl.exact.aliasing import ALIAS_TOL, find_aliased


def information(X, rng, fit_intercept=True):
    """X~' W X~ with positive weights (an IRLS information matrix)."""
    Xd = np.column_stack([X, np.ones(len(X))]) if fit_intercept else X
    w = rng.uniform(0.02, 0.25, len(X))
    return Xd.T @ (Xd * w[:, None])


def test_a_full_rank_design_has_no_aliased_term():
    rng = np.random.default_rng(0)
    a = find_aliased(information(rng.normal(size=(50, 4)), rng), fit_intercept=True)
    assert a.aliased.tolist() == []
    assert a.kept.tolist() == [0, 1, 2, 3, 4]
    assert a.rank == 5
    assert a.B.shape == (5, 0)


@pytest.mark.parametrize(
    ("build", "aliased", "relation"),
    [
        # the later column of a collinear pair is aliased, whichever is "the copy"
        (lambda X: np.column_stack([X[:, 0], 2 * X[:, 0], X[:, 1]]), [1], {0: 2.0}),
        (lambda X: np.column_stack([2 * X[:, 0], X[:, 0], X[:, 1]]), [1], {0: 0.5}),
        (lambda X: np.column_stack([X[:, 0], X[:, 1], X[:, 0] - 3 * X[:, 1]]), [2], {0: 1, 1: -3}),
        # R puts the intercept first: a constant feature is aliased with it, not the reverse
        (lambda X: np.column_stack([X[:, 0], np.full(len(X), 4.0)]), [1], {2: 4.0}),
        # a column of zeros carries no information: aliased, equal to nothing
        (lambda X: np.column_stack([X[:, 0], np.zeros(len(X)), X[:, 1]]), [1], {}),
    ],
    ids=["copy-later", "copy-earlier", "combination", "constant", "zeros"],
)
def test_aliasing_follows_rs_column_order(build, aliased, relation):
    rng = np.random.default_rng(1)
    X = build(rng.normal(size=(60, 2)))
    a = find_aliased(information(X, rng), fit_intercept=True)
    assert a.aliased.tolist() == aliased
    column = a.B[:, 0]
    for k, b in relation.items():
        assert column[a.kept.tolist().index(k)] == pytest.approx(b, rel=1e-10)
    others = [i for i, k in enumerate(a.kept) if k not in relation]
    np.testing.assert_allclose(column[others], 0.0, atol=1e-10)


def test_without_intercept_the_features_keep_their_order():
    rng = np.random.default_rng(2)
    x = rng.normal(size=40)
    X = np.column_stack([np.full(40, 3.0), x, np.ones(40)])  # constant first: kept
    a = find_aliased(information(X, rng, fit_intercept=False), fit_intercept=False)
    assert a.aliased.tolist() == [2]
    assert a.B[:, 0] == pytest.approx([1 / 3, 0.0], abs=1e-12)


@pytest.mark.parametrize(("ratio", "aliased"), [(1e-9, True), (1e-5, False)])
def test_the_tolerance_is_on_the_residual_norm_ratio(ratio, aliased):
    rng = np.random.default_rng(3)
    x = rng.normal(size=200)
    noise = rng.normal(size=200)
    noise -= noise @ x / (x @ x) * x  # orthogonal to x (and nearly to the intercept)
    col = x + ratio * np.linalg.norm(x) / np.linalg.norm(noise) * noise
    X = np.column_stack([x, col])
    a = find_aliased(X.T @ X, fit_intercept=False)
    assert (a.aliased.tolist() == [1]) is aliased
    assert ALIAS_TOL == 1e-7


def test_the_reduced_coefficients_predict_as_the_full_ones():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(80, 3))
    X = np.column_stack([X, X[:, 0] + 2 * X[:, 2], -X[:, 1]])
    Xd = np.column_stack([X, np.ones(80)])
    a = find_aliased(information(X, rng), fit_intercept=True)
    assert a.aliased.tolist() == [3, 4]
    theta = rng.normal(size=6)
    np.testing.assert_allclose(Xd[:, a.kept] @ a.reduced(theta), Xd @ theta, rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_free=st.integers(1, 6),
    n_dependent=st.integers(0, 4),
    scale=st.floats(-3, 3),
)
@example(seed=6838, n_free=4, n_dependent=1, scale=1.75)  # kept columns of condition 2.4e5
def test_the_number_of_aliased_terms_is_the_rank_deficiency(seed, n_free, n_dependent, scale):
    rng = np.random.default_rng(seed)
    n = 5 * (n_free + n_dependent) + 20
    free = rng.normal(size=(n, n_free)) * 10.0 ** rng.uniform(-abs(scale), abs(scale), n_free)
    dependent = free @ rng.normal(size=(n_free, n_dependent))
    X = np.column_stack([free, dependent])[:, rng.permutation(n_free + n_dependent)]
    info = information(X, rng, fit_intercept=False)
    a = find_aliased(info, fit_intercept=False)
    assert a.rank == n_free == np.linalg.matrix_rank(X)
    # every aliased column is the combination B of the kept ones, as accurately as the
    # information matrix carries it: its condition is that of the kept columns, squared
    accuracy = max(1e-8, 10 * np.linalg.cond(X[:, a.kept]) ** 2 * np.finfo(float).eps)
    np.testing.assert_allclose(
        X[:, a.kept] @ a.B, X[:, a.aliased], atol=accuracy * np.abs(X).max(), rtol=1e-7
    )
