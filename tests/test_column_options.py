"""Real clinical tables (issue 11).

Choose variables, categorical levels agreed across hospitals, missing values, a file name per
hospital, every problem in one run.
"""

from __future__ import annotations

import math
import pickle
import re

import numpy as np
import pandas as pd
import pytest

from _clinical import (
    CATEGORICAL,
    FEATURES,
    LABEL,
    clinical_frames,
    clinical_splits,
    pooled_design,
    to_csv,
)
from _helpers import run_analysis
from _star import crossing, run_by_hand
from flame_offline import NodeFailedError
from pancreas_fl.column_options import prepare_table
from pancreas_fl.errors import ConfigError, DataError, HospitalProblemsError, PrivacyError
from pancreas_fl.params import resolve_params
from pancreas_fl.results import model_from_result
from pancreas_fl.s3 import resolve_key

sm = pytest.importorskip("statsmodels.api")

OPTIONS = {
    "dataset": "site*_export.csv",
    "label": LABEL,
    "features": FEATURES,
    "categorical": CATEGORICAL,
    "fill": {"diabetes": 0},
    "missing": "complete-case",
}


def failure(splits, **params) -> BaseException:
    with pytest.raises(NodeFailedError) as info:
        run_analysis(splits, **params)
    assert info.value.role == "aggregator"  # reported once, for every hospital
    return info.value.error


def relative(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.abs(b)))


# ---------------------------------------------------------------------------- done when
def test_exact_on_a_clinical_table_equals_statsmodels_glm_on_the_pooled_complete_cases():
    frames = clinical_frames()
    params = {**OPTIONS, "strategy": "exact", "fit_intercept": True, "C": math.inf}
    model = run_analysis(clinical_splits(frames), **params).result
    X, y = pooled_design(frames)
    reference = sm.GLM(y, X, family=sm.families.Binomial()).fit(tol=1e-12)
    stats = model["statistics"]
    assert model["feature_names"] == [
        "age",
        "ca19_9",
        "sex[M]",
        "stage[II]",
        "stage[III]",
        "diabetes",
    ]
    assert stats["terms"] == [*model["feature_names"], "intercept"]
    assert relative(stats["coef"], reference.params) <= 1e-8
    assert relative(stats["std_err"], reference.bse) <= 1e-8
    assert relative(stats["p_value"], reference.pvalues) <= 1e-8
    # counts only: rows used and dropped per hospital (5 blanks each in ca19_9)
    assert model["n_samples"] == {"node-1": 255, "node-2": 195}
    assert model["n_dropped"] == {"node-1": 5, "node-2": 5}
    assert model["encoding"]["levels"] == {"sex": ["F", "M"], "stage": ["I", "II", "III"]}


def test_fedavg_with_categorical_takes_one_setup_round_then_the_tutorials_rounds():
    run = run_by_hand(clinical_splits(), **OPTIONS, output="model")
    # the setup round: level names only, no update, and the agreed levels come back
    first = run.sent[0]
    assert all(message["update"] is None for message in first)
    assert first[0]["intro"]["levels"] == {"sex": ["F", "M"], "stage": ["I", "II", "III"]}
    assert run.broadcasts[0] == {"levels": {"sex": ["F", "M"], "stage": ["I", "II", "III"]}}
    # then the round rule counts from the first model round: 11 rounds by default
    assert run.result["rounds"] == 11
    assert len(run.sent) == 12
    for messages in run.sent:
        for message in messages:
            assert crossing(message).keys() == message.keys()


def test_a_hospital_lacking_a_level_gets_an_all_zero_column():
    frames = clinical_frames()
    frames[1]["stage"] = frames[1]["stage"].replace("III", "II")
    run = run_by_hand(clinical_splits(frames), **OPTIONS, strategy="exact", fit_intercept=True)
    assert run.sent[0][1]["intro"]["levels"]["stage"] == ["I", "II"]
    hospital = run.hospitals[1]
    column = hospital.data_.feature_names.index("stage[III]")
    assert not hospital.data_.X[:, column].any()
    assert "stage[III]" in run.result["feature_names"]


def test_load_model_applies_the_encoding_to_raw_rows():
    frames = clinical_frames()
    params = {**OPTIONS, "strategy": "exact", "fit_intercept": True}
    model = run_analysis(clinical_splits(frames), **params).result
    clf = model_from_result(pickle.loads(pickle.dumps(model)))
    raw = pd.read_csv(pd.io.common.BytesIO(to_csv(frames[0])), dtype={"stage": str})
    raw = raw.dropna(subset=["ca19_9"])
    proba = clf.predict_proba(raw)[:, 1]
    X, _ = pooled_design([frames[0]])
    logit = X.drop(columns="intercept").to_numpy() @ model["coef"].ravel() + model["intercept"]
    np.testing.assert_allclose(proba, 1 / (1 + np.exp(-logit)), rtol=1e-12)
    unknown = raw.assign(stage="IV")
    with pytest.raises(DataError, match=r"'stage' hold a level the model was not trained on"):
        clf.predict_proba(unknown)


