"""The pancreas-fl command: simulate, predict, sample; exit codes and one-line errors."""

from __future__ import annotations

import io
import json
import pickle
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from _helpers import SAMPLE
from pancreas_fl_tools.cli import main

NODES = [str(SAMPLE / "node1"), str(SAMPLE / "node2")]


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def hospitals(tmp_path):
    """Make a writable copy of data/sample/ (node1, node2)."""
    for name in ("node1", "node2"):
        shutil.copytree(SAMPLE / name, tmp_path / name)
    return tmp_path


def test_simulate_shows_rounds_summarizes_and_writes_result_and_report(tmp_path, capsys):
    out, report = tmp_path / "model.pkl", tmp_path / "report.json"
    code, stdout, err = run(["simulate", *NODES, "--out", out, "--report", report], capsys)
    assert code == 0, err
    for r in range(11):
        assert f"round {r}: change" in stdout
    assert "fedavg: 11 rounds" in stdout
    assert "stopped because max_iter was reached" in stdout
    for word in ("node1", "node2", "ROC AUC"):
        assert word in stdout
    model = pickle.loads(out.read_bytes())
    data = json.loads(report.read_text())
    for key in (
        "strategy",
        "rounds",
        "stop_reason",
        "coef",
        "intercept",
        "feature_names",
        "history",
        "seconds_total",
    ):
        assert key in data
    assert data["strategy"] == "fedavg"
    assert data["rounds"] == 11
    assert data["stop_reason"] == "max_iter"
    assert data["intercept"] is None
    assert isinstance(model, np.ndarray)  # by default, the tutorial's result
    assert data["coef"] == model.tolist()
    assert len(data["history"]) == 11
    assert set(data["history"][1]) >= {"round", "delta", "seconds", "log_loss"}
    assert data["metrics"][0]["hospital"] == "node1"
    assert 0.0 <= data["metrics"][0]["roc_auc"] <= 1.0


def test_simulate_output_model_writes_the_model_dict(tmp_path, capsys):
    out, bare = tmp_path / "model.pkl", tmp_path / "coef.pkl"
    code, _, err = run(["simulate", *NODES, "--out", out, "--output", "model", "--quiet"], capsys)
    assert code == 0, err
    run(["simulate", *NODES, "--out", bare, "--quiet"], capsys)
    model, coef = pickle.loads(out.read_bytes()), pickle.loads(bare.read_bytes())
    assert model["feature_names"][0] == "KRAS"
    assert model["coef"].tobytes() == coef.tobytes()


def test_simulate_refuses_output_coef_with_an_intercept_before_running(tmp_path, capsys):
    out = tmp_path / "m.pkl"
    code, stdout, err = run(
        ["simulate", *NODES, "--out", out, "--output", "coef", "--fit-intercept"], capsys
    )
    assert code == 2
    assert "output='coef' (the bare coefficient array) cannot carry an intercept" in err
    assert "round" not in stdout
    assert not out.exists()


