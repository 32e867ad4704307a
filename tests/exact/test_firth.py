"""Firth's penalized likelihood (exact/firth.py): the sums, the objective, the protocol."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from _firth_data import FIXTURES

from _helpers import DATASET, run_analysis
from flame_offline import NodeFailedError
from pancreas_fl.errors import ConfigError, OutOfStepError
from pancreas_fl.exact import ExactAggregator, firth, local_terms
from pancreas_fl.exact.curvature import FLOAT64_TRIANGLE_LIMIT
from pancreas_fl.exact.sums import design_matrix, sigmoid
from pancreas_fl.handshake import Agreement
from pancreas_fl.params import resolve_params


def data(seed: int, n: int = 40, d: int = 3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * [1.0, 5.0, 0.2][:d] + [0.0, 2.0, -1.0][:d]
    y = (rng.random(n) < 0.4).astype(int)
    theta = rng.normal(size=d + 1) * 0.3
    return X, y, theta


def penalized_loglik(X, y, theta, fit_intercept):
    Xd = design_matrix(X, fit_intercept=fit_intercept)
    pi = sigmoid(Xd @ theta)
    info = Xd.T @ (Xd * (pi * (1 - pi))[:, None])
    return (
        float(np.sum(y * np.log(pi) + (1 - y) * np.log1p(-pi))) + 0.5 * np.linalg.slogdet(info)[1]
    )


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("standardized", [False, True])
def test_the_third_moment_sum_and_its_contraction_are_the_hat_correction(
    fit_intercept, standardized
):
    X, y, theta = data(0)
    theta = theta if fit_intercept else theta[:-1]
    scaler = {"mean": X.mean(0), "scale": X.std(0)} if standardized else {}
    Xd = design_matrix(
        (X - X.mean(0)) / X.std(0) if standardized else X, fit_intercept=fit_intercept
    )
    pi = sigmoid(Xd @ theta)
    w = pi * (1 - pi)
    expected = np.einsum("i,ia,ib,ic->abc", w * (0.5 - pi), Xd, Xd, Xd)
    third = firth.local_third_moments(X, theta, fit_intercept=fit_intercept, **scaler)
    np.testing.assert_allclose(third, expected, rtol=1e-12, atol=1e-12)
    info = local_terms(X, y, theta, fit_intercept=fit_intercept, **scaler)["hess"]
    h = w * np.einsum("ij,jk,ik->i", Xd, np.linalg.inv(info), Xd)
    hat = Xd.T @ (h * (0.5 - pi))
    np.testing.assert_allclose(firth.third_moment_correction(third, info), hat, rtol=1e-10)
    inv = firth.inverse_information(info)
    local = firth.local_hat_correction(X, theta, inv, fit_intercept=fit_intercept, **scaler)
    np.testing.assert_allclose(local, hat, rtol=1e-10)


def test_the_gradient_is_that_of_the_penalized_objective():
    X, y, theta = data(1)
    terms = local_terms(X, y, theta, fit_intercept=True)
    third = firth.local_third_moments(X, theta, fit_intercept=True)
    correction = firth.third_moment_correction(third, terms["hess"])
    f, g = firth.penalized_terms(terms["loss"], terms["grad"], terms["hess"], correction)
    assert f == pytest.approx(-penalized_loglik(X, y, theta, True), rel=1e-12)
    eps = 1e-6
    numeric = [
        -(
            penalized_loglik(X, y, theta + eps * e, True)
            - penalized_loglik(X, y, theta - eps * e, True)
        )
        / (2 * eps)
        for e in np.eye(theta.size)
    ]
    np.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-8)


def test_a_singular_information_gives_an_infinite_objective():
    info = np.array([[1.0, 1.0], [1.0, 1.0]])
    assert firth.logdet(info) == -math.inf
    assert firth.inverse_information(info) is None
    f, g = firth.penalized_terms(1.0, np.zeros(2), info, None)
    assert f == math.inf
    assert np.all(np.isnan(g))


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_the_null_model_closed_form_is_the_restricted_maximum(fit_intercept):
    X, y, _ = data(2, n=50)
    p = X.shape[1] + fit_intercept
    info0 = local_terms(X, y, np.zeros(p), fit_intercept=fit_intercept)["hess"]
    closed = firth.null_penalized_loglik(len(y), int(y.sum()), info0, fit_intercept=fit_intercept)
    if not fit_intercept:
        assert closed == pytest.approx(penalized_loglik(X, y, np.zeros(p), False), rel=1e-12)
        return
    grid = np.linspace(-3, 3, 60001)
    values = [penalized_loglik(X, y, np.r_[np.zeros(p - 1), b], True) for b in grid[::100]]
    best = grid[::100][int(np.argmax(values))]
    fine = np.linspace(best - 0.01, best + 0.01, 2001)
    top = max(penalized_loglik(X, y, np.r_[np.zeros(p - 1), b], True) for b in fine)
    assert closed >= top - 1e-12
    assert closed == pytest.approx(top, abs=1e-9)


@pytest.mark.parametrize(
    "request_",
    [
        {"send": "fourth", "info_inv": None},
        {"send": "hat", "info_inv": None},
        {"send": "hat", "info_inv": np.eye(3)},
        {"send": "hat", "info_inv": np.full((4, 4), np.nan)},
        {"send": "third", "info_inv": np.eye(4)},
        "third",
    ],
)
def test_a_damaged_firth_request_is_refused_at_the_hospital(request_):
    with pytest.raises(OutOfStepError, match=r"^the aggregator's broadcast .* damaged"):
        firth.check_request(request_, 4)
    assert firth.check_request({"send": "hat", "info_inv": np.eye(4)}, 4)["send"] == "hat"
    assert firth.check_request(None, 4) is None


# ---------------------------------------------------------------------------- parameters
def test_firth_sets_c_to_inf():
    p = resolve_params(strategy="exact", penalty="firth")
    assert p.penalty == "firth"
    assert math.isinf(p.C)
    assert math.isinf(resolve_params(strategy="exact", penalty="firth", C=math.inf).C)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"penalty": "firth"}, r"'penalty' applies to strategy='exact' only"),
        ({"strategy": "exact", "penalty": "firth", "C": 1.0}, r"cannot be combined with C=1\.0"),
        ({"strategy": "exact", "penalty": "firth", "solver": "lbfgs"}, r"solver='lbfgs'"),
        ({"strategy": "exact", "penalty": "ridge"}, r"'penalty' must be"),
    ],
)
def test_invalid_firth_settings_are_refused_in_one_line(params, match):
    with pytest.raises(ConfigError, match=match) as err:
        resolve_params(**params)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------------- the protocol
def splits(frame: pd.DataFrame) -> list:
    return [
        [
            {
                DATASET: part.drop(columns="hospital")
                .to_csv(index=False, float_format="%.17g")
                .encode()
            }
        ]
        for _, part in frame.groupby("hospital")
    ]


def test_the_two_round_variant_gives_the_one_round_estimate(monkeypatch):
    frame = pd.read_csv(FIXTURES / "quasi-data.csv")
    params = {"strategy": "exact", "penalty": "firth", "fit_intercept": True, "tol": 1e-12}
    one = run_analysis(splits(frame), **params)
    monkeypatch.setattr(firth, "TENSOR_LIMIT", 2)  # 4 parameters: two rounds per step
    two = run_analysis(splits(frame), **params)
    np.testing.assert_allclose(two.result["coef"], one.result["coef"], rtol=1e-10)
    np.testing.assert_allclose(
        two.result["statistics"]["std_err"], one.result["statistics"]["std_err"], rtol=1e-10
    )
    # every step: a round of sums (no objective yet), then a round of hat-weighted sums
    history = two.result["history"]
    assert len(history) % 2 == 0
    assert all(entry["log_loss"] is None for entry in history[::2])
    assert all(entry["log_loss"] is not None for entry in history[1::2])
    assert two.result["stop_reason"] == one.result["stop_reason"] == "tolerance"


def test_an_aliased_design_is_refused_with_the_terms_named():
    frame = pd.read_csv(FIXTURES / "quasi-data.csv")
    frame.insert(3, "age_copy", 2 * frame["age"])
    with pytest.raises(NodeFailedError) as info:
        run_analysis(splits(frame), strategy="exact", penalty="firth", fit_intercept=True)
    assert isinstance(info.value.error, ConfigError)
    assert re.search(r"'age_copy' is a linear combination of earlier terms", str(info.value.error))


def test_the_separated_unpenalized_fit_points_to_firth():
    frame = pd.read_csv(FIXTURES / "complete-data.csv")
    s = run_analysis(splits(frame), strategy="exact", C=math.inf, fit_intercept=True).result[
        "statistics"
    ]
    assert not s["wald"]
    assert "penalty='firth'" in s["note"]


def test_more_parameters_than_the_newton_solver_takes_are_refused():
    agreement = Agreement(
        feature_names=[f"g{j}" for j in range(FLOAT64_TRIANGLE_LIMIT)],
        label="y",
        n_samples={"a": 10_000},
        n_positive=5_000,
    )
    params = resolve_params(strategy="exact", penalty="firth", fit_intercept=True)
    with pytest.raises(ConfigError, match=r"^penalty='firth' needs the information matrix"):
        ExactAggregator(params, agreement, lambda *a, **k: None, max_iter_given=False)


def test_a_firth_fit_stopped_by_max_iter_says_so():
    frame = pd.read_csv(FIXTURES / "complete-data.csv")
    run = run_analysis(
        splits(frame), strategy="exact", penalty="firth", fit_intercept=True, max_iter=3
    )
    s = run.result["statistics"]
    assert run.result["stop_reason"] == "max_iter"
    assert re.search(r"stopped before converging \(max_iter\).* Raise max_iter\.$", s["note"])


@pytest.mark.parametrize(
    "third",
    [None, np.zeros((4, 4)), np.full((4, 4, 4), np.nan), "a tensor"],
    ids=["missing", "shape", "nan", "text"],
)
def test_a_damaged_third_moment_sum_names_its_sender(third):
    X, y, _ = data(3)
    agreement = Agreement(
        feature_names=["a", "b", "c"], label="y", n_samples={"h1": 40}, n_positive=int(y.sum())
    )
    params = resolve_params(strategy="exact", penalty="firth", fit_intercept=True)
    aggregator = ExactAggregator(params, agreement, lambda *a, **k: None, max_iter_given=False)
    terms = local_terms(X, y, np.zeros(4), fit_intercept=True)
    update = {"terms": terms, "moments": None, "n_extreme": 0, "firth": third}
    with pytest.raises(OutOfStepError, match=r"^hospital 'h1' sent no valid Firth sum"):
        aggregator.aggregate({"h1": update}, 0)


@pytest.mark.parametrize("n_hospitals", [1, 2, 3])
def test_the_estimate_does_not_depend_on_how_patients_are_split(n_hospitals):
    frame = pd.read_csv(FIXTURES / "quasi-data.csv")
    frame["hospital"] = np.arange(len(frame)) % n_hospitals
    result = run_analysis(
        splits(frame), strategy="exact", penalty="firth", fit_intercept=True, tol=1e-12
    ).result
    reference = pd.read_csv(FIXTURES / "quasi.csv").set_index("term")["estimate"]
    np.testing.assert_allclose(
        result["coef"][0], reference[["age", "exposed", "bmi"]].to_numpy(float), rtol=1e-9
    )


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_the_fit_statistics_are_the_likelihood_at_firths_estimate(fit_intercept):
    frame = pd.read_csv(FIXTURES / "quasi-data.csv")
    params = {"strategy": "exact", "fit_intercept": fit_intercept, "tol": 1e-12}
    model = run_analysis(splits(frame), penalty="firth", **params).result
    mle = run_analysis(splits(frame), C=math.inf, **params).result
    stats = model["statistics"]
    X, y = frame[["age", "exposed", "bmi"]].to_numpy(float), frame["y"].to_numpy()
    theta = (
        model["coef"][0] if not fit_intercept else np.append(model["coef"][0], model["intercept"])
    )
    z = design_matrix(X, fit_intercept=fit_intercept) @ theta
    loglik = float(np.sum(y * z - np.logaddexp(0.0, z)))
    assert stats["llf"] == pytest.approx(loglik, rel=1e-9)
    assert stats["deviance"] == pytest.approx(-2.0 * loglik, rel=1e-9)
    assert stats["llf"] <= mle["statistics"]["llf"] + 1e-9  # no higher than the maximum
    assert stats["penalized_llf"] == pytest.approx(
        penalized_loglik(X, y, theta, fit_intercept), rel=1e-9
    )
