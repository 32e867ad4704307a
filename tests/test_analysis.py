"""The FLAME node classes driven through the offline engine's StarModelTester.

The tutorial, reproduced bit for bit, and the parameters and data it refuses.
"""

from __future__ import annotations

import pickle
import re
from itertools import pairwise
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import _tutorial
from _helpers import cohort_splits, golden_coef, run_analysis, sample_splits
from _star import StubCore, run_by_hand
from flame_offline import NodeFailedError, StarModelTester
from pancreas_fl.analysis import FederatedLogisticRegression, PancreasAnalyzer
from pancreas_fl.errors import ConfigError, DataError, OutOfStepError, PrivacyError


def run_tutorial(splits, isolation="thread"):
    return run_analysis(
        splits,
        isolation=isolation,
        analyzer=_tutorial.PancreasAnalyzer,
        aggregator=_tutorial.FederatedLogisticRegression,
    )


def failure(splits, **params) -> BaseException:
    """Run the analysis expecting a node failure; return the node's original error."""
    with pytest.raises(NodeFailedError) as info:
        run_analysis(splits, **params)
    assert info.value.error is not None, info.value.traceback
    return info.value.error


# ---------------------------------------------------------------------------- the tutorial
def test_default_run_gives_the_golden_result_of_the_tutorial_under_the_flame_sdk():
    # golden: the tutorial's own code under the real FLAME SDK's StarModelTester, on another
    # machine; other CPUs make OpenBLAS pick other kernels, so the last bits may differ
    result = run_analysis(sample_splits()).result
    assert isinstance(result, np.ndarray)
    assert result.shape == (1, 8)
    assert result.dtype == np.float64
    np.testing.assert_allclose(result, golden_coef(), rtol=1e-12, atol=0)


# Bit for bit only within one environment: the tutorial's own code on the same machine and
# libraries (tests/_tutorial.py; under the real SDK: tests/test_flame_sdk.py).
@pytest.mark.parametrize(
    "cohort",
    [
        None,
        {"n_nodes": 2, "rows": 120, "n_features": 5, "seed": 1},
        {"n_nodes": 3, "rows": [300, 80, 150], "n_features": 8, "seed": 2},
        {"n_nodes": 5, "rows": 60, "n_features": 3, "seed": 3},
    ],
    ids=["data-sample", "2-nodes", "3-nodes-uneven", "5-nodes"],
)
# the tutorial's code warns on purpose every round; ours must not (filterwarnings=error)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_default_run_equals_the_tutorial_code_on_the_engine_bit_for_bit(cohort):
    splits = sample_splits() if cohort is None else cohort_splits(**cohort)
    ours = run_analysis(splits).result
    theirs = run_tutorial(splits).result
    assert ours.tobytes() == theirs.tobytes()


def test_process_isolation_gives_the_bits_of_thread_isolation():
    threads = run_analysis(sample_splits(), isolation="thread").result
    processes = run_analysis(sample_splits(), isolation="process").result
    assert processes.tobytes() == threads.tobytes()


def test_default_run_takes_eleven_rounds_and_stops_at_max_iter():
    tester = run_analysis(sample_splits(), output="model")
    model = tester.result
    assert model["rounds"] == 11
    assert model["stop_reason"] == "max_iter"
    assert [entry["round"] for entry in model["history"]] == list(range(11))
    assert model["history"][0]["delta"] is None
    assert model["coef"].tobytes() == run_analysis(sample_splits()).result.tobytes()
    messages = [r.message for r in tester.logs if r.node_id == "aggregator"]
    assert "Maximum number of 10 iterations reached. Returning current results." in messages


def test_a_loose_tolerance_stops_on_the_tutorial_rule_after_two_rounds():
    tester = run_analysis(sample_splits(), tol=1.0, output="model")
    assert tester.result["stop_reason"] == "tolerance"
    assert tester.result["rounds"] == 2  # round 0 never stops (its last result is None)
    messages = [r.message for r in tester.logs]
    assert "Delta error is smaller than the tolerance threshold" in messages


def test_each_hospital_parses_its_csv_once(monkeypatch):
    calls = []
    read_csv = pd.read_csv

    def counting(*args, **kwargs):
        calls.append(1)
        return read_csv(*args, **kwargs)

    monkeypatch.setattr(pd, "read_csv", counting)
    run_analysis(sample_splits())
    assert len(calls) == 2  # one parse per hospital, not one per round (the tutorial: 22)


