"""FedAvg, step by step, against the tutorial's own expressions."""

from __future__ import annotations

from io import BytesIO

import numpy as np
import pandas as pd
import pytest
import sklearn.linear_model._logistic as sklearn_logistic
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.linear_model import LogisticRegression

import _tutorial
from _helpers import sample_splits
from _star import StubCore
from pancreas_fl.fedavg import (
    MAX_ITER,
    TOL,
    FedAvgAggregator,
    FedAvgHospital,
    GlobalModel,
    federated_mean,
    l2_change,
    stop_rule,
)
from pancreas_fl.handshake import Agreement
from pancreas_fl.params import resolve_params
from pancreas_fl.reader import HospitalData, load_hospital_data


def hospital(**params) -> FedAvgHospital:
    data = load_hospital_data(sample_splits()[0], dataset="pancreasData.csv", label=None)
    return FedAvgHospital(data, resolve_params(**params))


def aggregator(**params) -> FedAvgAggregator:
    agreement = Agreement([f"g{i}" for i in range(3)], "y", {"a": 30, "b": 10}, 20)
    return FedAvgAggregator(
        resolve_params(**params), agreement, StubCore("agg", "aggregator").flame_log
    )


def test_the_local_model_is_the_tutorials_by_default():
    tutorial = LogisticRegression(max_iter=1, fit_intercept=False, warm_start=True)
    assert hospital().clf.get_params() == tutorial.get_params()
    assert FedAvgHospital.requires_both_classes


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # the tutorial's
@pytest.mark.parametrize("fit_intercept", [False, True], ids=["tutorial", "intercept"])
def test_local_steps_are_the_tutorials_on_its_frame_bit_for_bit(fit_intercept):
    # the tutorial's own fit, on the frame it parses: df.iloc[:, :-1], df.iloc[:, -1]
    raw = sample_splits()[0][0]["pancreasData.csv"]
    df = pd.read_csv(BytesIO(raw))
    ours = hospital(fit_intercept=fit_intercept)
    theirs = LogisticRegression(max_iter=1, fit_intercept=fit_intercept, warm_start=True)
    theirs.fit(df.iloc[:, :-1], df.iloc[:, -1])
    first = ours.update(None)
    assert first["coef"].tobytes() == theirs.coef_.tobytes()
    if fit_intercept:
        assert first["intercept"].tobytes() == theirs.intercept_.tobytes()
    else:
        assert first["intercept"] is None
    assert first["loss"] == pytest.approx(len(df) * np.log(2))  # at zero
    for _ in range(3):  # from a broadcast, as in later rounds
        coef, intercept = theirs.coef_ * 0.5, theirs.intercept_ * 0.5
        theirs.coef_, theirs.intercept_ = coef.copy(), intercept.copy()
        theirs.fit(df.iloc[:, :-1], df.iloc[:, -1])
        broadcast = GlobalModel(coef=coef, intercept=intercept) if fit_intercept else coef
        update = ours.update(broadcast)
        assert update["coef"].tobytes() == theirs.coef_.tobytes()
        assert (update["intercept"] is None) != fit_intercept


def test_a_fit_neither_copies_the_data_nor_keeps_a_frame(monkeypatch):
    ours = hospital()
    seen = []
    real = sklearn_logistic.validate_data

    def spy(*args, **kwargs):
        X, y = real(*args, **kwargs)
        seen.append(X)
        return X, y

    monkeypatch.setattr(sklearn_logistic, "validate_data", spy)
    ours.update(None)
    ours.update(ours.clf.coef_.copy())
    assert len(seen) == 2
    assert all(X is ours.data.X for X in seen)  # scikit-learn converts nothing
    assert not hasattr(ours.clf, "feature_names_in_")


def test_the_mean_is_the_tutorials_expression_bit_for_bit():
    rng = np.random.default_rng(0)
    coefs = [rng.normal(size=(1, 8)) for _ in range(3)]
    assert federated_mean(coefs).tobytes() == np.stack(coefs, axis=0).mean(axis=0).tobytes()


def test_the_weighted_mean_weights_by_patients():
    coefs = [np.array([[1.0, 0.0]]), np.array([[0.0, 4.0]])]
    np.testing.assert_allclose(federated_mean(coefs, [300, 100]), [[0.75, 1.0]])
    np.testing.assert_allclose(federated_mean(coefs, [7, 7]), federated_mean(coefs))


@pytest.mark.parametrize(
    ("change", "k", "expected"),
    [
        (None, 0, None),  # the first round never stops
        (None, 99, None),
        (1e-8, 1, "tolerance"),  # at most tol
        (2e-8, 1, None),
        (2e-8, 9, None),
        (2e-8, 10, "max_iter"),  # num_iterations > max_iter - 1: the 11th round
        (0.0, 10, "tolerance"),  # the tolerance wins
    ],
)
def test_stop_rule(change, k, expected):
    assert stop_rule(change, k, max_iter=10, tol=1e-8) == expected


rows = hnp.arrays(np.float64, (1, 3), elements=st.floats(-1.0, 1.0))


