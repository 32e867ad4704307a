"""Signs of separation from aggregates: extreme fitted probabilities, diverging iterates."""

from __future__ import annotations

import numpy as np
import pytest

from pancreas_fl.exact import sigmoid
from pancreas_fl.exact.separation import (
    Z_EXTREME,
    column_rms,
    count_extreme,
    diverging_terms,
)


def r_linkinv(eta: np.ndarray) -> np.ndarray:
    """R's C logit_linkinv: eta beyond +-30 clamped to DBL_EPSILON or 1/DBL_EPSILON odds."""
    eps = np.finfo(np.float64).eps
    odds = np.where(eta < -30, eps, np.where(eta > 30, 1 / eps, np.exp(np.clip(eta, -30, 30))))
    return odds / (1 + odds)


def test_count_extreme_is_rs_rule():
    # glm.fit: eps <- 10 * .Machine$double.eps; if (any(mu > 1 - eps) || any(mu < eps))
    # warning("fitted probabilities numerically 0 or 1 occurred")
    eps = 10 * np.finfo(np.float64).eps
    z = np.concatenate([np.linspace(-40, 40, 4001), [-30.0, -30.001, 30.0, 30.001]])
    mu = r_linkinv(z)
    assert count_extreme(z) == np.count_nonzero((mu < eps) | (mu > 1 - eps)) == 1002
    assert sigmoid(np.array([-Z_EXTREME]))[0] > eps  # inside +-30 no probability is extreme
    assert count_extreme([0.0, 5.0, -29.9]) == 0
    assert count_extreme([-30.5, 31.0, 800.0]) == 3


def test_column_rms_from_the_information_at_zero():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3)) * [1.0, 100.0, 0.01]
    info0 = 0.25 * X.T @ X
    np.testing.assert_allclose(column_rms(info0, 30), np.sqrt(np.mean(X**2, axis=0)))


def diverging_path(k: int, m: int = 5) -> np.ndarray:
    """Newton on quasi-separated data: term 1 grows by ~1 per round, the others settle."""
    rounds = np.arange(k - m, k, dtype=float)
    return np.column_stack([0.3 + np.exp(-rounds), -(rounds + 2.0), 1.1 - 1e-13 * (-1.0) ** rounds])


@pytest.mark.parametrize("k", [8, 50, 700])
def test_the_growing_term_and_its_sign_are_named(k):
    # early on, a term that still settles monotonically (here by e^-k) is named too
    assert diverging_terms(diverging_path(k)) == ([(0, -1), (1, -1)] if k == 8 else [(1, -1)])


def test_a_jitter_at_the_end_does_not_hide_a_divergence():
    # a standardized quasi-separated fit at floating-point resolution: one step back
    path = [[0.11, -12.75], [0.11, -13.11], [0.11, -13.54], [0.11, -14.09], [0.11, -14.02]]
    assert diverging_terms(path) == [(1, -1)]


@pytest.mark.parametrize(
    "last",
    [
        # a standardized quasi-separated fit stalled at floating-point resolution: its last
        # steps wander along the flat direction, their way set by the sums' last bits
        [-13.93, -13.85, -13.61, -13.81, -13.85],  # with Sandybridge's BLAS kernels
        [-12.75, -13.11, -13.54, -14.09, -14.02],  # with SkylakeX's
        [-6.49, -6.58, -6.51, -6.47, -6.50],  # at max_iter=200, back and forth
    ],
)
def test_a_fit_stalled_at_resolution_still_names_the_term_that_went_away(last):
    path = np.column_stack([np.full(5, 0.11), last])
    assert diverging_terms(path, origin=[0.11, 0.0]) == [(1, -1)]


def test_without_an_origin_a_term_going_back_and_forth_is_not_named():
    path = np.column_stack([np.full(5, 0.11), [-6.49, -6.58, -6.51, -6.47, -6.50]])
    assert diverging_terms(path) == []


def test_moves_are_measured_in_units_of_the_linear_predictor():
    path = np.column_stack([np.arange(5.0), 1e-4 * np.arange(5.0)])
    assert diverging_terms(path) == [(0, 1)]  # a move 10,000 times smaller: noise
    assert diverging_terms(path, scale=[1.0, 1e4]) == [(0, 1), (1, 1)]  # the same move


@pytest.mark.parametrize(
    "path",
    [
        np.ones((5, 3)),  # nothing moves
        np.array([[0.0, 1.0], [1.0, 1.0]]),  # too short to judge
        np.array([[0.0], [1.0], [0.2], [1.1], [0.1]]),  # back and forth: not diverging
    ],
    ids=["still", "short", "oscillating"],
)
def test_nothing_diverges(path):
    assert diverging_terms(path) == []