def test_history_log_loss_decreases_and_is_the_pooled_training_log_loss():
    model = run_analysis(sample_splits(), output="model").result
    losses = [entry["log_loss"] for entry in model["history"]]
    assert losses[0] == pytest.approx(np.log(2))  # the zero start
    assert all(b < a for a, b in pairwise(losses))


def test_logs_hold_counts_and_names_but_never_patient_values():
    raw = sample_splits()
    tester = run_analysis(raw)
    text = "\n".join(record.message for record in tester.logs)
    cells = pd.read_csv(pd.io.common.BytesIO(raw[0][0]["pancreasData.csv"])).iloc[:5, :-1]
    for value in cells.to_numpy().ravel():
        assert f"{value:.3f}" not in text
    assert "225 patients" in text


# ---------------------------------------------------------------------------- the SDK hooks
@pytest.mark.parametrize(
    ("cls", "role"), [(PancreasAnalyzer, "default"), (FederatedLogisticRegression, "aggregator")]
)
def test_the_constructor_stores_the_parameters_and_sets_every_attribute(cls, role):
    # scikit-learn's convention: no validation in __init__ (a bad value fails in round 0,
    # as the node's failure), and every attribute exists from the start
    node = cls(StubCore("n", role), tol=-1, strategy="sgd")
    assert node.params == {"tol": -1, "strategy": "sgd"}
    fitted = {name for name in vars(node) if name.endswith("_") and not name.startswith("_")}
    assert fitted
    assert all(getattr(node, name) is None for name in fitted)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # the tutorial's
def test_the_rounds_by_hand_reproduce_the_tutorial():
    # the tutorial's "Training Flow Example", each message pickled as FLAME moves it
    run = run_by_hand(sample_splits())
    assert len(run.sent) == 11
    assert run.result.tobytes() == run_tutorial(sample_splits()).result.tobytes()
    assert all(b.shape == (1, 8) for b in run.broadcasts)  # the tutorial's broadcast
    assert run.aggregator.strategy_.stop_reason_ == "max_iter"
    assert run.aggregator.flame.logs[-1] == (
        "info",
        "Maximum number of 10 iterations reached. Returning current results.",
    )


def test_fedavg_has_converged_decides_as_the_tutorial_in_every_round():
    run = run_by_hand(sample_splits())
    tutorial = _tutorial.FederatedLogisticRegression(StubCore("agg", "aggregator"))
    last = None
    decisions = []
    for k, result in enumerate([*run.broadcasts, run.result]):
        tutorial.num_iterations = k
        decisions.append(tutorial.has_converged(result, last))
        last = result
    assert decisions == [False] * len(run.broadcasts) + [True]
    assert run.aggregator.flame.logs[-1] == (
        "info",
        "Maximum number of 10 iterations reached. Returning current results.",
    )


# ---------------------------------------------------------------------------- FedAvg variants
def test_weighted_average_equals_the_plain_mean_for_equal_hospitals():
    splits = cohort_splits(n_nodes=2, rows=[100, 100], n_features=4, seed=5)
    plain = run_analysis(splits).result
    weighted = run_analysis(splits, weighted=True).result
    np.testing.assert_allclose(weighted, plain, rtol=1e-12)


def test_weighted_average_weights_by_patients():
    splits = cohort_splits(n_nodes=2, rows=[300, 40], n_features=4, seed=6)
    plain = run_analysis(splits, max_iter=1).result
    weighted = run_analysis(splits, max_iter=1, weighted=True).result
    assert not np.allclose(plain, weighted)


@pytest.mark.parametrize("local_steps", [2, 5])
def test_more_local_steps_reach_a_lower_training_loss(local_steps):
    one = run_analysis(sample_splits(), output="model").result
    more = run_analysis(sample_splits(), output="model", local_steps=local_steps).result
    assert more["history"][-1]["log_loss"] < one["history"][-1]["log_loss"]


def test_fit_intercept_with_fedavg_returns_a_model_with_an_intercept():
    model = run_analysis(sample_splits(), fit_intercept=True).result
    assert isinstance(model, dict)
    assert model["intercept"].shape == (1,)
    assert model["feature_names"][:2] == ["KRAS", "TP53"]


def test_results_survive_a_pickle_round_trip():
    model = run_analysis(sample_splits(), output="model").result
    again = pickle.loads(pickle.dumps(model))
    assert again["coef"].tobytes() == model["coef"].tobytes()
    assert again["history"] == model["history"]


