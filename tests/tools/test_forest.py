"""The forest plot: what each term's row shows, and the figure itself."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from _helpers import run_analysis, sample_splits
from pancreas_fl_tools import forest
from pancreas_fl_tools.forest import MAX_TERMS, forest_png, forest_rows
from pancreas_fl_tools.show import read_view

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def ml_model():
    """data/sample's unpenalized exact fit with an intercept."""
    return run_analysis(sample_splits(), strategy="exact", fit_intercept=True, C=math.inf).result


def view_of(tmp_path, obj):
    path = tmp_path / "result.pkl"
    path.write_bytes(pickle.dumps(obj))
    return read_view(path)


@pytest.fixture
def figures(monkeypatch):
    """Keep the figures forest_png draws (it closes them) for inspection."""
    from pancreas_fl_tools.report import pyplot

    plt = pyplot()
    close, kept = plt.close, []
    monkeypatch.setattr(plt, "close", kept.append)
    yield plt, kept
    for fig in kept:
        close(fig)


def test_rows_are_the_tables_odds_ratios_and_intervals_without_the_intercept(ml_model, tmp_path):
    rows = forest_rows(view_of(tmp_path, ml_model))
    stats = ml_model["statistics"]
    assert [row["term"] for row in rows] == stats["terms"][:-1]
    for j, row in enumerate(rows):
        assert row["mark"] is None
        assert row["odds_ratio"] == stats["odds_ratio"][j]
        assert (row["lower"], row["upper"]) == (stats["or_ci_lower"][j], stats["or_ci_upper"][j])


def test_aliased_and_diverging_terms_are_marked_not_drawn(ml_model, tmp_path):
    stats = ml_model["statistics"]
    nan = [math.nan] * len(stats["terms"])
    broken = {
        **stats,
        "wald": False,
        "diverging": {"KRAS": 1, "TP53": -1},
        "aliased": ["SMAD4"],
        **dict.fromkeys(("std_err", "z", "p_value", "ci_lower", "ci_upper"), nan),
        **dict.fromkeys(("or_ci_lower", "or_ci_upper"), nan),
    }
    rows = forest_rows(view_of(tmp_path, {**ml_model, "statistics": broken}))
    marks = {row["term"]: row["mark"] for row in rows}
    assert marks["KRAS"] == "+inf"
    assert marks["TP53"] == "-inf"
    assert marks["SMAD4"] == "aliased"
    assert marks["MUC1"] == "no estimate"  # no maximum-likelihood estimate: no point either
    assert all(row["odds_ratio"] is None for row in rows)


def test_a_result_without_standard_errors_has_points_without_intervals(tmp_path):
    coef = np.array([[0.5, -800.0, 800.0]])
    rows = forest_rows(view_of(tmp_path, coef))
    assert [row["term"] for row in rows] == ["column 1", "column 2", "column 3"]
    assert rows[0] == {
        "term": "column 1",
        "odds_ratio": math.exp(0.5),
        "lower": None,
        "upper": None,
        "mark": "no interval",
    }
    # odds ratios the log axis cannot show (0 and inf) run off to their side
    assert [rows[1]["mark"], rows[2]["mark"]] == ["-inf", "+inf"]


def test_the_figure_has_a_log_axis_a_line_at_one_and_every_term_labelled(
    ml_model, tmp_path, figures
):
    plt, kept = figures
    png = forest_png(view_of(tmp_path, ml_model), plt)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    (fig,) = kept
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    assert [label.get_text() for label in ax.get_yticklabels()] == ml_model["feature_names"]
    vertical = [line for line in ax.get_lines() if list(line.get_xdata()) == [1.0, 1.0]]
    assert len(vertical) == 1
    low, high = ax.get_xlim()
    assert low < min(ml_model["statistics"]["or_ci_lower"][:-1])
    assert high > max(ml_model["statistics"]["or_ci_upper"][:-1])
    texts = " ".join(text.get_text() for text in ax.texts)
    assert "0.49 (0.36, 0.67)" in texts  # SMAD4, as the table prints it, to 2 decimals


def test_too_many_terms_are_refused(tmp_path):
    coef = np.zeros((1, MAX_TERMS + 1))
    with pytest.raises(ValueError, match=rf"{MAX_TERMS + 1} terms; a forest plot shows at most"):
        forest_png(view_of(tmp_path, coef), plt=None)


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0.6, 1.7, [0.7, 1.0, 1.5]),
        (0.2, 6.0, [0.2, 0.5, 1.0, 2.0, 5.0]),
        (1e-3, 1e17, [1e-3, 1e0, 1e3, 1e6, 1e9, 1e12, 1e15]),
    ],
)
def test_ticks_are_round_odds_ratios(low, high, expected):
    np.testing.assert_allclose(forest._ticks(low, high), expected)


@pytest.mark.parametrize(
    ("params", "title"),
    [
        ({"C": math.inf}, "Maximum likelihood: odds ratios with 95 % intervals"),
        ({"C": 1.0}, "L2-penalized (C=1): approximate intervals"),
        ({"penalty": "firth"}, "Firth's penalized likelihood: odds ratios with 95 % intervals"),
    ],
    ids=["ml", "l2", "firth"],
)
def test_the_title_names_the_fit(tmp_path, figures, params, title):
    plt, kept = figures
    model = run_analysis(sample_splits(), strategy="exact", fit_intercept=True, **params).result
    forest_png(view_of(tmp_path, model), plt)
    assert kept[0].axes[0].get_title() == title
