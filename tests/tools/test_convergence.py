"""The convergence plot's second panel: the stopping rule's quantity and threshold per round."""

from __future__ import annotations

import pytest

from _helpers import run_analysis, sample_splits
from pancreas_fl_tools.convergence import stopping_series
from pancreas_fl_tools.report import plot_png


@pytest.fixture(scope="module")
def fedavg():
    return run_analysis(sample_splits(), output="model").result


@pytest.fixture(scope="module")
def exact():
    return run_analysis(sample_splits(), strategy="exact", fit_intercept=True).result


def test_fedavg_shows_the_l2_change_against_tol(fedavg):
    series = stopping_series(fedavg)
    history = fedavg["history"]
    assert series["rounds"] == list(range(1, 11))  # round 0 has no change yet
    assert series["values"] == [entry["delta"] for entry in history[1:]]
    assert series["bounds"] == [1e-8] * len(history)
    assert series["bound_label"] == "tol = 1e-08: stops at or below"
    assert fedavg["stop_reason"] == "max_iter"
    assert min(series["values"]) > 1e-8  # what the plot shows: it never got near tol


def test_exact_shows_the_step_that_stopped_the_run(exact):
    series = stopping_series(exact)
    assert exact["stop_reason"] == "tolerance"
    values, bounds = (
        series["values"],
        dict(zip(series["bound_rounds"], series["bounds"], strict=True)),
    )
    last = series["rounds"][-1]
    assert last == exact["history"][-1]["round"]
    assert values[-1] <= bounds[last]  # the step below the threshold ended the fit
    assert all(v > bounds[r] for r, v in zip(series["rounds"][1:-1], values[1:-1], strict=True))
    assert 0 not in series["bound_rounds"]  # tol * ||0|| = 0 cannot be drawn on a log axis


def test_rejected_trials_and_unknown_values_are_left_out():
    history = [
        {"round": 0, "delta": None, "log_loss": 0.69, "accepted": True, "step_norm": 2.0,
         "step_bound": 0.0},
        {"round": 1, "delta": 2.0, "log_loss": 0.9, "accepted": False, "step_norm": 2.0,
         "step_bound": 0.0},
        {"round": 2, "delta": 1.0, "log_loss": 0.5, "accepted": True, "step_norm": 1e-3,
         "step_bound": 1e-7},
        {"round": 3, "delta": 1.0, "log_loss": 0.5, "accepted": True, "step_norm": None,
         "step_bound": None},
    ]  # fmt: skip
    series = stopping_series({"strategy": "exact", "history": history})
    assert (series["rounds"], series["values"]) == ([0, 2], [2.0, 1e-3])
    assert (series["bound_rounds"], series["bounds"]) == ([2], [1e-7])


def test_a_history_without_the_rules_quantities_draws_a_note(figures):
    plt, kept = figures
    model = {
        "strategy": "exact",
        "history": [{"round": 0, "delta": None, "log_loss": 0.69}],
        "params": {},
    }
    assert stopping_series(model) is None
    plot_png(model, plt)
    (fig,) = kept
    rule = fig.axes[1]
    assert "not recorded" in " ".join(text.get_text() for text in rule.texts)


@pytest.mark.parametrize("which", ["fedavg", "exact"])
def test_the_plot_has_the_log_loss_and_the_rule_on_a_log_axis(which, request, figures):
    plt, kept = figures
    model = request.getfixturevalue(which)
    png = plot_png(model, plt)
    assert png.startswith(b"\x89PNG")
    (fig,) = kept
    loss, rule = fig.axes
    assert loss.get_yscale() == "linear"
    assert rule.get_yscale() == "log"
    series = stopping_series(model)
    drawn, threshold = rule.get_lines()
    assert list(drawn.get_ydata()) == series["values"]
    assert list(threshold.get_ydata()) == series["bounds"]


@pytest.fixture
def figures(monkeypatch):
    """Keep the figures plot_png draws (it closes them) for inspection."""
    pytest.importorskip("matplotlib")
    from pancreas_fl_tools.report import pyplot

    plt = pyplot()
    close, kept = plt.close, []
    monkeypatch.setattr(plt, "close", kept.append)
    yield plt, kept
    for fig in kept:
        close(fig)