# ---------------------------------------------------------------------------- parameters
@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"tol": -1}, r"'tol' must be a float in \(0, inf\)\. Got -1 instead\."),
        ({"max_iter": 0}, r"'max_iter' must be an int in \[1, inf\)\. Got 0 instead\."),
        ({"C": 0}, r"'C' must be a float in \(0, inf\]\. Got 0 instead\."),
        ({"strategy": "sgd"}, r"'strategy' must be one of 'fedavg', 'exact'\. Got 'sgd'"),
        ({"fit_intercept": "yes"}, r"'fit_intercept' must be a bool"),
        ({"maxiter": 3}, r"unknown parameter\(s\) 'maxiter'; valid parameters are"),
        ({"standardize": True}, r"'standardize' applies to strategy='exact' only"),
        ({"strategy": "exact", "weighted": True}, r"'weighted' applies to strategy='fedavg'"),
        ({"fit_intercept": True, "output": "coef"}, r"output='coef' .* cannot carry"),
    ],
)
def test_invalid_parameters_fail_with_one_clear_message(params, match):
    error = failure(sample_splits(), **params)
    assert isinstance(error, ConfigError)
    assert re.search(match, str(error))


def test_analyzer_and_aggregator_must_agree_on_shared_parameters():
    with pytest.raises(NodeFailedError) as info:
        StarModelTester(
            sample_splits(),
            PancreasAnalyzer,
            FederatedLogisticRegression,
            "s3",
            query=["pancreasData.csv"],
            simple_analysis=False,
            analyzer_kwargs={"fit_intercept": True, "output": "model"},
            aggregator_kwargs={"output": "model"},
            print_failures=False,
            print_result=False,
        )
    assert info.value.role == "aggregator"
    assert isinstance(info.value.error, ConfigError)
    assert re.search(
        r"hospital 'node-1' runs with fit_intercept=True but the aggregator with "
        r"fit_intercept=False; pass the same value",
        str(info.value.error),
    )


# ---------------------------------------------------------------------------- bad hospital data
HEADER = "KRAS,TP53,MSLN,diagnosis\n"


def good_rows(n=40, seed=0, label=None):
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        y = label if label is not None else i % 2
        values = rng.normal(8, 1, size=3)
        lines.append(",".join(f"{v:.3f}" for v in values) + f",{y}\n")
    return "".join(lines)


GOOD = (HEADER + good_rows()).encode()

BAD_DATA = {
    # a production node fetches only the queried key: the others are not even seen
    "key-missing": ({"other.csv": GOOD}, r"object key 'pancreasData\.csv' not found"),
    "empty": ({"pancreasData.csv": b""}, r"empty"),
    "header-only": ({"pancreasData.csv": HEADER.encode()}, r"no data rows"),
    "non-numeric": (
        {"pancreasData.csv": (HEADER + "high,8.1,7.0,1\n" + good_rows()).encode()},
        r"'KRAS'.*not numeric",
    ),
    "missing-values": (
        {"pancreasData.csv": (HEADER + ",8.1,,1\n" + good_rows()).encode()},
        r"missing value",
    ),
    "infinite": (
        {"pancreasData.csv": (HEADER + "inf,8.1,7.0,1\n" + good_rows()).encode()},
        r"infinite",
    ),
    "label-not-binary": (
        {"pancreasData.csv": (HEADER + good_rows().replace(",1\n", ",2\n")).encode()},
        r"label.*0/1.*2",
    ),
    "one-class": (
        {"pancreasData.csv": (HEADER + good_rows(label=1)).encode()},
        r"all 40 patients have diagnosis = 1; class 0 is absent",
    ),
    "duplicate-columns": (
        {"pancreasData.csv": ("KRAS,KRAS,MSLN,diagnosis\n" + good_rows()).encode()},
        r"duplicate",
    ),
    "too-few-patients": (
        {"pancreasData.csv": (HEADER + good_rows(n=6)).encode()},
        r"from 6 patient\(s\): at least 10 are required",
    ),
    "not-utf8": (
        {"pancreasData.csv": (HEADER + good_rows()).encode("utf-16")},
        r"UTF",
    ),
    "semicolons-with-both-decimal-marks": (  # ambiguous: read as comma-separated, refused
        {
            "pancreasData.csv": (HEADER + good_rows())
            .replace(",", ";")
            .replace(".", ",", 1)
            .encode()
        },
        r"';'",
    ),
}


@pytest.mark.parametrize("case", list(BAD_DATA), ids=list(BAD_DATA))
def test_bad_data_at_one_hospital_names_the_hospital_the_file_and_the_problem(case):
    objects, match = BAD_DATA[case]
    error = failure([[{"pancreasData.csv": GOOD}], [objects]])
    assert isinstance(error, DataError)
    assert error.node == "node-2"
    message = str(error)
    assert message.startswith("hospital 'node-2': pancreasData.csv: ")
    assert re.search(match, message), message
    assert "\n" not in message


