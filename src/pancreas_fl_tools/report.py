"""What a finished run tells the analyst: the summary, the JSON report and the convergence plot.

Each function takes the model dict (:func:`pancreas_fl.results.make_model`), the per-hospital
metrics (:func:`pancreas_fl_tools.simulation.evaluate`) and the wall time, and renders; none writes
a file (the command writes every output at once, or none: :func:`render_outputs` renders them
all first).
"""

from __future__ import annotations

import io
import json
import math
import pickle

__all__ = [
    "glm_table",
    "json_ready",
    "outcome_line",
    "plot_png",
    "render_outputs",
    "report_json",
    "summary_text",
]

_STOP_REASONS = {
    "tolerance": "the change fell below tol",
    "max_iter": "max_iter was reached",
    "line_search": "no step could lower the objective any further",
    "uncertified": "NOT converged: the gradient at the estimate does not certify it",
}


def summary_text(model: dict, metrics: list[dict], seconds: float) -> str:
    """Return the lines ``pancreas-fl simulate`` prints at the end.

    Rounds, stop reason and time; accuracy and ROC AUC of the final model at each hospital;
    for the exact strategy, the GLM table (:func:`pancreas_fl.exact.format_summary`).
    """
    lines = [
        "",
        outcome_line(model, seconds),
        f"{'hospital':<16} {'patients':>8} {'label 1':>8} {'accuracy':>9} {'ROC AUC':>8}",
    ]
    for row in metrics:
        auc = "n/a" if row["roc_auc"] is None else f"{row['roc_auc']:.3f}"
        lines.append(
            f"{row['hospital']:<16} {row['patients']:>8} {row['positives']:>8} "
            f"{row['accuracy']:>9.3f} {auc:>8}"
        )
    lines.append("(accuracy and ROC AUC of the final model at each hospital, on its own data)")
    if model.get("statistics"):
        lines += ["", glm_table(model["statistics"])]
    return "\n".join(lines)


def outcome_line(model: dict, seconds: float | None = None) -> str:
    """Return ``"<strategy>: <rounds> rounds [in <seconds> s]; stopped because <reason>."``."""
    reason = _STOP_REASONS.get(model["stop_reason"], model["stop_reason"])
    took = "" if seconds is None else f" in {seconds:.2f} s"
    return f"{model['strategy']}: {model['rounds']} rounds{took}; stopped because {reason}."


def glm_table(statistics: dict) -> str:
    """Return the exact strategy's GLM table (:func:`pancreas_fl.exact.format_summary`)."""
    from pancreas_fl.exact import format_summary

    return format_summary(statistics)


def json_ready(obj):
    """Plain JSON values: arrays to lists, non-finite floats to null."""
    if isinstance(obj, dict):
        return {str(key): json_ready(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(value) for value in obj]
    if hasattr(obj, "tolist"):
        return json_ready(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def report_json(model: dict, metrics: list[dict], seconds: float) -> bytes:
    """Render the ``--report`` file: the model, the metrics and the history as indented JSON."""
    fields = (
        "strategy",
        "rounds",
        "stop_reason",
        "coef",
        "intercept",
        "feature_names",
        "label",
        "params",
        "standardization",
        "statistics",
        "n_samples",
    )
    report = {name: model[name] for name in fields}
    report.update(metrics=metrics, history=model["history"], seconds_total=seconds)
    return json.dumps(json_ready(report), indent=2).encode()


def pyplot():
    """Import matplotlib's pyplot on the file-only Agg backend (the optional ``plot`` extra).

    Raises
    ------
    ImportError
        With the command that installs it, when matplotlib is missing.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("--plot needs matplotlib: pip install 'pancreas-fl[plot]'.") from None
    return plt


def plot_png(model: dict, plt=None) -> bytes:
    """Plot the convergence per round as PNG bytes.

    Left, the pooled training log-loss (rejected trial steps marked); right, on a log axis,
    the quantity the stopping rule compares and its threshold
    (:mod:`pancreas_fl_tools.convergence`).
    """
    from pancreas_fl_tools.convergence import draw_stopping_rule

    plt = plt or pyplot()
    history = [entry for entry in model["history"] if entry["log_loss"] is not None]
    accepted = [entry for entry in history if entry.get("accepted", True)]
    rejected = [entry for entry in history if not entry.get("accepted", True)]
    fig, (ax, rule) = plt.subplots(1, 2, figsize=(11, 4))
    draw_stopping_rule(rule, model)
    ax.plot([e["round"] for e in accepted], [e["log_loss"] for e in accepted], marker="o")
    if rejected:
        ax.plot(
            [e["round"] for e in rejected],
            [e["log_loss"] for e in rejected],
            "x",
            color="grey",
            label="rejected trial step",
        )
        ax.legend()
    ax.set_xlabel("round")
    ax.set_ylabel("pooled training log-loss")
    ax.set_title("log-loss", fontsize=10)
    fig.suptitle(f"pancreas-fl ({model['strategy']}): convergence")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return buffer.getvalue()


def render_outputs(
    model: dict,
    metrics: list[dict],
    seconds: float,
    *,
    out,
    coef_only: bool = False,
    report=None,
    plot=None,
    plt=None,
) -> dict:
    """Render every output file of a run (path -> bytes), so that all are written or none.

    ``out`` gets the pickled result: the model dict, or its bare coefficients with
    ``coef_only`` (the tutorial's output); ``report`` the JSON report and ``plot`` the
    convergence plot, when given.
    """
    files = {out: pickle.dumps(model["coef"] if coef_only else model)}
    if report:
        files[report] = report_json(model, metrics, seconds)
    if plot:
        files[plot] = plot_png(model, plt)
    return files
