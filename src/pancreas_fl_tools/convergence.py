"""The stopping rule's quantity per round, for the convergence plot (:func:`report.plot_png`).

The log-loss flattens after a few rounds and cannot show whether a fit converged; the quantity
the stopping rule compares can, on a log axis:

* **FedAvg** (the tutorial's rule): the L2 change of the global coefficients between two
  rounds, against ``tol``; the run stops at the first change ``<= tol``, else after
  ``max_iter + 1`` rounds.
* **exact**: the norm of the full Newton (or L-BFGS) step proposed from the best point,
  against ``tol`` times the norm of that point (L-BFGS: divided by 100, and the step taken
  and the preconditioned gradient must be below it too); see
  :meth:`pancreas_fl.exact.FederatedSolver.check_convergence`. Both are in the model's history
  (``step_norm``, ``step_bound``); rejected line-search trials are left out.
"""

from __future__ import annotations

import math

__all__ = ["draw_stopping_rule", "stopping_series"]


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def stopping_series(model: dict) -> dict | None:
    """Return the stopping rule's quantity and threshold per round, or ``None`` if unrecorded.

    Returns
    -------
    dict or None
        ``label``, ``rounds`` and ``values`` (the quantity), ``bound_rounds`` and ``bounds``
        (the threshold), ``bound_label``. Only positive finite values (a log axis).
    """
    history = model.get("history") or []
    if model.get("strategy") == "exact":
        rows = [e for e in history if e.get("accepted", True) and _positive(e.get("step_norm"))]
        limits = [e for e in history if e.get("accepted", True) and _positive(e.get("step_bound"))]
        if not rows:
            return None
        return {
            "label": "step proposed from the best point, ‖d‖",
            "rounds": [e["round"] for e in rows],
            "values": [e["step_norm"] for e in rows],
            "bound_rounds": [e["round"] for e in limits],
            "bounds": [e["step_bound"] for e in limits],
            "bound_label": "threshold tol · ‖θ‖ (L-BFGS: / 100): stops at or below",
        }
    rows = [e for e in history if _positive(e.get("delta"))]
    tol = (model.get("params") or {}).get("tol")
    if not rows:
        return None
    series = {
        "label": "L2 change of the coefficients",
        "rounds": [e["round"] for e in rows],
        "values": [e["delta"] for e in rows],
        "bound_rounds": [],
        "bounds": [],
        "bound_label": f"tol = {tol:g}: stops at or below" if _positive(tol) else "",
    }
    if _positive(tol):
        series["bound_rounds"] = [e["round"] for e in history]
        series["bounds"] = [tol] * len(history)
    return series


def draw_stopping_rule(ax, model: dict) -> None:
    """Draw the stopping rule's quantity and its threshold on ``ax``, log scale."""
    series = stopping_series(model)
    ax.set_xlabel("round")
    ax.set_title("stopping rule", fontsize=10)
    if series is None:
        ax.text(
            0.5,
            0.5,
            "the stopping rule's quantity\nis not recorded in this result",
            ha="center",
            va="center",
            transform=ax.transAxes,
            color="grey",
        )
        ax.set_xticks([])
        ax.set_yticks([])
        return
    ax.set_yscale("log")
    ax.plot(series["rounds"], series["values"], marker="o", label=series["label"])
    if series["bounds"]:
        ax.plot(
            series["bound_rounds"],
            series["bounds"],
            linestyle="--",
            color="tab:red",
            label=series["bound_label"],
        )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
