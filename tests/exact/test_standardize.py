"""Federated standardization equals StandardScaler on the pooled data."""

from __future__ import annotations

import numpy as np
import pytest
from _federated import pool, pooled_reference, rel_dist, run_federated
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pancreas_fl.exact import (
    combine_moments,
    glm_summary,
    local_moments,
    local_terms,
    scale_from_var,
    standardize,
    to_raw_space,
)


def _hospitals(seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for n, shift in [(30, -1.0), (120, 0.0), (55, 2.0)]:
        X = rng.normal(8.0 + shift, 2.0, size=(n, 4))
        X[:, 2] = 1e4 + rng.normal(0.0, 1e-2, size=n)  # large offset, small spread
        X[:, 3] = 5.0  # constant feature
        y = (rng.random(n) < 1 / (1 + np.exp(-(X[:, 0] - 8.0)))).astype(int)
        out.append((X, y))
    return out


def test_moments_equal_standard_scaler():
    hospitals = _hospitals()
    n, mean, var = combine_moments([local_moments(X) for X, _ in hospitals])
    X, _ = pool(hospitals)
    sc = StandardScaler().fit(X)
    assert n == sc.n_samples_seen_
    np.testing.assert_allclose(mean, sc.mean_, rtol=1e-14)
    np.testing.assert_allclose(var, sc.var_, rtol=1e-9, atol=1e-20)
    scale = scale_from_var(var, mean, n)
    np.testing.assert_allclose(scale, sc.scale_, rtol=1e-9)
    assert scale[3] == 1.0
    np.testing.assert_allclose(standardize(X, mean, scale), sc.transform(X), atol=1e-9)


def test_combine_skips_empty_hospitals_and_checks_input():
    X = np.arange(12.0).reshape(6, 2)
    n, _mean, var = combine_moments([local_moments(X[:0]), local_moments(X)])
    assert n == 6
    np.testing.assert_allclose(var, X.var(axis=0))
    with pytest.raises(ValueError, match="at least one hospital"):
        combine_moments([])
    with pytest.raises(ValueError, match="every hospital is empty"):
        combine_moments([local_moments(X[:0])])


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_raw_space_model_predicts_like_the_pipeline(fit_intercept):
    hospitals = [(X[:, :2], y) for X, y in _hospitals(1)]
    n, mean, var = combine_moments([local_moments(X) for X, _ in hospitals])
    scale = scale_from_var(var, mean, n)
    std = [(standardize(X, mean, scale), y) for X, y in hospitals]
    fit = run_federated(std, fit_intercept=fit_intercept, C=0.5)
    X, y = pool(hospitals)
    pipe = make_pipeline(
        StandardScaler(),
        LogisticRegression(
            C=0.5, fit_intercept=fit_intercept, solver="newton-cholesky", tol=1e-12, max_iter=1000
        ),
    ).fit(X, y)
    lr = pipe[-1]
    ref = np.append(lr.coef_.ravel(), lr.intercept_) if fit_intercept else lr.coef_.ravel()
    assert rel_dist(fit.theta, ref) <= 1e-6
    coef = fit.theta[:2]
    b = fit.theta[2] if fit_intercept else None
    w_raw, b_raw = to_raw_space(coef, b, mean, scale)
    p_raw = 1 / (1 + np.exp(-(X @ w_raw + b_raw)))
    np.testing.assert_allclose(p_raw, pipe.predict_proba(X)[:, 1], rtol=1e-6, atol=1e-9)


def test_covariance_transforms_with_the_jacobian():
    # Unpenalized MLE is equivariant: the raw-space fit's Wald covariance equals J cov J^T.
    hospitals = [(X[:, :2], y) for X, y in _hospitals(2)]
    n, mean, var = combine_moments([local_moments(X) for X, _ in hospitals])
    scale = scale_from_var(var, mean, n)
    X, y = pool(hospitals)
    Xs = standardize(X, mean, scale)
    fit_s = run_federated([(Xs, y)], fit_intercept=True, penalty=None)
    info_s = local_terms(Xs, y, fit_s.theta, fit_intercept=True)["hess"]
    cov_s = np.array(
        glm_summary(
            fit_s.theta,
            info_s,
            feature_names=["a", "b"],
            fit_intercept=True,
            n=n,
            deviance=0.0,
            penalty=None,
        )["cov"]
    )
    w_raw, b_raw, cov_raw = to_raw_space(fit_s.theta[:2], fit_s.theta[2], mean, scale, cov_s)
    ref = pooled_reference([(X, y)], fit_intercept=True, penalty=None)
    assert rel_dist(np.append(w_raw, b_raw), ref) <= 1e-6
    info_raw = local_terms(X, y, ref, fit_intercept=True)["hess"]
    np.testing.assert_allclose(cov_raw, np.linalg.inv(info_raw), rtol=1e-5)