# ---------------------------------------------------------------------------- one run
def test_every_problem_of_every_hospital_is_reported_once_one_line_per_hospital():
    frames = clinical_frames()
    frames[0].loc[:4, "sex"] = "X"  # a level of 5 patients: fine
    frames[0].loc[5, "sex"] = "unknown"  # a level of 1 patient: refused, never named
    frames[1] = frames[1].drop(columns="age")
    params = {**OPTIONS, "features": [*FEATURES, "notes"], "missing": "error"}
    error = failure(clinical_splits(frames), **params)
    assert isinstance(error, HospitalProblemsError)
    first, second = str(error).splitlines()
    assert first.startswith("hospital 'node-1': site1_export.csv: 3 problems: ")
    assert "(1) 1 feature column(s) 'notes' are not numeric" in first
    assert re.search(r"\(2\) has \d+ missing value\(s\) in \d+ row\(s\), in column\(s\)", first)
    assert "'notes' (" in first
    assert "'ca19_9' (5)" in first
    assert "(3) categorical column 'sex' has 1 level(s) held by fewer than 3 patients" in first
    assert "unknown" not in str(error)
    assert second == (
        "hospital 'node-2': site2_export.csv: lacks column(s) 'age'. Check the column names "
        "(they are case-sensitive) or export those columns"
    )


def test_the_default_analysis_also_reports_every_hospital_once():
    bad = b"KRAS,TP53,diagnosis\nhigh,,1\nlow,1.5,2\n"
    error = failure([[{"pancreasData.csv": bad}], [{"pancreasData.csv": b"x"}]])
    first, second = str(error).splitlines()
    assert first.startswith("hospital 'node-1': pancreasData.csv: 3 problems: (1) 1 feature ")
    assert "; (2) has 1 missing value(s) in column(s) 'TP53' (1); (3) label column" in first
    assert second.startswith("hospital 'node-2': pancreasData.csv: ")


@pytest.mark.parametrize(
    ("keys", "match"),
    [
        (["a.csv", "b.csv"], r"no object key matches the pattern; found 'a\.csv', 'b\.csv'"),
        (
            ["site1_export.csv", "site1_export_old.csv"],
            r"2 object keys match the pattern: 'site1_export\.csv', 'site1_export_old\.csv'",
        ),
    ],
    ids=["none", "several"],
)
def test_a_dataset_pattern_must_match_exactly_one_key(keys, match):
    data = [dict.fromkeys(keys, b"")]
    with pytest.raises(DataError, match=match):
        resolve_key(data, "site*_export*.csv")


def test_a_key_named_like_the_pattern_itself_wins():
    data = [{"data[1].csv": b"", "data1.csv": b""}]
    assert resolve_key(data, "data[1].csv") == "data[1].csv"


def test_the_rows_used_pass_the_privacy_guard():
    frames = clinical_frames(rows=(40, 200), n_blank=32)
    params = {**OPTIONS, "strategy": "exact", "features": ["age", "ca19_9"]}
    params.update(categorical=None, fill=None)
    error = failure(clinical_splits(frames), **params)
    assert isinstance(error, PrivacyError)
    assert str(error).startswith(
        "hospital 'node-1': site1_export.csv: refusing to share a model update computed "
        "from 8 patient(s)"
    )


def test_complete_case_that_drops_every_row_is_a_problem_with_counts():
    frame = clinical_frames()[0]
    frame["diabetes"] = ""
    table = prepare_table(
        [{"t.csv": to_csv(frame)}],
        resolve_params(**{**OPTIONS, "dataset": "t.csv", "fill": None}),
        require_both_classes=True,
    )
    [problem] = table.problems
    assert str(problem).startswith(
        "t.csv: has no complete row: each of its 260 row(s) has a missing value, in "
        "column(s) 'ca19_9' (5), 'diabetes' (260)"
    )


