"""``pancreas-fl show``: a result file as a table, JSON or forest plot; one-line refusals."""

from __future__ import annotations

import json
import os
import pickle

import pytest

from _helpers import SAMPLE
from pancreas_fl.results import ModelFileError, load_model
from pancreas_fl_tools import report
from pancreas_fl_tools.cli import main

NODES = [str(SAMPLE / "node1"), str(SAMPLE / "node2")]
CSV = SAMPLE / "node1" / "pancreasData.csv"


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Write simulate's results on data/sample: the tutorial's array and the exact model dict."""
    where = tmp_path_factory.mktemp("results")
    coef, model = where / "coef.pkl", where / "model.pkl"
    assert main(["simulate", *NODES, "--quiet", "--out", str(coef)]) == 0
    argv = ["simulate", *NODES, "--quiet", "--strategy", "exact", "--fit-intercept"]
    assert main([*argv, "--C", "inf", "--out", str(model)]) == 0
    return {"coef": coef, "model": model}


def test_show_prints_the_glm_table_of_a_model_dict(written, capsys):
    code, out, err = run(["show", written["model"]], capsys)
    assert (code, err) == (0, "")
    model = pickle.loads(written["model"].read_bytes())
    assert report.glm_table(model["statistics"]) in out
    assert "exact: 6 rounds; stopped because the change fell below tol." in out


def test_show_names_a_bare_arrays_terms_from_a_csv_header(written, capsys):
    code, out, _ = run(["show", written["coef"]], capsys)
    assert code == 0
    assert "column 8" in out
    code, out, _ = run(["show", written["coef"], "--names-from", CSV], capsys)
    assert code == 0
    assert "KRT19" in out
    assert "column 8" not in out


def test_show_json_is_one_json_document(written, capsys):
    code, out, err = run(["show", written["model"], "--json"], capsys)
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["terms"][-1] == "intercept"
    assert data["statistics"]["wald"] is True


def test_show_plot_writes_the_forest_plot(written, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "forest.png"
    code, out, err = run(["show", written["model"], "--plot", png], capsys)
    assert (code, err) == (0, "")
    assert png.read_bytes().startswith(b"\x89PNG")
    assert out.rstrip().endswith(f"wrote {png}")
    code, out, err = run(["show", written["model"], "--json", "--plot", png], capsys)
    assert code == 0
    json.loads(out)  # the JSON stays alone on stdout
    assert f"wrote {png}" in err


def test_show_without_matplotlib_says_how_to_install_it(written, tmp_path, capsys, monkeypatch):
    def missing():
        raise ImportError("--plot needs matplotlib: pip install 'pancreas-fl[plot]'.")

    monkeypatch.setattr(report, "pyplot", missing)
    code, out, err = run(["show", written["model"], "--plot", tmp_path / "f.png"], capsys)
    assert code == 2
    assert out == ""
    assert err == "pancreas-fl: error: --plot needs matplotlib: pip install 'pancreas-fl[plot]'.\n"


def test_show_never_overwrites_the_result_with_the_plot(written, capsys):
    before = written["model"].read_bytes()
    code, _, err = run(["show", written["model"], "--plot", written["model"]], capsys)
    assert code == 2
    assert len(err.splitlines()) == 1
    assert written["model"].read_bytes() == before


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo owned > owned.txt",))


def test_show_refuses_a_hostile_pickle_in_one_line_as_load_model_does(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"coef": [[1.0]], "history": Exploit()}))
    code, out, err = run(["show", path, "--plot", tmp_path / "f.png"], capsys)
    with pytest.raises(ModelFileError) as expected:
        load_model(path)
    assert code == 2
    assert out == ""
    assert err == f"pancreas-fl: error: {expected.value}\n"
    assert not (tmp_path / "owned.txt").exists()
    assert not (tmp_path / "f.png").exists()


def test_show_names_a_missing_file(tmp_path, capsys):
    code, _, err = run(["show", tmp_path / "nope.pkl"], capsys)
    assert code == 2
    assert err.startswith("pancreas-fl: error: ")
    assert "nope.pkl: cannot read the model file" in err


def test_names_from_a_csv_of_the_wrong_width_is_refused(written, tmp_path, capsys):
    narrow = tmp_path / "narrow.csv"
    narrow.write_text("a,b\n1,2\n")
    code, _, err = run(["show", written["coef"], "--names-from", narrow], capsys)
    assert code == 2
    assert "has 2 columns but the model has 8 features" in err


def test_names_from_and_predict_read_a_spreadsheet_export(written, tmp_path, capsys):
    export = tmp_path / "export.csv"
    text = CSV.read_text().replace(",", ";").replace(".", ",").replace("KRAS", "KRÄS")
    export.write_bytes(text.encode("cp1252"))
    code, out, _ = run(["show", written["coef"], "--names-from", export], capsys)
    assert code == 0
    assert "KRÄS" in out
    code, out, err = run(["predict", "--model", written["coef"], export], capsys)
    assert code == 0, err
    _, expected, _ = run(["predict", "--model", written["coef"], CSV], capsys)
    assert out == expected  # the same rows, the same probabilities


def test_names_from_is_ignored_with_a_warning_for_a_model_dict(written, capsys):
    code, out, err = run(["show", written["model"], "--names-from", CSV], capsys)
    assert code == 0
    assert err == (
        f"pancreas-fl: warning: --names-from is ignored: {written['model']} is a model dict, "
        "which names its own features.\n"
    )
    assert "KRAS" in out
