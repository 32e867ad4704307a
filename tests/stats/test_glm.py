"""GLM statistics from the pooled information matrix."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _federated import make_hospitals, pool, run_federated

from pancreas_fl.stats import Z_975, format_summary, glm_summary, null_deviance

NAMES = ["KRAS", "CDKN2A", "TP53", "SMAD4", "MUC1"]


def _fit(penalty, fit_intercept=True, C=1.0):
    hospitals = make_hospitals(21, "noniid")
    fit = run_federated(hospitals, fit_intercept=fit_intercept, C=C, penalty=penalty)
    X, y = pool(hospitals)
    s = glm_summary(
        fit.theta,
        fit.solver.hess_loglik,
        feature_names=NAMES,
        fit_intercept=fit_intercept,
        n=len(y),
        deviance=2 * fit.step.best_loss,
        null_deviance=null_deviance(len(y), int(y.sum()), fit_intercept=fit_intercept),
        C=C,
        penalty=penalty,
        rounds=fit.rounds,
    )
    return s, fit, X, y


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_unpenalized_statistics_equal_the_pooled_reference(fit_intercept):
    s, fit, X, y = _fit(None, fit_intercept)
    Xd = np.hstack([X, np.ones((len(y), 1))]) if fit_intercept else X
    p = 1 / (1 + np.exp(-(Xd @ fit.theta)))
    cov = np.linalg.inv(Xd.T @ (Xd * (p * (1 - p))[:, None]))
    se = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(s["cov"], cov, rtol=1e-8)
    np.testing.assert_allclose(s["std_err"], se, rtol=1e-8)
    np.testing.assert_allclose(s["z"], fit.theta / se, rtol=1e-8)
    expected_p = [math.erfc(abs(z) / math.sqrt(2)) for z in fit.theta / se]
    np.testing.assert_allclose(s["p_value"], expected_p, rtol=1e-6, atol=1e-300)
    assert all(0.0 <= v <= 1.0 for v in s["p_value"])
    np.testing.assert_allclose(s["ci_lower"], fit.theta - Z_975 * se, rtol=1e-8)
    np.testing.assert_allclose(s["ci_upper"], fit.theta + Z_975 * se, rtol=1e-8)
    # deviance, null deviance, AIC by direct computation
    dev = -2 * np.sum(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert s["deviance"] == pytest.approx(dev, rel=1e-10)
    if fit_intercept:
        pbar = y.mean()
        null = -2 * np.sum(y * np.log(pbar) + (1 - y) * np.log(1 - pbar))
    else:
        null = 2 * len(y) * np.log(2)
    assert s["null_deviance"] == pytest.approx(null, rel=1e-12)
    k = 5 + fit_intercept
    assert s["aic"] == pytest.approx(dev + 2 * k, rel=1e-10)
    assert s["df_model"] == k - fit_intercept  # R and statsmodels: the intercept excluded
    assert s["n_params"] == s["rank"] == k
    assert s["df_resid"] == len(y) - k
    assert s["edf"] == k
    assert not s["penalized"]
    assert s["terms"] == ([*NAMES, "intercept"] if fit_intercept else NAMES)


def test_penalized_statistics_are_labelled_approximate():
    C = 0.1
    s, fit, X, y = _fit("l2", True, C)
    Xd = np.hstack([X, np.ones((len(y), 1))])
    p = 1 / (1 + np.exp(-(Xd @ fit.theta)))
    info = Xd.T @ (Xd * (p * (1 - p))[:, None])
    P = np.diag([1.0] * 5 + [0.0])
    cov = np.linalg.inv(info + P / C)
    np.testing.assert_allclose(s["cov"], cov, rtol=1e-8)
    assert s["penalized"]
    assert "approximate" in s["note"]
    assert "C=inf" in s["note"]
    assert 0 < s["edf"] < 6
    assert s["edf"] == pytest.approx(np.trace(cov @ info), rel=1e-10)


def test_null_deviance_edge_cases():
    assert null_deviance(10, 0, fit_intercept=True) == 0.0
    assert null_deviance(10, 10, fit_intercept=True) == 0.0
    assert null_deviance(4, 2, fit_intercept=True) == pytest.approx(8 * math.log(2))
    with pytest.raises(ValueError, match="0 <= n_pos <= n"):
        null_deviance(3, 5, fit_intercept=True)


def test_singular_information_uses_pseudo_inverse():
    theta = np.array([0.5, 0.0])
    info = np.array([[1.0, 1.0], [1.0, 1.0]])
    s = glm_summary(
        theta, info, feature_names=["a"], fit_intercept=True, n=10, deviance=3.0, penalty=None
    )
    assert s["singular"]
    assert "singular" in s["note"]
    assert all(0.0 <= v <= 1.0 or math.isnan(v) for v in s["p_value"])
    assert math.isnan(s["null_deviance"])


def test_input_checks():
    with pytest.raises(ValueError, match="feature_names has 1 names"):
        glm_summary(
            np.zeros(3), np.eye(3), feature_names=["a"], fit_intercept=True, n=5, deviance=1.0
        )
    with pytest.raises(ValueError, match="hess_loglik must have shape"):
        glm_summary(
            np.zeros(2), np.eye(3), feature_names=["a"], fit_intercept=True, n=5, deviance=1.0
        )


@pytest.mark.parametrize("penalty", [None, "l2"])
def test_format_summary(penalty):
    s, fit, _, _ = _fit(penalty)
    text = format_summary(s)
    for term in [*NAMES, "intercept"]:
        assert term in text
    for col in ["coef", "std err", "z", "P>|z|", "[0.025", "0.975]"]:
        assert col in text
    assert f"Rounds: {fit.rounds}" in text
    assert "Null deviance" in text
    assert "AIC" in text
    assert "Note:" in text
    if penalty:
        assert "C=inf" in text
    widths = {len(line) for line in text.splitlines()}
    assert max(widths) <= 100