def test_simulate_exact_prints_a_glm_summary_and_converges_quickly(tmp_path, capsys):
    report = tmp_path / "r.json"
    code, stdout, err = run(
        [
            "simulate",
            *NODES,
            "--strategy",
            "exact",
            "--fit-intercept",
            "--out",
            tmp_path / "m.pkl",
            "--report",
            report,
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    data = json.loads(report.read_text())
    assert data["stop_reason"] == "tolerance"
    assert data["rounds"] <= 12
    assert len(data["intercept"]) == 1
    assert data["statistics"]["terms"][-1] == "intercept"
    assert "std err" in stdout
    assert "P>|z|" in stdout


@pytest.mark.parametrize("isolation", ["thread", "process"])
def test_simulate_gives_the_same_result_in_both_isolations(tmp_path, capsys, isolation):
    out = tmp_path / "m.pkl"
    code, _, err = run(
        ["simulate", *NODES, "--out", out, "--isolation", isolation, "--quiet"], capsys
    )
    assert code == 0, err
    reference = tmp_path / "ref.pkl"
    run(["simulate", *NODES, "--out", reference, "--quiet"], capsys)
    assert out.read_bytes() == reference.read_bytes()


def test_simulate_plot_draws_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "loss.png"
    code, _, err = run(["simulate", *NODES, "--out", tmp_path / "m.pkl", "--plot", plot], capsys)
    assert code == 0, err
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def blank_first_value(text):
    header, first, rest = text.split("\n", 2)
    return f"{header}\n,{first.split(',', 1)[1]}\n{rest}"


def all_positive(text):
    header, *rows = text.strip().split("\n")
    return "\n".join([header, *(row[:-1] + "1" for row in rows)]) + "\n"


def test_simulate_plot_without_matplotlib_fails_before_running(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    out = tmp_path / "m.pkl"
    code, stdout, err = run(
        ["simulate", *NODES, "--out", out, "--plot", tmp_path / "p.png"], capsys
    )
    assert code == 2
    assert err == "pancreas-fl: error: --plot needs matplotlib: pip install 'pancreas-fl[plot]'.\n"
    assert stdout == ""
    assert not out.exists()


BAD = {
    # ';' with both decimal commas and points is ambiguous: read as comma-separated, refused
    "semicolons-with-both-decimal-marks": (
        lambda text: text.replace(",", ";").replace(".", ",", 1),
        r"';'",
    ),
    "missing-value": (blank_first_value, r"1 missing value"),
    "one-class": (all_positive, r"class 0 is absent"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_hospital_data_is_one_line_exit_2_and_no_output_file(hospitals, capsys, case):
    change, match = BAD[case]
    csv = hospitals / "node2" / "pancreasData.csv"
    csv.write_text(change(csv.read_text()))
    out = hospitals / "model.pkl"
    code, _, err = run(
        ["simulate", hospitals / "node1", hospitals / "node2", "--out", out, "--quiet"], capsys
    )
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"pancreas-fl: error: hospital 'node2': {csv}: ")
    assert re.search(match, lines[0])
    assert not out.exists()
    assert list(hospitals.glob(".model.pkl*")) == []


def test_columns_that_differ_between_hospitals_exit_2(hospitals, capsys):
    csv = hospitals / "node2" / "pancreasData.csv"
    csv.write_text(csv.read_text().replace("KRAS", "KRAS2", 1))
    code, _, err = run(["simulate", hospitals / "node1", hospitals / "node2"], capsys)
    assert code == 2
    assert "hospital 'node2' has 'KRAS2' where 'node1' has 'KRAS'" in err


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["simulate", "/no/such/dir"], r"hospital folder /no/such/dir: not a directory"),
        (["simulate", *NODES, "--tol", "-1"], r"'tol' must be a float in \(0, inf\)"),
        (["simulate", *NODES, "--strategy", "sgd"], r"invalid choice: 'sgd'"),
        (["simulate", *NODES, "--out", "/no/such/dir/m.pkl"], r"does not exist"),
        (["frobnicate"], r"invalid choice"),
        (["predict", "data.csv"], r"the following arguments are required: --model"),
    ],
)
def test_usage_errors_exit_2_with_one_line(capsys, argv, match):
    code, _, err = run(argv, capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert re.search(match, err)


@pytest.mark.parametrize("option", ["--out", "--report", "--plot"])
def test_an_output_path_that_is_a_directory_fails_before_running(tmp_path, capsys, option):
    out = tmp_path / "m.pkl"
    argv = ["simulate", *NODES, "--out", out, option, tmp_path]
    code, stdout, err = run(argv, capsys)
    assert code == 2
    assert f"{option} {tmp_path}: is a directory; give a file name." in err
    assert stdout == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_timeout_must_be_a_positive_number(capsys, value):
    code, _, err = run(["simulate", *NODES, "--timeout", value], capsys)
    assert code == 2
    assert "argument --timeout: must be a" in err


def test_sample_into_an_existing_file_is_one_line(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    code, _, err = run(["sample", "--out", target], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_an_analysis_failure_exits_1(tmp_path, capsys):
    code, _, err = run(
        ["simulate", *NODES, "--out", tmp_path / "m.pkl", "--timeout", "1e-9", "--quiet"], capsys
    )
    assert code == 1
    assert "the analysis failed at" in err
    assert "within --timeout 1e-09 s" in err
    assert not (tmp_path / "m.pkl").exists()


@pytest.mark.parametrize("output", ["model", "coef"])
def test_predict_writes_probability_and_label_per_row(tmp_path, capsys, output):
    model = tmp_path / "m.pkl"
    run(["simulate", *NODES, "--out", model, "--output", output, "--quiet"], capsys)
    csv = SAMPLE / "node1" / "pancreasData.csv"
    code, stdout, err = run(["predict", "--model", model, csv], capsys)
    assert code == 0, err
    table = pd.read_csv(io.StringIO(stdout))
    assert list(table.columns) == ["row", "probability", "prediction"]
    assert len(table) == 225
    assert table["probability"].between(0, 1).all()
    assert set(table["prediction"]) <= {0, 1}
    out = tmp_path / "pred.csv"
    assert run(["predict", "--model", model, csv, "--out", out], capsys)[0] == 0
    assert out.read_text() == stdout


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("KRAS,TP53\n1,2\n", r"lacks the model's feature column"),
        ("KRAS;TP53\n1;2\n", r"lacks the model's feature column"),  # ';' is read (dialect)
        ("KRAS;TP53\n1,5;2.5\n", r"';'"),  # both decimal marks: ambiguous, refused
    ],
)
def test_predict_refuses_a_csv_without_the_models_features(tmp_path, capsys, text, match):
    model = tmp_path / "m.pkl"
    run(["simulate", *NODES, "--out", model, "--output", "model", "--quiet"], capsys)
    csv = tmp_path / "new.csv"
    csv.write_text(text)
    code, _, err = run(["predict", "--model", model, csv], capsys)
    assert code == 2
    assert re.search(match, err)


def test_predict_refuses_an_unsafe_model_file(tmp_path, capsys):
    model = tmp_path / "evil.pkl"
    model.write_bytes(b"cos\nsystem\n(S'echo owned'\ntR.")
    code, _, err = run(["predict", "--model", model, SAMPLE / "node1" / "pancreasData.csv"], capsys)
    assert code == 2
    assert "refusing to load" in err


def test_sample_reproduces_data_sample_byte_for_byte(tmp_path, capsys):
    code, _, err = run(["sample", "--out", tmp_path], capsys)
    assert code == 0, err
    for name in ("node1", "node2"):
        fresh = (tmp_path / name / "pancreasData.csv").read_bytes()
        assert fresh == (SAMPLE / name / "pancreasData.csv").read_bytes()


def test_sample_scales_to_many_nodes_and_features(tmp_path, capsys):
    code, _, _ = run(
        ["sample", "--nodes", 4, "--rows", 50, "--features", 40, "--out", tmp_path], capsys
    )
    assert code == 0
    frame = pd.read_csv(tmp_path / "node4" / "pancreasData.csv")
    assert frame.shape[1] == 41


def test_the_console_script_reports_bad_data_without_a_traceback(hospitals):
    csv = hospitals / "node1" / "pancreasData.csv"
    csv.write_bytes(csv.read_text().encode("utf-16"))
    proc = subprocess.run(
        [sys.executable, "-m", "pancreas_fl_tools.cli", "simulate", "node1", "node2"],
        cwd=hospitals,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("pancreas-fl: error: hospital 'node1': node1/pancreasData.csv:")
    assert not (hospitals / "pancreas.pkl").exists()


def test_every_analysis_parameter_is_a_simulate_option_with_its_default(capsys):
    from pancreas_fl.params import PARAMETERS

    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for parameter in PARAMETERS:
        option = "--" + parameter.name.replace("_", "-")
        assert option in text
        assert f"(default: {parameter.describe_default().replace('`', '')})" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tol", "-1"], "'tol' must be a float in (0, inf). Got -1.0 instead."),
        (["--max-param-ratio", "2"], "'max_param_ratio' must be a float in (0, 1]. Got 2.0"),
        (["--weighted", "--strategy", "exact"], "'weighted' applies to strategy='fedavg' only"),
    ],
)
def test_options_are_refused_with_the_same_words_as_the_python_api(argv, message, capsys):
    code, _, err = run(["simulate", *NODES, *argv], capsys)
    assert code == 2
    assert err.count("\n") == 1
    assert message in err
