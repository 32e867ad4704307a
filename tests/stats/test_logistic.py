"""Local terms at a hospital: values, derivatives and the sums that leave it."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss

from pancreas_fl.stats import aggregate_terms, local_terms, sigmoid


def _data(seed=0, n=50, d=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(8.0, 2.0, size=(n, d))
    y = (rng.random(n) < 0.4).astype(int)
    return X, y


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_loss_gradient_hessian(fit_intercept):
    X, y = _data()
    rng = np.random.default_rng(1)
    theta = rng.normal(0.0, 0.1, size=3 + fit_intercept)
    out = local_terms(X, y, theta, fit_intercept=fit_intercept)
    Xd = np.hstack([X, np.ones((50, 1))]) if fit_intercept else X
    p = 1.0 / (1.0 + np.exp(-(Xd @ theta)))
    assert out["n"] == 50
    assert out["n_pos"] == int(y.sum())
    assert out["loss"] == pytest.approx(50 * log_loss(y, p), rel=1e-12)
    np.testing.assert_allclose(out["grad"], Xd.T @ (p - y), rtol=1e-12)
    np.testing.assert_allclose(out["hess"], Xd.T @ (Xd * (p * (1 - p))[:, None]), rtol=1e-10)
    # central finite differences of the loss
    h = 1e-6
    fd = [
        (
            local_terms(X, y, theta + h * e, fit_intercept=fit_intercept, hessian=False)["loss"]
            - local_terms(X, y, theta - h * e, fit_intercept=fit_intercept, hessian=False)["loss"]
        )
        / (2 * h)
        for e in np.eye(theta.size)
    ]
    np.testing.assert_allclose(fd, out["grad"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_diag_moments_match_the_full_hessian(fit_intercept):
    X, y = _data(2)
    theta = np.full(3 + fit_intercept, 0.05)
    full = local_terms(X, y, theta, fit_intercept=fit_intercept, hessian="full")["hess"]
    mom = local_terms(X, y, theta, fit_intercept=fit_intercept, hessian="diag")["hess"]
    np.testing.assert_allclose(mom["sxx"], np.diag(full)[:3], rtol=1e-12)
    if fit_intercept:
        np.testing.assert_allclose(mom["sx"], full[-1, :3], rtol=1e-12)
        assert mom["s"] == pytest.approx(full[-1, -1], rel=1e-12)
    assert local_terms(X, y, theta, fit_intercept=fit_intercept, hessian=False)["hess"] is None


def test_extreme_linear_predictor_is_stable():
    X, y = _data(3)
    theta = np.array([1e3, -1e3, 1e3])  # |z| ~ 1e4: exp would overflow
    out = local_terms(X, y, theta, fit_intercept=False)
    assert np.isfinite(out["loss"])
    assert np.all(np.isfinite(out["grad"]))
    assert np.all(np.isfinite(out["hess"]))
    assert sigmoid(np.array([-1e4, 0.0, 1e4])).tolist() == [0.0, 0.5, 1.0]


def test_aggregate_equals_pooled():
    X, y = _data(4, n=90)
    parts = [(X[:20], y[:20]), (X[20:70], y[20:70]), (X[70:], y[70:])]
    theta = np.array([0.1, -0.2, 0.05, 0.3])
    agg = aggregate_terms([local_terms(a, b, theta, fit_intercept=True) for a, b in parts])
    pooled = local_terms(X, y, theta, fit_intercept=True)
    assert agg["n"] == 90
    assert agg["n_pos"] == pooled["n_pos"]
    assert agg["loss"] == pytest.approx(pooled["loss"], rel=1e-13)
    np.testing.assert_allclose(agg["grad"], pooled["grad"], rtol=1e-12)
    np.testing.assert_allclose(agg["hess"], pooled["hess"], rtol=1e-12)
    aggd = aggregate_terms(
        [local_terms(a, b, theta, fit_intercept=True, hessian="diag") for a, b in parts]
    )
    pooledd = local_terms(X, y, theta, fit_intercept=True, hessian="diag")["hess"]
    np.testing.assert_allclose(aggd["hess"]["sxx"], pooledd["sxx"], rtol=1e-12)


def test_invalid_inputs():
    X, y = _data()
    with pytest.raises(ValueError, match="theta has 3 entries but the design has 4 columns"):
        local_terms(X, y, np.zeros(3), fit_intercept=True)
    with pytest.raises(ValueError, match="only the labels 0 and 1"):
        local_terms(X, y + 1, np.zeros(3), fit_intercept=False)
    with pytest.raises(ValueError, match="'hessian' must be one of"):
        local_terms(X, y, np.zeros(3), fit_intercept=False, hessian="yes")
    with pytest.raises(ValueError, match="one label per row"):
        local_terms(X, y[:-1], np.zeros(3), fit_intercept=False)
    with pytest.raises(ValueError, match="at least one hospital"):
        aggregate_terms([])
