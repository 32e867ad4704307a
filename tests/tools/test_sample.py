"""Tests of pancreas_fl_tools.sample and of the shipped data/sample files."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from pancreas_fl.errors import ConfigError
from pancreas_fl.handshake import check_same_columns
from pancreas_fl.params import DEFAULT_DATASET
from pancreas_fl.privacy import check_disclosure
from pancreas_fl.reader import load_hospital_data
from pancreas_fl_tools.sample import (
    GENE_PANEL,
    LABEL_COLUMN,
    gene_names,
    make_cohort,
    true_coefficients,
    write_cohort,
)

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data" / "sample"
# the exact call that produced data/sample (also documented in data/sample/README.md)
SAMPLE_KWARGS = {"n_nodes": 2, "rows": 180, "n_features": 8, "seed": 42}


def test_gene_panel_is_real_symbols_first() -> None:
    assert GENE_PANEL[:8] == ("KRAS", "TP53", "CDKN2A", "SMAD4", "MUC1", "MSLN", "S100P", "KRT19")
    assert len(set(GENE_PANEL)) == len(GENE_PANEL)
    for gene in ("SPP1", "TFF1", "CEACAM5", "LAMC2", "CTHRC1", "POSTN", "COL11A1"):
        assert gene in GENE_PANEL


def test_gene_names_continue_after_the_panel() -> None:
    names = gene_names(len(GENE_PANEL) + 3)
    assert names[: len(GENE_PANEL)] == GENE_PANEL
    assert names[len(GENE_PANEL) :] == ("GENE_0001", "GENE_0002", "GENE_0003")
    assert gene_names(3) == GENE_PANEL[:3]


def test_true_coefficients() -> None:
    beta = true_coefficients(8)
    assert list(beta.index) == list(GENE_PANEL[:8])
    assert beta["MSLN"] > 0
    assert beta["SMAD4"] < 0
    assert 2 <= np.count_nonzero(beta) <= 6  # a few informative genes
    assert np.count_nonzero(true_coefficients(len(GENE_PANEL) + 5).iloc[-5:]) == 0
    assert np.all(true_coefficients(8, signal=0.0) == 0)


def test_shapes_and_columns() -> None:
    frames = make_cohort(3, 100, 5, seed=1)
    assert [len(f) for f in frames] == [125, 100, 75]
    for frame in frames:
        assert list(frame.columns) == [*GENE_PANEL[:5], LABEL_COLUMN]
        assert frame.columns[-1] == "diagnosis"
        assert frame[LABEL_COLUMN].dtype == np.int64
        assert set(frame[LABEL_COLUMN].unique()) <= {0, 1}
        assert all(frame[g].dtype == np.float64 for g in GENE_PANEL[:5])
        assert isinstance(frame.index, pd.RangeIndex)


def test_exact_sizes() -> None:
    frames = make_cohort(3, [50, 7, 300], 4, seed=0)
    assert [len(f) for f in frames] == [50, 7, 300]


def test_single_hospital() -> None:
    (frame,) = make_cohort(1, 40, 3, seed=0)
    assert len(frame) == 40


def test_deterministic() -> None:
    a = make_cohort(3, 60, 10, seed=7, shift=0.5)
    b = make_cohort(3, 60, 10, seed=7, shift=0.5)
    c = make_cohort(3, 60, 10, seed=8, shift=0.5)
    for x, y in zip(a, b, strict=True):
        pd.testing.assert_frame_equal(x, y, check_exact=True)
    assert not a[0].equals(c[0])


def test_realistic_expression_scale() -> None:
    frames = make_cohort(2, 2000, 30, seed=3)
    genes = pd.concat(frames, ignore_index=True).drop(columns=LABEL_COLUMN)
    assert genes.to_numpy().min() >= 0.0
    assert genes.to_numpy().max() <= 16.0
    means = genes.mean()
    assert means.between(2, 14).all()
    assert means.std() > 1.5  # gene-specific means
    assert genes.std().between(0.4, 2.5).all()
    corr = genes.corr().to_numpy()
    off_diagonal = np.abs(corr[~np.eye(len(corr), dtype=bool)])
    assert off_diagonal.max() > 0.2  # correlated through the latent factors


def test_values_have_three_decimals() -> None:
    (frame,) = make_cohort(1, 50, 4, seed=0)
    genes = frame.drop(columns=LABEL_COLUMN).to_numpy()
    np.testing.assert_array_equal(genes, np.round(genes, 3))


def test_hospitals_differ_in_size_prevalence_and_shift() -> None:
    frames = make_cohort(2, 3000, 8, seed=5, prevalence=[0.6, 0.25], shift=1.0)
    assert len(frames[0]) != len(frames[1])
    shares = [f[LABEL_COLUMN].mean() for f in frames]
    assert shares[0] == pytest.approx(0.6, abs=0.05)
    assert shares[1] == pytest.approx(0.25, abs=0.05)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_measurement_shift(seed: int) -> None:
    def gap(shift: float) -> float:
        frames = make_cohort(2, 3000, 8, seed=seed, prevalence=0.4, shift=shift)
        genes = [f.drop(columns=LABEL_COLUMN) for f in frames]
        return float((genes[0].mean() - genes[1].mean()).abs().mean())

    assert gap(0.0) < 0.1
    assert gap(1.0) > 0.15
    assert gap(3.0) > gap(1.0)


def test_default_prevalence_varies_between_hospitals() -> None:
    frames = make_cohort(6, 500, 8, seed=0)
    shares = [f[LABEL_COLUMN].mean() for f in frames]
    assert max(shares) - min(shares) > 0.1
    assert all(0.15 < s < 0.7 for s in shares)


def test_signal_zero_gives_uninformative_labels() -> None:
    (frame,) = make_cohort(1, 4000, 8, seed=2, signal=0.0, prevalence=0.5)
    corr = frame.corr()[LABEL_COLUMN].drop(LABEL_COLUMN)
    assert corr.abs().max() < 0.1


def test_scales_to_many_nodes_and_features() -> None:
    frames = make_cohort(50, 40, 2000, seed=0)
    assert len(frames) == 50
    assert all(f.shape[1] == 2001 for f in frames)
    assert frames[0].columns[-2] == "GENE_1970"
    assert sum(len(f) for f in frames) == pytest.approx(50 * 40, abs=50)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_nodes": 0}, r"'n_nodes' must be an int in \[1, inf\). Got 0 instead."),
        ({"n_features": 0}, r"'n_features' must be an int in \[1, inf\)"),
        ({"rows": 0}, r"'rows' must be an int in \[1, inf\)"),
        ({"rows": 2.5}, r"'rows' must be an int in \[1, inf\) or a sequence"),
        ({"rows": [10, 20, 30]}, r"one size per hospital \(2\). Got 3 sizes"),
        ({"rows": [10, 0]}, r"'rows' must be an int in \[1, inf\). Got 0"),
        ({"seed": -1}, r"'seed' must be an int in \[0, inf\)"),
        ({"seed": 1.5}, r"'seed' must be an int"),
        ({"shift": -1.0}, r"'shift' must be a float in \[0, inf\)"),
        ({"shift": float("inf")}, r"'shift' must be a float"),
        ({"signal": -0.1}, r"'signal' must be a float"),
        ({"prevalence": 1.0}, r"'prevalence' must be a float in \(0, 1\). Got 1.0"),
        ({"prevalence": [0.5]}, r"one value per hospital \(2\). Got 1 values"),
        ({"prevalence": "0.5"}, r"'prevalence' must be a float in \(0, 1\), a sequence"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        make_cohort(**kwargs)  # type: ignore[arg-type]


def test_write_cohort_layout(tmp_path: Path) -> None:
    frames = make_cohort(3, 20, 3, seed=0)
    paths = write_cohort(tmp_path / "out", frames)
    assert paths == [tmp_path / "out" / f"node{i}" / DEFAULT_DATASET for i in (1, 2, 3)]
    text = paths[0].read_bytes()
    assert text.startswith(b"KRAS,TP53,CDKN2A,diagnosis\n")
    assert b"\r" not in text
    first = text.split(b"\n")[1].split(b",")
    assert all(len(v.split(b".")[1]) == 3 for v in first[:-1])
    assert first[-1] in (b"0", b"1")
    other = write_cohort(tmp_path / "other", frames, "cohort.csv")
    assert other[1].name == "cohort.csv"
    assert other[1].read_bytes() == paths[1].read_bytes()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_nodes=st.integers(1, 4),
    rows=st.one_of(st.integers(1, 80), st.lists(st.integers(1, 80), min_size=1, max_size=4)),
    n_features=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
    shift=st.floats(0.0, 3.0),
)
def test_round_trip_through_files(
    n_nodes: int, rows: int | list[int], n_features: int, seed: int, shift: float
) -> None:
    if isinstance(rows, list):
        n_nodes = len(rows)
    frames = make_cohort(n_nodes, rows, n_features, seed=seed, shift=shift)
    # fewer patients than features: refused unparsed (no model of it could ever be shared)
    frames = [frame for frame in frames if len(frame) >= n_features]
    assume(frames)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_cohort(tmp, frames)
        loaded = [
            load_hospital_data([{DEFAULT_DATASET: p.read_bytes()}], require_both_classes=False)
            for p in paths
        ]
    for frame, data in zip(frames, loaded, strict=True):
        pd.testing.assert_frame_equal(
            data.features, frame.iloc[:, :-1], check_exact=False, rtol=0, atol=1e-9
        )
        pd.testing.assert_series_equal(data.labels, frame.iloc[:, -1])
    check_same_columns({f"node{i}": d.columns for i, d in enumerate(loaded, 1)})


# ------------------------------------------------------------------------------------------
# the shipped sample data


def _sample_files() -> list[Path]:
    return [SAMPLE_DIR / f"node{i}" / DEFAULT_DATASET for i in (1, 2)]


def test_sample_files_regenerate_byte_identically(tmp_path: Path) -> None:
    paths = write_cohort(tmp_path, make_cohort(**SAMPLE_KWARGS))
    for new, shipped in zip(paths, _sample_files(), strict=True):
        assert new.read_bytes() == shipped.read_bytes()
    assert not (SAMPLE_DIR / "node3").exists()


def test_sample_files_are_small_and_documented() -> None:
    total = sum(p.stat().st_size for p in _sample_files())
    assert total < 1_000_000
    readme = (SAMPLE_DIR / "README.md").read_text(encoding="utf-8")
    assert "synthetic" in readme.lower()
    assert "--seed 42" in readme
    assert "make_cohort(n_nodes=2, rows=180, n_features=8, seed=42)" in readme


def test_sample_hospitals_are_usable_and_differ() -> None:
    data = [load_hospital_data([{DEFAULT_DATASET: p.read_bytes()}]) for p in _sample_files()]
    assert [d.n_samples for d in data] == [225, 135]
    assert [d.n_positive for d in data] == [92, 30]
    check_same_columns({"node1": data[0].columns, "node2": data[1].columns})
    for d in data:
        assert d.feature_names == GENE_PANEL[:8]
        check_disclosure(d.n_samples, d.n_features, n_positive=d.n_positive)
    means = [d.features.mean() for d in data]
    assert (means[0] - means[1]).abs().mean() > 0.2  # measurement shift


def test_sample_pooled_fit_is_well_defined() -> None:
    # not separable: a nearly unpenalised pooled fit stays finite and moderate
    data = [load_hospital_data([{DEFAULT_DATASET: p.read_bytes()}]) for p in _sample_files()]
    X = np.vstack([d.to_numpy()[0] for d in data])
    y = np.concatenate([d.to_numpy()[1] for d in data])
    for fit_intercept in (True, False):
        model = LogisticRegression(C=1e8, max_iter=10_000, fit_intercept=fit_intercept)
        model.fit(X, y)
        assert np.abs(model.coef_).max() < 5
        assert 0.6 < model.score(X, y) < 0.95
