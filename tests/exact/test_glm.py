"""GLM statistics from the pooled information matrix."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from _federated import make_hospitals, pool, run_federated

from pancreas_fl.exact import Z_975, format_summary, glm_summary, null_deviance
from pancreas_fl.exact.glm import chi2_sf

NAMES = ["KRAS", "CDKN2A", "TP53", "SMAD4", "MUC1"]


def _fit(penalty, fit_intercept=True, C=1.0, **solver):
    hospitals = make_hospitals(21, "noniid")
    fit = run_federated(hospitals, fit_intercept=fit_intercept, C=C, penalty=penalty, **solver)
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


@pytest.mark.parametrize("df", [1, 2, 3, 4, 7, 10, 31, 60, 301])
def test_chi2_sf_equals_scipy(df):
    chi2 = pytest.importorskip("scipy.stats").chi2
    for x in [1e-8, 0.01, 0.5, 1.0, df / 2, df, 2 * df, 5 * df + 20, 200.0, 1400.0]:
        assert chi2_sf(x, df) == pytest.approx(chi2.sf(x, df), rel=1e-11, abs=1e-300)
    assert chi2_sf(0.0, df) == 1.0
    assert chi2_sf(math.inf, df) == 0.0
    assert math.isnan(chi2_sf(1.0, 0))


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_statistics_equal_statsmodels_glm_on_the_pooled_rows(fit_intercept):
    sm = pytest.importorskip("statsmodels.api")
    s, _, X, y = _fit(None, fit_intercept, C=math.inf, tol=1e-12)
    Xd = np.hstack([X, np.ones((len(y), 1))]) if fit_intercept else X
    model = sm.GLM(y, Xd, family=sm.families.Binomial())
    # restarted at its optimum: IRLS takes the covariance from its last iteration's start
    res = model.fit(start_params=model.fit(tol=1e-14).params, tol=1e-14, maxiter=100)
    ci = np.exp(res.conf_int())
    for ours, theirs in [
        ("coef", res.params),
        ("std_err", res.bse),
        ("p_value", res.pvalues),
        ("odds_ratio", np.exp(res.params)),
        ("or_ci_lower", ci[:, 0]),
        ("or_ci_upper", ci[:, 1]),
        ("llf", res.llf),
        ("aic", res.aic),
        ("bic", res.bic_llf),
    ]:
        np.testing.assert_allclose(s[ours], theirs, rtol=1e-8)
    assert s["df_resid"] == res.df_resid
    assert s["df_model"] == res.df_model + (not fit_intercept)  # statsmodels: rank - 1 always
    if fit_intercept:
        assert s["lr_stat"] == pytest.approx(2 * (res.llf - res.llnull), rel=1e-8)


def test_penalized_statistics_have_llf_and_bic_but_no_likelihood_ratio_test():
    s, _, _, y = _fit("l2", True, 0.5)
    assert s["llf"] == -0.5 * s["deviance"]
    assert s["bic"] == pytest.approx(s["deviance"] + 6 * math.log(len(y)), rel=1e-14)
    assert s["lr_stat"] is None
    assert s["lr_p_value"] is None
    assert s["lr_df"] == s["df_model"] == 5
    assert "LR chi2" not in format_summary(s)


def test_aliased_term_without_penalty_is_na_and_the_reduced_fit_is_reported():
    # x2 = 2 x1: info of the design (x1, x2, 1) with weights w
    rng = np.random.default_rng(5)
    x = rng.normal(size=40)
    Xd = np.column_stack([x, 2 * x, np.ones(40)])
    info = Xd.T @ (Xd * rng.uniform(0.1, 0.25, 40)[:, None])
    theta = np.array([0.2, 0.4, -0.3])  # any split of the effect 1.0 of x1
    s = glm_summary(
        theta,
        info,
        feature_names=["x1", "x2"],
        fit_intercept=True,
        n=40,
        deviance=30.0,
        penalty=None,
        null_deviance=50.0,
    )
    assert s["aliased"] == ["x2"]
    assert s["aliases"] == {"x2": {"x1": pytest.approx(2.0, rel=1e-12)}}
    assert s["coef"][0] == pytest.approx(1.0, rel=1e-12)
    assert math.isnan(s["coef"][1])
    assert math.isnan(s["std_err"][1])
    assert s["coef"][2] == pytest.approx(-0.3, rel=1e-12)
    reduced = np.linalg.inv(info[np.ix_([0, 2], [0, 2])])
    np.testing.assert_allclose(np.array(s["cov"])[np.ix_([0, 2], [0, 2])], reduced, rtol=1e-12)
    assert (s["rank"], s["df_model"], s["df_resid"], s["edf"]) == (2, 1, 38, 2.0)
    assert s["aic"] == 34.0
    assert s["lr_stat"] == 20.0
    assert s["lr_p_value"] == pytest.approx(math.erfc(math.sqrt(10.0)), rel=1e-12)


@pytest.mark.parametrize(
    ("converged", "n_extreme", "expected"),
    [
        (False, 0, r"did not converge in 9 rounds\. Raise max_iter"),
        (True, 3, r"3 patients have a fitted probability numerically 0 or 1 \(R's glm"),
    ],
)
def test_an_unpenalized_fit_without_a_valid_wald_table(converged, n_extreme, expected):
    _, fit, _, y = _fit(None, True)
    s = glm_summary(
        fit.theta,
        fit.solver.hess_loglik,
        feature_names=NAMES,
        fit_intercept=True,
        n=len(y),
        deviance=2 * fit.step.best_loss,
        penalty=None,
        rounds=9,
        converged=converged,
        n_extreme=n_extreme,
    )
    assert s["wald"] is False
    assert re.search(expected, s["note"])
    assert re.search(r"Use penalty='firth' .* or a finite C", s["note"])
    assert all(math.isnan(v) for v in s["std_err"] + s["ci_upper"] + s["or_ci_lower"])
    assert s["coef"] == fit.theta.tolist()
    text = format_summary(s)
    assert "P>|z|" not in text
    assert "No Wald table" in text


def test_a_summary_from_an_older_version_still_formats():
    s, _, _, _ = _fit(None)
    old = {k: v for k, v in s.items() if k in OLD_FIELDS}
    text = format_summary(old)
    assert "P>|z|" in text
    assert "odds ratio" not in text
    assert "BIC" not in text


OLD_FIELDS = {
    *("terms", "coef", "std_err", "z", "p_value", "ci_lower", "ci_upper", "cov", "n"),
    *("deviance", "null_deviance", "aic", "df_model", "df_resid", "edf", "penalized"),
    *("penalty", "C", "rounds", "singular", "note"),
}


def test_design_info_must_match_theta():
    with pytest.raises(ValueError, match="design_info must have shape"):
        glm_summary(
            np.zeros(2),
            np.eye(2),
            feature_names=["a"],
            fit_intercept=True,
            n=5,
            deviance=1.0,
            design_info=np.eye(3),
        )
