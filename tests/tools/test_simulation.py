"""pancreas_fl_tools.simulation: hospital folders, runs on the offline engine, scores."""

from __future__ import annotations

import os

import numpy as np
import pytest

from _helpers import DATASET, SAMPLE, sample_splits
from pancreas_fl.errors import DataError, HospitalProblemsError
from pancreas_fl_tools.simulation import (
    evaluate,
    locate_datasets,
    read_hospital,
    read_hospitals,
    simulate,
)


def test_read_hospital_reads_only_the_dataset_as_flames_s3_query_does(tmp_path):
    (tmp_path / "pancreasData.csv").write_bytes(b"a,y\n1,0\n")
    (tmp_path / "cohort.csv").write_bytes(b"b,y\n2,1\n")
    unreadable = tmp_path / "audit.log"
    unreadable.write_bytes(b"secret")
    unreadable.chmod(0)  # never opened (root could open it anyway: that is not what is tested)
    (tmp_path / "sub").mkdir()
    assert read_hospital(tmp_path) == [{"pancreasData.csv": b"a,y\n1,0\n"}]
    assert read_hospital(tmp_path, "cohort.csv") == [{"cohort.csv": b"b,y\n2,1\n"}]


def test_read_hospital_never_opens_other_files(tmp_path, monkeypatch):
    (tmp_path / "pancreasData.csv").write_bytes(b"a,y\n1,0\n")
    (tmp_path / "big.bin").write_bytes(b"x" * 1000)
    opened = []
    real_open = os.open

    def spy(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    read_hospital(tmp_path)
    assert opened == [str(tmp_path / "pancreasData.csv")]


@pytest.mark.parametrize(
    ("make", "dataset", "match"),
    [
        (lambda p: p / "missing", DATASET, r"hospital folder .*missing: not a directory"),
        (lambda p: "", DATASET, r"hospital folder '': an empty path"),
        (lambda p: p, DATASET, r"pancreasData.csv: not found; the folder is empty"),
        (
            lambda p: (p / "notes.txt").write_text("x") and p,
            DATASET,
            r"pancreasData.csv: not found; the folder holds 'notes.txt'\. Pass the data file",
        ),
        (lambda p: (p / "sub").mkdir() or p, "sub", r"sub: not a regular file"),
        (lambda p: p, "../x.csv", r"dataset key '\.\./x\.csv' does not name a file inside"),
        (lambda p: p, "/etc/passwd", r"does not name a file inside the hospital folder"),
        (lambda p: p, "", r"dataset key '' does not name a file inside"),
    ],
    ids=[
        "missing",
        "empty-path",
        "empty",
        "other-files",
        "a-folder",
        "parent",
        "absolute",
        "no-key",
    ],
)
def test_read_hospital_refuses_what_is_not_a_hospital(tmp_path, make, dataset, match):
    with pytest.raises(DataError, match=match) as info:
        read_hospital(make(tmp_path), dataset)
    assert "\n" not in str(info.value)


def test_read_hospital_refuses_a_fifo_without_blocking(tmp_path):
    os.mkfifo(tmp_path / DATASET)  # reading it would wait for a writer forever
    with pytest.raises(DataError, match=r"not a regular file"):
        read_hospital(tmp_path)


def test_simulate_on_sample_folders_equals_simulate_on_bytes():
    from_folders = [read_hospital(SAMPLE / n) for n in ("node1", "node2")]
    a = simulate(from_folders, stream_log_level=100).result
    b = simulate(sample_splits(), stream_log_level=100).result
    assert a.tobytes() == b.tobytes()


def test_evaluate_scores_each_hospital_on_its_own_data():
    splits = sample_splits()
    result = simulate(splits, strategy="exact", fit_intercept=True, stream_log_level=100).result
    rows = evaluate(result, splits, ["node1", "node2"])
    assert [r["hospital"] for r in rows] == ["node1", "node2"]
    assert [r["patients"] for r in rows] == [225, 135]
    assert [r["positives"] for r in rows] == [92, 30]
    for row in rows:
        assert 0.5 < row["accuracy"] <= 1.0
        assert 0.5 < row["roc_auc"] <= 1.0


def test_evaluate_reports_no_auc_for_a_hospital_with_one_class():
    splits = sample_splits()
    result = -np.ones((1, 8))  # predicts label 0 for the all-ones patient
    one_class = b"KRAS,TP53,CDKN2A,SMAD4,MUC1,MSLN,S100P,KRT19,diagnosis\n" + (
        b"1,1,1,1,1,1,1,1,0\n" * 10
    )
    rows = evaluate(result, [splits[0], [{"pancreasData.csv": one_class}]], ["a", "b"])
    assert rows[1]["roc_auc"] is None
    assert rows[1]["accuracy"] == 1.0


@pytest.mark.parametrize("read", [locate_datasets, read_hospitals])
def test_a_single_hospital_problem_is_its_own_error(tmp_path, read):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / DATASET).write_bytes(b"x,y\n1,0\n")
    with pytest.raises(DataError, match=r"^hospital 'b'.*: not a directory") as info:
        read([tmp_path / "a", tmp_path / "b"], ["a", "b"])
    assert not isinstance(info.value, HospitalProblemsError)


@pytest.mark.parametrize("read", [locate_datasets, read_hospitals])
def test_every_hospital_with_a_problem_is_reported_once(tmp_path, read):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / DATASET).write_bytes(b"x,y\n1,0\n")
    folders = [tmp_path / name for name in ("a", "b", "c")]
    with pytest.raises(HospitalProblemsError) as info:
        read(folders, ["a", "b", "c"])
    assert [report.node for report in info.value.reports] == ["a", "c"]
    assert all("not a directory" in str(report) for report in info.value.reports)


def test_read_hospitals_reads_each_folder_in_order():
    folders = [SAMPLE / "node1", SAMPLE / "node2"]
    paths = locate_datasets(folders, ["node1", "node2"])
    assert paths == [folder / DATASET for folder in folders]
    assert read_hospitals(folders, ["node1", "node2"]) == [read_hospital(f) for f in folders]