def test_columns_not_chosen_are_never_checked():
    frame = clinical_frames()[0]
    frame["notes"] = "free text, with commas"
    frame["visit_date"] = ""
    table = prepare_table(
        [{"t.csv": to_csv(frame)}],
        resolve_params(**{**OPTIONS, "dataset": "t.csv"}),
        require_both_classes=True,
    )
    assert table.problems == []
    assert (table.n_used, table.n_dropped) == (255, 5)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"features": ["age", "pdac"], "label": "pdac"}, r"'features' includes the label"),
        ({"features": ["age"], "categorical": ["sex"]}, r"'categorical' names column\(s\) 'sex'"),
        ({"categorical": ["pdac"], "label": "pdac"}, r"'categorical' includes the label"),
        (
            {"features": ["age"], "label": "pdac", "fill": {"sex": 0}},
            r"'fill' names column\(s\) 'sex' that are not in 'features'",
        ),
        ({"features": []}, r"'features' must be a non-empty list of distinct column names"),
        ({"features": ["a", "a"]}, r"'features' must be a non-empty list of distinct"),
        ({"features": "age"}, r"'features' must be a non-empty list"),
        ({"fill": {"a": math.nan}}, r"'fill' must be a dict mapping column names"),
        ({"fill": {"a": True}}, r"'fill' must be a dict mapping column names"),
        ({"fill": ["a"]}, r"'fill' must be a dict mapping column names"),
        ({"missing": "drop"}, r"'missing' must be one of 'error', 'complete-case'"),
        ({"min_cell": 0}, r"'min_cell' must be an int in \[1, inf\)"),
    ],
)
def test_bad_column_parameters_are_refused_in_one_line(params, match):
    with pytest.raises(ConfigError, match=match):
        resolve_params(**params)


# ---------------------------------------------------------------------------- the command
def write_sites(root, frames):
    folders = []
    for i, frame in enumerate(frames, 1):
        folder = root / f"hospital{i}"
        folder.mkdir()
        (folder / f"site{i}_export.csv").write_bytes(to_csv(frame))
        (folder / "other.txt").write_text("not read")
        folders.append(str(folder))
    return folders


CLI_OPTIONS = [
    "--strategy", "exact", "--fit-intercept", "--C", "inf",
    "--dataset", "site*_export.csv", "--label", LABEL,
    "--features", *FEATURES, "--categorical", *CATEGORICAL,
    "--fill", "diabetes=0", "--missing", "complete-case",
]  # fmt: skip


def test_simulate_on_a_clinical_table_equals_statsmodels(tmp_path, capsys):
    from pancreas_fl_tools.cli import main

    frames = clinical_frames()
    out = tmp_path / "model.pkl"
    code = main(
        ["simulate", *write_sites(tmp_path, frames), *CLI_OPTIONS, "--quiet", "--out", str(out)]
    )
    _, err = capsys.readouterr()
    assert code == 0, err
    model = pickle.loads(out.read_bytes())
    X, y = pooled_design(frames)
    reference = sm.GLM(y, X, family=sm.families.Binomial()).fit(tol=1e-12)
    stats = model["statistics"]
    assert relative(stats["coef"], reference.params) <= 1e-8
    assert relative(stats["std_err"], reference.bse) <= 1e-8
    assert relative(stats["p_value"], reference.pvalues) <= 1e-8


def test_simulate_reports_every_hospitals_problems_and_writes_nothing(tmp_path, capsys):
    from pancreas_fl_tools.cli import main

    frames = clinical_frames()
    frames[0]["stage"] = frames[0]["stage"].where(frames[0].index > 0, "IV")  # 1 patient
    frames[1]["diabetes"] = frames[1]["diabetes"].replace("1", "yes")
    out = tmp_path / "model.pkl"
    code = main(["simulate", *write_sites(tmp_path, frames), *CLI_OPTIONS, "--out", str(out)])
    _, err = capsys.readouterr()
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith("pancreas-fl: error: hospital 'hospital1': ")
    assert "categorical column 'stage' has 1 level(s) held by fewer than 3 patients" in lines[0]
    assert "IV" not in err
    assert lines[1].startswith("pancreas-fl: error: hospital 'hospital2': ")
    assert "'diabetes' are not numeric" in lines[1]
    assert "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--fill", "diabetes"], r"argument --fill: must be NAME=VALUE, got 'diabetes'"),
        (["--fill", "a=1", "--fill", "a=2"], r"--fill a=\.\.\. is given twice"),
        (["--features"], r"argument --features: expected at least one argument"),
    ],
)
def test_bad_column_options_are_one_line(tmp_path, capsys, argv, match):
    from pancreas_fl_tools.cli import main

    folders = write_sites(tmp_path, clinical_frames())
    code = main(["simulate", *folders, *argv, "--out", str(tmp_path / "m.pkl")])
    _, err = capsys.readouterr()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert re.search(match, err), err
