"""Armijo backtracking, one trial point per round."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pancreas_fl.exact.solver import MIN_STEP, ArmijoLineSearch


def quadratic(a: float, b: float):
    """phi(t) = F(theta + t d) for F(x) = a/2 x^2 + b x, theta = 0, d = 1."""

    def f(t):
        return 0.5 * a * t * t + b * t

    def g(t):
        return np.array([a * t + b])

    return f, g


def search_along(f, g) -> ArmijoLineSearch:
    search = ArmijoLineSearch()
    search.start(f(0.0), np.array([1.0]), float(g(0.0)[0]))
    return search


def test_start_asks_for_the_full_step():
    search = ArmijoLineSearch()
    search.t = 0.01
    search.start(3.0, np.array([1.0, -2.0]), -5.0)
    assert search.t == 1.0
    np.testing.assert_array_equal(search.trial_point(np.array([1.0, 1.0])), [2.0, -1.0])


def test_the_newton_step_of_a_quadratic_is_accepted():
    f, g = quadratic(2.0, -2.0)  # minimum at t = 1
    search = search_along(f, g)
    assert search.accepts(f(1.0), g(1.0), finite=True)


def test_an_overshoot_is_rejected_and_the_cubic_finds_the_minimum():
    f, g = quadratic(2.0, -0.6)  # minimum at t = 0.3, phi(1) = 0.4 > phi(0)
    search = search_along(f, g)
    assert not search.accepts(f(1.0), g(1.0), finite=True)
    assert search.backtrack(f(1.0), g(1.0))
    # the interpolating cubic of a quadratic is the quadratic: its minimiser, 0.3
    assert search.t == pytest.approx(0.3, rel=1e-12)
    assert search.accepts(f(search.t), g(search.t), finite=True)


@settings(max_examples=50, deadline=None)
@given(
    a=st.floats(1e-3, 1e3),
    b=st.floats(-1e3, -1e-3),
    t=st.floats(1e-6, 1.0),
)
def test_a_rejected_step_is_at_least_halved_and_at_most_divided_by_ten(a, b, t):
    f, g = quadratic(a, b)
    search = search_along(f, g)
    search.t = t
    search.backtrack(f(t), g(t))
    assert 0.1 * t <= search.t <= 0.5 * t


@pytest.mark.parametrize("bad", [math.inf, math.nan])
def test_a_non_finite_trial_is_rejected_and_halved(bad):
    f, g = quadratic(1.0, -1.0)
    search = search_along(f, g)
    assert not search.accepts(bad, np.array([bad]), finite=False)
    assert search.backtrack(bad, None)
    assert search.t == 0.5


def test_the_gradient_form_accepts_a_decrease_below_rounding():
    # near the optimum phi(t) is one rounding error above phi(0), yet the slope says "downhill"
    search = ArmijoLineSearch()
    search.start(1.0, np.array([1.0]), -1e-20)
    one_ulp_up = float(np.nextafter(1.0, 2.0))
    assert search.accepts(one_ulp_up, np.array([-0.5e-20]), finite=True)
    assert not search.accepts(one_ulp_up, np.array([1e-20]), finite=True)


def test_the_search_gives_up_below_the_smallest_step():
    f, g = quadratic(1.0, -1.0)
    search = search_along(f, g)
    search.t = 1.5 * MIN_STEP
    assert not search.backtrack(math.inf, None)
    assert search.t < MIN_STEP
