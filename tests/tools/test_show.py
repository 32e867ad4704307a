"""Reading a result file back: the view, its text and JSON, and the refusals."""

from __future__ import annotations

import json
import math
import os
import pickle

import numpy as np
import pandas as pd
import pytest

from _helpers import run_analysis, sample_splits
from pancreas_fl.results import ModelFileError, load_model
from pancreas_fl_tools import report
from pancreas_fl_tools.show import read_view, view_json, view_text

SAMPLE_NAMES = ["KRAS", "TP53", "CDKN2A", "SMAD4", "MUC1", "MSLN", "S100P", "KRT19"]


@pytest.fixture(scope="module")
def results():
    """data/sample's results: the tutorial's array, FedAvg's dict, exact with and without C."""
    splits = sample_splits()
    return {
        "bare": run_analysis(splits).result,
        "fedavg": run_analysis(splits, output="model").result,
        "exact": run_analysis(splits, strategy="exact", fit_intercept=True).result,
        "exact-ml": run_analysis(splits, strategy="exact", fit_intercept=True, C=math.inf).result,
    }


def write(tmp_path, obj, name="result.pkl"):
    path = tmp_path / name
    path.write_bytes(pickle.dumps(obj))
    return path


def test_an_exact_result_prints_as_simulate_prints_it(results, tmp_path):
    model = results["exact"]
    text = view_text(read_view(write(tmp_path, model)))
    assert report.outcome_line(model) in text
    assert report.glm_table(model["statistics"]) in text  # the same table, odds ratios too
    assert "label: diagnosis" in text
    for node, n in model["n_samples"].items():
        assert f"{node:<16} {n:>8}" in text
    assert "total                 360" in text


def test_a_fedavg_model_dict_prints_its_coefficients_and_says_why_no_intervals(results, tmp_path):
    text = view_text(read_view(write(tmp_path, results["fedavg"])))
    assert "fedavg: 11 rounds; stopped because max_iter was reached." in text
    for name, coef in zip(SAMPLE_NAMES, results["fedavg"]["coef"][0], strict=True):
        assert f"{name:<6}" in text
        assert f"{coef:.4f}" in text
        assert f"{math.exp(coef):.4f}" in text
    text = " ".join(text.split())  # the note is wrapped
    assert "Note: No standard errors, p-values or intervals" in text
    assert "strategy='exact'" in text


def test_a_bare_array_prints_its_coefficients_and_what_it_lacks(results, tmp_path):
    view = read_view(write(tmp_path, results["bare"]))
    assert view.bare
    assert view.terms == [f"column {j}" for j in range(1, 9)]
    text = " ".join(view_text(view).split())  # the note is wrapped
    assert "the tutorial's bare coefficient array" in text
    assert "column 8" in text
    for missing in ("feature names", "intercept", "standard errors", "patient counts"):
        assert missing in text
    assert "--names-from" in text


def test_a_bare_array_takes_feature_names_when_known(results, tmp_path):
    view = read_view(write(tmp_path, results["bare"]), feature_names=SAMPLE_NAMES)
    assert view.terms == SAMPLE_NAMES
    assert "KRT19" in view_text(view)
    assert "nothing in the file checks that order" in " ".join(view_text(view).split())


def test_json_holds_the_same_content(results, tmp_path):
    model = results["exact"]
    data = json.loads(view_json(read_view(write(tmp_path, model))))
    assert data["form"] == "model"
    assert data["terms"] == [*SAMPLE_NAMES, "intercept"]
    expected = [*model["coef"][0], model["intercept"][0]]
    np.testing.assert_array_equal(data["coef"], expected)
    np.testing.assert_allclose(data["odds_ratio"], np.exp(expected), rtol=1e-15)
    assert data["statistics"]["odds_ratio"] == model["statistics"]["odds_ratio"]
    assert data["n_samples"] == model["n_samples"]
    assert sorted(data["n_samples"].values()) == [135, 225]
    assert (data["strategy"], data["rounds"], data["stop_reason"]) == ("exact", 6, "tolerance")
    bare = json.loads(view_json(read_view(write(tmp_path, results["bare"]))))
    assert bare["form"] == "bare"
    assert bare["statistics"] is None
    assert "strategy" not in bare
    assert "no feature names" in bare["notes"][0]


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo owned > owned.txt",))


@pytest.mark.parametrize(
    "payload",
    [
        Exploit(),
        {"coef": Exploit()},
        pd.DataFrame({"a": [1.0]}),
        {"coef": [[1.0, 2.0]], "feature_names": ["a"]},
        {"intercept": 1.0},
        "not a model",
    ],
    ids=["os.system", "nested", "dataframe", "names", "no-coef", "string"],
)
def test_hostile_or_malformed_results_are_refused_exactly_as_load_model_does(
    tmp_path, monkeypatch, payload
):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, payload)
    with pytest.raises(ModelFileError) as expected:
        load_model(path)
    with pytest.raises(ModelFileError, match=r"\S") as got:
        read_view(path)
    assert str(got.value) == str(expected.value)
    assert not (tmp_path / "owned.txt").exists()


def _with_statistics(model, **changes):
    statistics = {**model["statistics"], **changes}
    return {**model, "statistics": statistics}


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"terms": ["a", "b"]}, r"the statistics' terms are not the model's coefficients"),
        ({"odds_ratio": [1.0]}, r"the statistics' 'odds_ratio' must list one number per term"),
        ({"std_err": ["x"] * 9}, r"the statistics' 'std_err' must hold numbers only"),
        ({"note": 5}, r"the statistics are incomplete or malformed"),
        ({"deviance": "high"}, r"the statistics are incomplete or malformed"),
    ],
    ids=["terms", "length", "strings", "note", "deviance"],
)
def test_statistics_that_do_not_fit_the_coefficients_are_refused(results, tmp_path, changes, match):
    path = write(tmp_path, _with_statistics(results["exact"], **changes))
    with pytest.raises(ModelFileError, match=match):
        read_view(path)


def test_a_statistics_entry_that_is_not_a_dict_is_refused(results, tmp_path):
    with pytest.raises(ModelFileError, match=r"'statistics' must be a dict"):
        read_view(write(tmp_path, {**results["exact"], "statistics": [1, 2]}))


def test_control_characters_in_names_never_reach_the_terminal(tmp_path):
    path = write(
        tmp_path,
        {"coef": [[1.0, 2.0]], "feature_names": ["a\x1b[2J", "b\nc"], "label": "y\rz"},
    )
    text = view_text(read_view(path))
    assert "\x1b" not in text
    assert "\r" not in text
    assert r"a\x1b[2J" in text
    assert r"b\nc" in text


def test_odd_bookkeeping_entries_are_left_out_rather_than_shown_wrong(tmp_path):
    path = write(
        tmp_path, {"coef": [[1.0]], "rounds": "many", "n_samples": {"a": "x"}, "strategy": 3}
    )
    text = view_text(read_view(path))
    assert "rounds" not in text
    assert "hospital" not in text
    assert "column 1" in text


def test_flame_node_ids_keep_the_hospital_table_aligned(tmp_path):
    ids = ["3224addb-5e52-582c-8706-f444072e3b59", "h2"]
    path = write(tmp_path, {"coef": [[1.0]], "n_samples": dict(zip(ids, (225, 135), strict=True))})
    lines = view_text(read_view(path)).splitlines()
    table = lines[lines.index(next(line for line in lines if line.startswith("hospital"))) :][:4]
    assert [len(line) for line in table] == [len(table[0])] * 4
    assert table[1] == f"{ids[0]}      225"