@settings(max_examples=60, deadline=None)
@given(
    result=rows, last=st.one_of(st.none(), rows), step=st.floats(0.0, 1e-7), k=st.integers(0, 12)
)
def test_the_stop_rule_with_its_defaults_decides_as_the_tutorials_has_converged(
    result, last, step, k
):
    if last is not None:
        last = result + step * np.sign(last)  # changes around the tolerance, too
    tutorial = _tutorial.FederatedLogisticRegression(StubCore("agg", "aggregator"))
    tutorial.num_iterations = k
    change = None if last is None else l2_change(result, last)
    ours = stop_rule(change, k, max_iter=MAX_ITER, tol=TOL)
    assert (ours is not None) == tutorial.has_converged(result, last)


def test_aggregate_returns_the_bare_mean_and_remembers_the_change():
    agg = aggregator()
    updates = {
        "a": {"coef": np.array([[1.0, 2.0, 3.0]]), "intercept": None, "loss": 20.0},
        "b": {"coef": np.array([[3.0, 2.0, 1.0]]), "intercept": None, "loss": 8.0},
    }
    result = agg.aggregate(updates, 0)
    np.testing.assert_array_equal(result, [[2.0, 2.0, 2.0]])
    assert agg.stop_reason_ is None
    assert agg.rounds.history[0]["delta"] is None
    assert agg.rounds.history[0]["log_loss"] == pytest.approx(28.0 / 40)
    assert agg.aggregate(updates, 1) is not result
    assert agg.rounds.history[1]["delta"] == 0.0
    assert agg.stop_reason_ == "tolerance"


def test_the_last_round_of_a_model_output_returns_the_model_dict():
    agg = aggregator(fit_intercept=True, weighted=True, max_iter=1)
    updates = {
        "a": {"coef": np.array([[1.0, 0.0, 0.0]]), "intercept": np.array([1.0]), "loss": 1.0},
        "b": {"coef": np.array([[0.0, 0.0, 1.0]]), "intercept": np.array([0.0]), "loss": 1.0},
    }
    first = agg.aggregate(updates, 0)
    assert set(first) == {"coef", "intercept"}
    np.testing.assert_allclose(first["intercept"], [0.75])  # 30 and 10 patients
    updates["a"]["coef"] = np.array([[2.0, 0.0, 0.0]])
    model = agg.aggregate(updates, 1)
    assert model["stop_reason"] == "max_iter"
    assert model["n_samples"] == {"a": 30, "b": 10}
    assert model["rounds"] == 2


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("tolerance", "Delta error is smaller than the tolerance threshold"),
        ("max_iter", "Maximum number of 10 iterations reached. Returning current results."),
    ],
)
def test_stop_messages_are_the_tutorials(reason, message):
    assert aggregator().stop_message(reason) == (message, "info")


def test_the_rules_defaults_are_the_tutorials():
    assert (MAX_ITER, TOL) == (10, 1e-8)


@pytest.mark.parametrize(("shift", "reason"), [(1e-3, None), (1e-9, "tolerance")])
def test_the_change_includes_the_intercept(shift, reason):
    agg = aggregator(fit_intercept=True, max_iter=50, output="model")
    update = {"coef": np.zeros((1, 3)), "intercept": np.zeros(1), "loss": 1.0}
    agg.aggregate({"a": update, "b": update}, 0)
    moved = {**update, "intercept": np.array([shift])}
    agg.aggregate({"a": moved, "b": moved}, 1)
    assert agg.stop_reason_ == reason
    assert agg.rounds.history[1]["delta"] == pytest.approx(shift)


@pytest.mark.parametrize("n", [2, 7, 8_737, 30_001])  # one block, several and a rest
@pytest.mark.parametrize("order", ["C", "F"])
def test_the_first_update_carries_each_features_sum_of_abs_x(n, order):
    rng = np.random.default_rng(n)
    X = np.asarray(rng.normal(scale=5.0, size=(n, 30)), order=order)
    y = np.arange(n) % 2
    names = tuple(f"g{j}" for j in range(30))
    fedavg = FedAvgHospital(HospitalData(X, y, names, "y"), resolve_params(local_steps=1))
    first = fedavg.update(None)
    np.testing.assert_allclose(first["sum_abs"], np.abs(X).sum(axis=0), rtol=1e-12)
    assert fedavg.update(first["coef"])["sum_abs"] is None  # once, in the first round


def test_the_first_update_sends_the_readers_sums_when_it_made_them():
    rng = np.random.default_rng(11)
    X, y = rng.normal(size=(50, 4)), np.arange(50) % 2
    sums = np.abs(X).sum(axis=0) + 1.0  # distinguishable from a pass over X
    data = HospitalData(X, y, ("a", "b", "c", "d"), "y", abs_sums=sums)
    first = FedAvgHospital(data, resolve_params()).update(None)
    assert first["sum_abs"].tobytes() == sums.tobytes()
    assert first["sum_abs"] is not data.abs_sums  # the message holds its own copy