def test_too_many_parameters_per_patient_is_refused():
    rows = 20  # 3 features + intercept on 20 patients is fine; 8 features are not
    header = ",".join(f"G{i}" for i in range(8)) + ",diagnosis\n"
    rng = np.random.default_rng(1)
    body = "".join(
        ",".join(f"{v:.3f}" for v in rng.normal(size=8)) + f",{i % 2}\n" for i in range(rows)
    )
    raw = (header + body).encode()
    error = failure([[{"pancreasData.csv": raw}], [{"pancreasData.csv": raw}]])
    assert isinstance(error, PrivacyError)
    assert re.search(r"8 parameters.*20 patients", str(error))


def test_different_columns_between_hospitals_are_named_without_moving_data():
    other = GOOD.replace(b"KRAS,TP53", b"KRAS,CDKN2A")
    with pytest.raises(NodeFailedError) as info:
        run_analysis([[{"pancreasData.csv": GOOD}], [{"pancreasData.csv": other}]])
    error = info.value.error
    assert info.value.role == "aggregator"
    assert isinstance(error, DataError)
    assert re.search(
        r"hospital 'node-2' has 'CDKN2A' where 'node-1' has 'TP53' \(no majority\)", str(error)
    )


def test_columns_in_another_order_are_refused():
    swapped = GOOD.replace(b"KRAS,TP53", b"TP53,KRAS")
    with pytest.raises(NodeFailedError) as info:
        run_analysis([[{"pancreasData.csv": GOOD}], [{"pancreasData.csv": swapped}]])
    assert re.search(r"different order", str(info.value.error))


def test_dataset_key_and_label_column_can_be_configured():
    raw = ("diagnosis," + HEADER.replace(",diagnosis", "")).encode()
    lines = [line.split(",") for line in good_rows().splitlines()]
    body = "".join(f"{parts[-1]},{','.join(parts[:-1])}\n" for parts in lines)
    split = [{"cohort.csv": raw + body.encode()}]
    model = run_analysis([split, split], dataset="cohort.csv", label=0, output="model").result
    assert model["feature_names"] == ["KRAS", "TP53", "MSLN"]
    assert model["label"] == "diagnosis"


@pytest.mark.parametrize("shift", [1, -1], ids=["a round ahead", "a round behind"])
def test_a_message_of_another_round_fails_the_aggregator_in_one_line(shift):
    # what a broker that delivers a message twice or late can cause (flamesdk 0.5 does not
    # drop duplicates): the aggregator refuses rather than mix rounds
    splits = sample_splits()
    hospitals = [PancreasAnalyzer(StubCore(f"node-{i}", "default")) for i in (1, 2)]
    aggregator = FederatedLogisticRegression(StubCore("aggregator", "aggregator"))
    first = [h.analyze(data) for h, data in zip(hospitals, splits, strict=True)]
    result, _ = aggregator.aggregate(first, simple_analysis=False)
    for hospital in hospitals:
        hospital.latest_result = result
    second = [h.analyze(data) for h, data in zip(hospitals, splits, strict=True)]
    second[1] = {**second[1], "round": second[1]["round"] + shift}
    with pytest.raises(OutOfStepError, match=r"hospital 'node-2' sent its update for round"):
        aggregator.aggregate(second, simple_analysis=False)
    assert aggregator.flame.logs[-1][0] == "error"
    assert "delivered twice or out of order" in aggregator.flame.logs[-1][1]


def test_has_converged_reports_the_rounds_decision_whatever_the_results_passed():
    aggregator = FederatedLogisticRegression(StubCore("agg", "aggregator"))
    aggregator.setup_rounds_ = 0
    aggregator.strategy_ = SimpleNamespace(
        stop_reason_=None, stop_message=lambda reason: (reason, "info")
    )
    assert not aggregator.has_converged(np.zeros(3), np.zeros(3))  # no change, yet no stop
    aggregator.strategy_.stop_reason_ = "tolerance"
    assert aggregator.has_converged(None, None)


@pytest.mark.parametrize(
    ("setup_rounds", "k", "expected"), [(0, 0, 0), (0, 3, 3), (1, 0, None), (1, 1, 0), (1, 5, 4)]
)
def test_the_model_round_counts_from_the_first_model_round(setup_rounds, k, expected):
    aggregator = FederatedLogisticRegression(StubCore("agg", "aggregator"))
    aggregator.setup_rounds_ = setup_rounds
    aggregator.num_iterations = k
    assert aggregator.model_round() == expected
