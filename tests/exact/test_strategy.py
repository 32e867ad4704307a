"""The exact strategy's two sides, without an engine."""

from __future__ import annotations

import numpy as np
import pytest

from _helpers import cohort_splits, sample_splits
from _star import StubCore
from pancreas_fl.exact import combine_moments, local_terms, scale_from_var, standardize
from pancreas_fl.exact.strategy import ExactAggregator, ExactHospital
from pancreas_fl.handshake import Agreement
from pancreas_fl.params import LBFGS_MAX_ITER, resolve_params
from pancreas_fl.reader import load_hospital_data

PRODUCTION_LOG_TYPES = {"debug", "info", "notice", "warn", "alert", "emerg", "error", "crit"}


def hospital(split=None, **params) -> ExactHospital:
    split = sample_splits()[0] if split is None else split
    data = load_hospital_data(split, dataset="pancreasData.csv", label=None)
    return ExactHospital(data, resolve_params(strategy="exact", **params))


def aggregator(n_features=3, given=None, **params) -> ExactAggregator:
    agreement = Agreement([f"g{i}" for i in range(n_features)], "y", {"a": 30, "b": 10}, 20)
    p = resolve_params(strategy="exact", max_iter=given, **params)
    log = StubCore("agg", "aggregator").flame_log
    return ExactAggregator(p, agreement, log, max_iter_given=given is not None)


@pytest.mark.parametrize(("solver", "curvature"), [("auto", "full"), ("lbfgs", "diag")])
def test_round_0_evaluates_zero_with_the_curvature_the_solver_needs(solver, curvature):
    update = hospital(solver=solver).update(None)
    assert update["moments"] is None
    terms = update["terms"]
    np.testing.assert_allclose(terms["loss"], terms["n"] * np.log(2))  # at theta = 0
    if curvature == "full":
        assert terms["hess"].shape == (8, 8)
    else:
        assert set(terms["hess"]) == {"s", "sx", "sxx"}
    assert ExactHospital.requires_both_classes is False


def test_a_standardized_fit_sends_moments_first_then_sums_on_standardized_features():
    ours = hospital(standardize=True)
    first = ours.update(None)
    assert first["terms"] is None
    n, mean, var = combine_moments([first["moments"]])
    scaler = {"mean": mean, "scale": scale_from_var(var, mean, n)}
    theta = np.full(8, 0.01)
    second = ours.update({"next_theta": theta, "curvature": "full", "scaler": scaler})
    expected = local_terms(standardize(ours.X, **scaler), ours.y, theta, fit_intercept=False)
    assert second["terms"]["loss"] == expected["loss"]
    assert second["terms"]["grad"].tobytes() == expected["grad"].tobytes()
    assert second["terms"]["hess"].tobytes() == expected["hess"].tobytes()
    # no standardized copy is kept beside the hospital's matrix
    assert [name for name, value in vars(ours).items() if isinstance(value, np.ndarray)] == [
        "X",
        "y",
    ]


@pytest.mark.parametrize(
    ("n_features", "given", "solver", "expected"),
    [
        (3, None, "auto", 50),  # Newton: the exact default
        (3, None, "lbfgs", LBFGS_MAX_ITER),  # L-BFGS: every line-search step is a round
        (1001, None, "auto", 50),  # Newton: its curvature fits the budgets
        (3, None, {"max_message_mb": 1e-5}, LBFGS_MAX_ITER),  # it does not: L-BFGS
        (5657, None, "auto", LBFGS_MAX_ITER),  # beyond the default 64 MB per message
        (3, 20, "lbfgs", 20),  # what the analyst set stays
    ],
)
def test_the_default_max_iter_follows_the_solver(n_features, given, solver, expected):
    budgets = solver if isinstance(solver, dict) else {"solver": solver}
    agg = aggregator(n_features, given, **budgets)
    assert agg.params.max_iter == expected
    assert agg.solver.max_rounds == expected + 1


@pytest.mark.parametrize(
    ("reason", "log_type"), [("tolerance", "info"), ("max_iter", "info"), ("line_search", "warn")]
)
def test_stop_messages_use_production_log_types(reason, log_type):
    message, kind = aggregator().stop_message(reason)
    assert kind == log_type
    assert kind in PRODUCTION_LOG_TYPES
    assert message


def test_rounds_until_the_solver_converges():
    splits = cohort_splits(n_nodes=2, rows=[150, 90], n_features=3, seed=4)
    hospitals = [hospital(split, fit_intercept=True) for split in splits]
    agg = ExactAggregator(
        resolve_params(strategy="exact", fit_intercept=True),
        Agreement(["a", "b", "c"], "y", {"h1": 150, "h2": 90}, 100),
        StubCore("agg", "aggregator").flame_log,
        max_iter_given=False,
    )
    broadcast, k = None, 0
    while True:
        result = agg.aggregate({f"h{i}": h.update(broadcast) for i, h in enumerate(hospitals)}, k)
        if agg.stop_reason_ is not None:
            break
        broadcast, k = result, k + 1
    assert agg.stop_reason_ == "tolerance"
    assert result["rounds"] == k + 1 == len(agg.rounds.history)
    assert result["statistics"]["terms"] == ["a", "b", "c", "intercept"]
