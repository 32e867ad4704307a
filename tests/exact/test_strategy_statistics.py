"""The exact strategy's GLM statistics end to end, against statsmodels and R's semantics.

The federated analysis runs on 2-3 hospitals (the offline engine); the reference is
statsmodels' ``GLM(y, X, family=Binomial())`` on the pooled rows. Data are built here with a
seeded generator and pass through the hospitals' CSV files, so both sides read the same
numbers.
"""

from __future__ import annotations

import io
import itertools
import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest

from _helpers import run_analysis

sm = pytest.importorskip("statsmodels.api")  # the `test` extra installs it
chi2 = pytest.importorskip("scipy.stats").chi2
SingularMatrixWarning = pytest.importorskip("statsmodels.tools.sm_exceptions").SingularMatrixWarning

RTOL = 1e-8
#: A tight solver tolerance, so that both sides are compared at the same optimum (the
#: statistics, not the stopping rules: at the default 1e-8 a coefficient may differ by ~1e-8).
TIGHT = 1e-12
SCALES = np.array([1.0, 10.0, 0.1, 3.0])
SHIFTS = np.array([0.0, 50.0, 0.0, 1.0])
BETA = np.array([0.8, -0.05, 4.0, 0.2])


def cohort(seed: int, n: int = 450) -> pd.DataFrame:
    """Four features on different scales and a label from a logistic model."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)) * SCALES + SHIFTS
    y = (rng.random(n) < 1 / (1 + np.exp(-(2.0 + X @ BETA)))).astype(int)
    frame = pd.DataFrame(X, columns=["age", "ca19_9", "kras", "bmi"])
    frame["diagnosis"] = y
    return frame


def as_hospitals(frame: pd.DataFrame, n_hospitals: int) -> list:
    bounds = np.linspace(0, len(frame), n_hospitals + 1).astype(int)
    return [
        [{"pancreasData.csv": frame.iloc[a:b].to_csv(index=False).encode()}]
        for a, b in itertools.pairwise(bounds)
    ]


def pooled(splits) -> tuple[np.ndarray, np.ndarray, list[str]]:
    frame = pd.concat([pd.read_csv(io.BytesIO(s[0]["pancreasData.csv"])) for s in splits])
    return frame.iloc[:, :-1].to_numpy(float), frame.iloc[:, -1].to_numpy(), list(frame)[:-1]


def glm(X, y, fit_intercept: bool):
    """Fit with statsmodels, restarted at its own optimum.

    IRLS takes the covariance from the weights of its last iteration's start, so a fit that
    stops early (as statsmodels 0.15 on Python 3.10 does here, after 4 iterations) has
    standard errors off by ~1e-8.
    """
    Xd = np.column_stack([X, np.ones(len(X))]) if fit_intercept else X
    model = sm.GLM(y, Xd, family=sm.families.Binomial())
    first = model.fit(tol=1e-14, maxiter=100)
    return model.fit(start_params=first.params, tol=1e-14, maxiter=100)


def close(ours, theirs, rtol=RTOL):
    np.testing.assert_allclose(np.asarray(ours, float), np.asarray(theirs, float), rtol=rtol)


@pytest.mark.parametrize("n_hospitals", [2, 3])
@pytest.mark.parametrize("fit_intercept", [True, False], ids=["intercept", "no-intercept"])
def test_unpenalized_statistics_equal_statsmodels_glm(fit_intercept, n_hospitals):
    splits = as_hospitals(cohort(3), n_hospitals)
    model = run_analysis(
        splits, strategy="exact", fit_intercept=fit_intercept, C=math.inf, tol=TIGHT
    ).result
    s = model["statistics"]
    X, y, names = pooled(splits)
    res = glm(X, y, fit_intercept)
    ci = res.conf_int()
    assert s["terms"] == ([*names, "intercept"] if fit_intercept else names)
    assert s["wald"] is True
    assert s["aliased"] == []
    assert s["diverging"] == {}
    for ours, theirs in [
        ("coef", res.params),
        ("std_err", res.bse),
        ("z", res.tvalues),
        ("p_value", res.pvalues),
        ("ci_lower", ci[:, 0]),
        ("ci_upper", ci[:, 1]),
        ("odds_ratio", np.exp(res.params)),
        ("or_ci_lower", np.exp(ci[:, 0])),
        ("or_ci_upper", np.exp(ci[:, 1])),
        ("cov", res.cov_params()),
        ("deviance", res.deviance),
        ("llf", res.llf),
        ("aic", res.aic),
        ("bic", res.bic_llf),
    ]:
        close(s[ours], theirs)
    assert s["df_resid"] == res.df_resid == len(y) - s["rank"]
    assert s["rank"] == s["n_params"] == 4 + fit_intercept
    if fit_intercept:  # R and statsmodels: the intercept is not a model degree of freedom
        assert s["df_model"] == res.df_model == 4
        llnull = res.llnull
        close(s["null_deviance"], res.null_deviance)
    else:  # R: the null model is eta = 0 (p = 1/2) and df_model = rank; statsmodels'
        # GLM always fits a constant for llnull and subtracts 1 from the rank
        assert s["df_model"] == 4 == res.df_model + 1
        llnull = sm.families.Binomial().loglike(y, np.full(len(y), 0.5))
    lr = 2 * (res.llf - llnull)
    close(s["llnull"], llnull)
    close(s["lr_stat"], lr)
    assert s["lr_df"] == s["df_model"]
    close(s["lr_p_value"], chi2.sf(lr, s["df_model"]))


def test_the_default_tolerance_already_agrees_to_1e_8_with_an_intercept():
    splits = as_hospitals(cohort(5), 3)
    s = run_analysis(splits, strategy="exact", fit_intercept=True, C=math.inf).result["statistics"]
    res = glm(*pooled(splits)[:2], True)
    close(s["coef"], res.params)
    close(s["std_err"], res.bse)
    close(s["lr_stat"], 2 * (res.llf - res.llnull))


# ------------------------------------------------------------------------------ aliasing
def aliased_cohort(kind: str, seed: int = 7) -> tuple[pd.DataFrame, list[str], dict]:
    """Make a cohort with an aliased column: R's NA term, and the relation R's alias() prints."""
    frame = cohort(seed)
    if kind == "twice":
        frame.insert(2, "age2", 2 * frame["age"])
        return frame, ["age2"], {"age2": {"age": 2.0}}
    if kind == "sum":
        frame.insert(4, "total", frame["age"] + frame["kras"])
        return frame, ["total"], {"total": {"age": 1.0, "kras": 1.0}}
    if kind == "both":
        frame.insert(2, "age2", 2 * frame["age"])
        frame.insert(5, "total", frame["age"] + frame["kras"])
        return frame, ["age2", "total"], {"age2": {"age": 2.0}, "total": {"age": 1.0, "kras": 1.0}}
    frame.insert(1, "site", 5.0)  # constant: aliased with the intercept (R's column order)
    return frame, ["site"], {"site": {"intercept": 5.0}}


@pytest.mark.parametrize("kind", ["twice", "sum", "both", "constant"])
def test_aliased_terms_are_na_and_the_rest_is_the_reduced_fit(kind):
    frame, aliased, relations = aliased_cohort(kind)
    splits = as_hospitals(frame, 3)
    run = run_analysis(splits, strategy="exact", fit_intercept=True, C=math.inf)
    s = run.result["statistics"]
    X, y, names = pooled(splits)
    terms = [*names, "intercept"]
    keep = [j for j, name in enumerate(names) if name not in aliased]
    # R's glm: aliased coefficients NA, the others those of the fit without the aliased
    # columns (statsmodels on the reduced design); the fit itself does not change
    reduced = glm(X[:, keep], y, True)
    with warnings.catch_warnings():  # statsmodels warns that the design is rank-deficient
        warnings.simplefilter("ignore", SingularMatrixWarning)
        full = glm(X, y, True)  # statsmodels: pinv, a min-norm split, its rank for df and AIC
    assert s["aliased"] == aliased
    assert s["wald"] is True
    assert s["singular"] is True
    estimable = [j for j, t in enumerate(terms) if t not in aliased]
    for field, theirs in [
        ("coef", reduced.params),
        ("std_err", reduced.bse),
        ("p_value", reduced.pvalues),
        ("odds_ratio", np.exp(reduced.params)),
        ("or_ci_upper", np.exp(reduced.conf_int()[:, 1])),
    ]:
        close(np.asarray(s[field])[estimable], theirs)
        assert all(math.isnan(s[field][terms.index(t)]) for t in aliased)
    for res in (full, reduced):  # the same fit, however parametrized
        for ours, theirs in [
            ("deviance", res.deviance),
            ("llf", res.llf),
            ("aic", res.aic),
            ("bic", res.bic_llf),
            ("lr_stat", 2 * (res.llf - res.llnull)),
        ]:
            close(s[ours], theirs)
    assert s["rank"] == len(estimable) == np.linalg.matrix_rank(np.column_stack([X, y * 0 + 1]))
    assert s["df_model"] == full.df_model == reduced.df_model == len(estimable) - 1
    assert s["df_resid"] == full.df_resid == len(y) - len(estimable)
    assert s["edf"] == len(estimable)
    assert s["aliases"].keys() == relations.keys()
    for term, combination in relations.items():
        assert s["aliases"][term].keys() == combination.keys()
        close(list(s["aliases"][term].values()), list(combination.values()), rtol=1e-9)
    warned = [r.message for r in run.logs if r.log_type == "warn"]
    assert any(re.search(rf"aliased terms .*{re.escape(aliased[0])} = ", m) for m in warned)


def test_aliased_terms_print_as_na_as_r_does():
    from pancreas_fl.exact import format_summary

    frame, _, _ = aliased_cohort("twice")
    s = run_analysis(as_hospitals(frame, 2), strategy="exact", fit_intercept=True, C=math.inf)
    text = format_summary(s.result["statistics"])
    rows = [line.split() for line in text.splitlines() if line.startswith("age2 ")]
    assert rows == [["age2"] + ["NA"] * 6, ["age2"] + ["NA"] * 3]  # Wald and odds-ratio tables
    words = " ".join(text.split())
    assert "1 term not defined because of singularities (aliased: age2 = 2 x age)" in words


def test_with_a_penalty_aliased_terms_keep_their_row_and_are_named():
    frame, aliased, _ = aliased_cohort("both")
    s = run_analysis(as_hospitals(frame, 3), strategy="exact", fit_intercept=True, C=1.0)
    s = s.result["statistics"]
    assert s["aliased"] == aliased
    assert not any(math.isnan(v) for v in s["coef"] + s["std_err"] + s["p_value"])
    assert s["rank"] == s["n_params"] - 2
    close(s["aic"], s["deviance"] + 2 * s["rank"], rtol=1e-14)
    assert 0 < s["edf"] < s["rank"]
    assert s["lr_stat"] is None
    assert s["lr_p_value"] is None
    assert re.search(r"Aliased terms, not identified by the data \(age2 = 2 x age", s["note"])


# ---------------------------------------------------------------------------- separation
def separated_cohort(kind: str, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 300
    X = rng.normal(size=(n, 3))
    if kind == "complete":  # a hyperplane in (a, b) separates the classes
        y = (X[:, 0] - 0.5 * X[:, 1] > 0.2).astype(int)
    else:  # quasi-complete: every patient with the flag c = 1 has label 0
        X[:, 2] = (rng.random(n) < 0.2).astype(float)
        y = (rng.random(n) < 1 / (1 + np.exp(-(0.3 + 0.8 * X[:, 1])))).astype(int)
        y[X[:, 2] == 1] = 0
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    frame["diagnosis"] = y
    return frame


@pytest.mark.parametrize(
    ("kind", "max_iter", "diverging"),
    [
        ("quasi", 50, {"c": -1}),  # stops at max_iter, still diverging
        ("quasi", 1000, {"c": -1}),  # "converges" once c's gradient underflows to 0
        ("complete", 50, {"a": 1, "b": -1, "intercept": -1}),
        # standardized: stops by "tolerance" at floating-point resolution after a step back
        ("quasi-standardized", 50, {"c": -1}),
    ],
)
def test_separation_gives_no_wald_table_and_names_the_diverging_terms(kind, max_iter, diverging):
    standardize = kind.endswith("-standardized")
    splits = as_hospitals(separated_cohort(kind.removesuffix("-standardized")), 2)
    run = run_analysis(
        splits,
        strategy="exact",
        fit_intercept=True,
        C=math.inf,
        max_iter=max_iter,
        standardize=standardize,
    )
    s = run.result["statistics"]
    assert s["wald"] is False
    assert all(math.isnan(v) for v in s["std_err"] + s["z"] + s["p_value"] + s["ci_lower"])
    assert s["lr_p_value"] is None
    assert {t: s["diverging"][t] for t in diverging} == diverging
    assert s["n_extreme"] > 0
    name, sign = next(iter(diverging.items()))
    direction = f"{name} \\(towards {'[+]' if sign > 0 else '-'}inf\\)"
    pattern = rf"No Wald table: .* keeps? growing: .*{direction}.* finite C"
    assert re.search(pattern, s["note"], flags=re.S)
    warned = [r.message for r in run.logs if r.log_type == "warn"]
    assert any(re.search(pattern, m, flags=re.S) for m in warned)
    from pancreas_fl.exact import format_summary

    text = format_summary(s)
    assert "std err" not in text
    assert "odds ratio" not in text
    # the remedy works: with a penalty the table is given
    penalized = run_analysis(splits, strategy="exact", fit_intercept=True, C=1.0).result
    assert penalized["statistics"]["wald"] is True
    assert penalized["stop_reason"] == "tolerance"


def test_a_fit_stopped_by_max_iter_without_separation_has_no_wald_table():
    splits = as_hospitals(cohort(3), 2)
    s = run_analysis(splits, strategy="exact", fit_intercept=True, C=math.inf, max_iter=1)
    s = s.result["statistics"]
    assert s["wald"] is False
    assert re.search(r"did not converge in 2 rounds\. Raise max_iter", s["note"])
    assert s["n_extreme"] == 0


def test_the_clean_unpenalized_note_and_fields_are_unchanged():
    s = run_analysis(as_hospitals(cohort(3), 3), strategy="exact", fit_intercept=True, C=math.inf)
    s = s.result["statistics"]
    assert s["note"] == "Unpenalized maximum likelihood fit; Wald standard errors from I^-1."
    assert s["singular"] is False
    assert s["n_extreme"] == 0
    close(s["aic"], s["deviance"] + 2 * 5, rtol=1e-15)


# ------------------------------------------------------------------- the hospital's count
@pytest.mark.parametrize("fit_intercept", [False, True])
def test_the_hospital_sends_the_count_of_extreme_fitted_probabilities(fit_intercept):
    from pancreas_fl.exact.strategy import ExactHospital
    from pancreas_fl.params import resolve_params
    from pancreas_fl.reader import load_hospital_data

    split = as_hospitals(separated_cohort("quasi"), 1)[0]
    data = load_hospital_data(split, dataset="pancreasData.csv", label=None)
    params = resolve_params(strategy="exact", fit_intercept=fit_intercept, C=math.inf)
    hospital = ExactHospital(data, params)
    assert hospital.update(None)["n_extreme"] == 0  # theta = 0: every probability is 1/2
    X, _ = data.to_numpy()
    theta = np.array([0.0, 0.0, -31.0] + [0.5] * fit_intercept)  # the flag c -> p ~ 0
    update = hospital.update({"next_theta": theta, "curvature": "full", "scaler": None})
    assert update["n_extreme"] == int(np.sum(X[:, 2] == 1)) > 0
    assert isinstance(update["n_extreme"], int)
