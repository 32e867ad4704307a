"""pancreas_fl.simulation: hospital folders, a run on the offline engine, per-hospital scores."""

from __future__ import annotations

import numpy as np
import pytest

from _helpers import SAMPLE, sample_splits
from pancreas_fl.errors import DataError
from pancreas_fl.simulation import evaluate, read_hospital, simulate


def test_read_hospital_gives_flames_s3_format_and_skips_hidden_files(tmp_path):
    (tmp_path / "pancreasData.csv").write_bytes(b"a,y\n1,0\n")
    (tmp_path / ".DS_Store").write_bytes(b"junk")
    (tmp_path / "sub").mkdir()
    assert read_hospital(tmp_path) == [{"pancreasData.csv": b"a,y\n1,0\n"}]


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: p / "missing", r"hospital folder .*missing: not a directory"),
        (lambda p: p, r"hospital folder .*: contains no files"),
    ],
    ids=["missing", "empty"],
)
def test_read_hospital_refuses_what_is_not_a_hospital(tmp_path, make, match):
    with pytest.raises(DataError, match=match):
        read_hospital(make(tmp_path))


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
    one_class = b"KRAS,TP53,CDKN2A,SMAD4,MUC1,MSLN,S100P,KRT19,diagnosis\n" + b"1,1,1,1,1,1,1,1,0\n"
    rows = evaluate(result, [splits[0], [{"pancreasData.csv": one_class}]], ["a", "b"])
    assert rows[1]["roc_auc"] is None
    assert rows[1]["accuracy"] == 1.0
