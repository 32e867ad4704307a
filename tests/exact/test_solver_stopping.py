"""What the stopping rule compares, as each round reports it (SolverStep.step_bound)."""

from __future__ import annotations

import numpy as np
import pytest
from _federated import make_hospitals, run_federated

from pancreas_fl.exact import DEFAULT_TOL


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_newton_stops_at_the_first_step_within_tol_times_the_point(fit_intercept):
    fit = run_federated(make_hospitals(11, "iid"), fit_intercept=fit_intercept, C=1.0)
    accepted = [step for step in fit.steps if step.accepted]
    for step in accepted:
        expected = DEFAULT_TOL * float(np.linalg.norm(step.best_theta))
        assert step.step_bound == pytest.approx(expected, rel=1e-15)
    assert [step.step_norm <= step.step_bound for step in accepted] == [False] * (
        len(accepted) - 1
    ) + [True]
    assert fit.step.converged


def test_lbfgs_compares_the_step_with_a_hundredth_of_tol():
    fit = run_federated(
        make_hospitals(11, "iid"), fit_intercept=True, C=1.0, method="lbfgs", max_rounds=500
    )
    assert fit.step.converged
    last = fit.step
    assert last.step_bound == pytest.approx(
        DEFAULT_TOL / 100 * float(np.linalg.norm(last.best_theta)), rel=1e-15
    )
    assert last.step_norm <= last.step_bound


def test_at_the_start_point_zero_only_a_zero_step_stops():
    fit = run_federated(make_hospitals(11, "iid"), fit_intercept=True, C=1.0)
    first = fit.steps[0]
    assert not np.any(first.best_theta)
    assert first.step_bound == 0.0
    assert first.step_norm > 0
    assert not first.converged
