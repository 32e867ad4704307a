"""strategy='exact' through the engine: the federated fit equals the pooled scikit-learn fit."""

from __future__ import annotations

import io
import math
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from _helpers import cohort_splits, run_analysis, sample_splits
from flame_offline import NodeFailedError
from pancreas_fl.errors import PrivacyError
from pancreas_fl.results import model_from_result

NON_IID = {"n_nodes": 3, "rows": [260, 70, 140], "n_features": 8, "seed": 11, "shift": 2.0}


def pooled(splits):
    frames = [pd.read_csv(io.BytesIO(split[0]["pancreasData.csv"])) for split in splits]
    df = pd.concat(frames, ignore_index=True)
    return df.iloc[:, :-1].to_numpy(float), df.iloc[:, -1].to_numpy()


def reference(X, y, *, C, fit_intercept):
    clf = LogisticRegression(
        C=C, fit_intercept=fit_intercept, solver="newton-cholesky", tol=1e-12, max_iter=1000
    ).fit(X, y)
    return clf


def theta(coef, intercept, fit_intercept):
    coef = np.asarray(coef).ravel()
    return np.append(coef, np.asarray(intercept).ravel()) if fit_intercept else coef


def rel_distance(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.mark.parametrize("fit_intercept", [False, True], ids=["no-intercept", "intercept"])
@pytest.mark.parametrize("C", [0.1, 1.0, math.inf], ids=["C=0.1", "C=1", "unpenalized"])
@pytest.mark.parametrize("data", ["sample", "non-iid"])
def test_exact_equals_the_pooled_fit(data, C, fit_intercept):
    splits = sample_splits() if data == "sample" else cohort_splits(**NON_IID)
    model = run_analysis(splits, strategy="exact", C=C, fit_intercept=fit_intercept).result
    ref = reference(*pooled(splits), C=C, fit_intercept=fit_intercept)
    ours = theta(model["coef"], model["intercept"], fit_intercept)
    assert rel_distance(ours, theta(ref.coef_, ref.intercept_, fit_intercept)) <= 1e-6
    assert model["rounds"] <= 12
    assert model["stop_reason"] == "tolerance"


def test_exact_with_one_hospital_equals_the_pooled_fit():
    splits = sample_splits()[:1]
    model = run_analysis(splits, strategy="exact", fit_intercept=True).result
    ref = reference(*pooled(splits), C=1.0, fit_intercept=True)
    ours = theta(model["coef"], model["intercept"], True)
    assert rel_distance(ours, theta(ref.coef_, ref.intercept_, True)) <= 1e-6


def test_exact_accepts_a_hospital_with_one_class_only():
    splits = cohort_splits(n_nodes=3, rows=[200, 120, 60], n_features=4, seed=3)
    df = pd.read_csv(io.BytesIO(splits[2][0]["pancreasData.csv"]))
    df = df[df["diagnosis"] == 0]
    splits[2] = [{"pancreasData.csv": df.to_csv(index=False).encode()}]
    model = run_analysis(splits, strategy="exact", fit_intercept=True).result
    ref = reference(*pooled(splits), C=1.0, fit_intercept=True)
    ours = theta(model["coef"], model["intercept"], True)
    assert rel_distance(ours, theta(ref.coef_, ref.intercept_, True)) <= 1e-6
    # ... while FedAvg needs both classes everywhere
    with pytest.raises(NodeFailedError, match="class 1 is absent"):
        run_analysis(splits)


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_standardize_equals_the_pooled_pipeline_and_predicts_on_raw_rows(fit_intercept):
    splits = cohort_splits(**NON_IID)
    model = run_analysis(
        splits, strategy="exact", standardize=True, fit_intercept=fit_intercept
    ).result
    X, y = pooled(splits)
    pipe = make_pipeline(
        StandardScaler(),
        LogisticRegression(
            fit_intercept=fit_intercept, solver="newton-cholesky", tol=1e-12, max_iter=1000
        ),
    ).fit(X, y)
    scaler, clf = pipe[0], pipe[-1]
    std = model["standardization"]
    np.testing.assert_allclose(std["mean"], scaler.mean_, rtol=1e-12)
    np.testing.assert_allclose(std["scale"], scaler.scale_, rtol=1e-12)
    ours = theta(std["coef"], std["intercept"], fit_intercept)
    assert rel_distance(ours, theta(clf.coef_, clf.intercept_, fit_intercept)) <= 1e-6
    # the raw-space model predicts on raw rows as the pipeline does
    raw_model = model_from_result(model)
    frame = pd.DataFrame(X, columns=model["feature_names"])
    np.testing.assert_allclose(
        raw_model.predict_proba(frame)[:, 1], pipe.predict_proba(X)[:, 1], rtol=1e-6, atol=1e-9
    )
    assert "standardized features" in model["statistics"]["note"]


def test_quasi_newton_fallback_reaches_the_same_optimum_on_a_wide_set():
    splits = cohort_splits(n_nodes=3, rows=[400, 300, 300], n_features=120, seed=4)
    model = run_analysis(
        splits, strategy="exact", solver="lbfgs", fit_intercept=True, max_param_ratio=0.5
    ).result
    ref = reference(*pooled(splits), C=1.0, fit_intercept=True)
    ours = theta(model["coef"], model["intercept"], True)
    assert rel_distance(ours, theta(ref.coef_, ref.intercept_, True)) <= 1e-6
    assert model["stop_reason"] == "tolerance"
    assert model["statistics"] is None  # no Hessian was shared


def test_unpenalized_statistics_match_the_pooled_information_matrix():
    splits = sample_splits()
    model = run_analysis(splits, strategy="exact", C=math.inf, fit_intercept=True).result
    stats = model["statistics"]
    X, y = pooled(splits)
    Xd = np.hstack([X, np.ones((len(X), 1))])
    th = theta(model["coef"], model["intercept"], True)
    p = 1 / (1 + np.exp(-Xd @ th))
    cov = np.linalg.inv((Xd * (p * (1 - p))[:, None]).T @ Xd)
    np.testing.assert_allclose(stats["std_err"], np.sqrt(np.diag(cov)), rtol=1e-6)
    assert stats["penalized"] is False
    assert stats["terms"] == [*model["feature_names"], "intercept"]
    deviance = -2 * np.sum(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert stats["deviance"] == pytest.approx(deviance, rel=1e-9)
    ybar = y.mean()
    null = -2 * np.sum(y * np.log(ybar) + (1 - y) * np.log(1 - ybar))
    assert stats["null_deviance"] == pytest.approx(null, rel=1e-9)


def test_penalized_statistics_are_labelled_as_such():
    stats = run_analysis(sample_splits(), strategy="exact").result["statistics"]
    assert stats["penalized"] is True
    assert "penal" in stats["note"].lower()


def test_exact_history_logs_the_training_loss_and_never_increases_it():
    model = run_analysis(cohort_splits(**NON_IID), strategy="exact", fit_intercept=True).result
    losses = [entry["log_loss"] for entry in model["history"]]
    assert all(b <= a * (1 + 1e-12) for a, b in pairwise(losses))
    assert model["rounds"] == len(model["history"])


def test_exact_privacy_guard_refuses_a_small_hospital():
    splits = cohort_splits(n_nodes=2, rows=[200, 8], n_features=2, seed=9)
    with pytest.raises(NodeFailedError) as info:
        run_analysis(splits, strategy="exact")
    assert isinstance(info.value.error, PrivacyError)
    # reported by the aggregator with every other hospital's problems (none here)
    assert info.value.error.node == "node-2"


@pytest.mark.parametrize("isolation", ["thread", "process"])
def test_exact_gives_the_same_bits_under_both_isolations(isolation):
    splits = sample_splits()
    ours = run_analysis(splits, strategy="exact", fit_intercept=True, isolation=isolation)
    again = run_analysis(splits, strategy="exact", fit_intercept=True)
    assert ours.result["coef"].tobytes() == again.result["coef"].tobytes()
