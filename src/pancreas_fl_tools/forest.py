"""The forest plot of a result: odds ratios with their 95 % intervals, one row per term.

Odds ratios on a log axis with a dashed reference line at 1 (no association), every term
labelled on the left and its odds ratio with the interval written on the right, as in a
clinical paper. The intercept is left out: its exponential is the odds at ``x = 0``, not an
odds ratio, and on the same axis it would squeeze every other row (``show`` prints it).

Terms the table cannot estimate are marked rather than drawn: an aliased term (``NA`` in the
table) and a diverging one ((quasi-)separation: its estimate does not exist; an arrow points
to the side it runs to). A result without standard errors (FedAvg, a bare array) shows the
odds ratios as points, and says that it has no intervals. Needs matplotlib (the ``plot``
extra).
"""

from __future__ import annotations

import io
import math

from pancreas_fl_tools.show import ResultView

__all__ = ["MAX_TERMS", "forest_png", "forest_rows"]

MAX_TERMS = 100
"""Most terms one forest plot shows (each labelled, about 0.3 inch a row)."""


def forest_rows(view: ResultView) -> list[dict]:
    """Return one row per plotted term (the intercept left out).

    Each row: ``term``, ``odds_ratio``, ``lower``, ``upper`` (``None`` where not drawn) and
    ``mark``: ``None``, ``"aliased"``, ``"+inf"``/``"-inf"`` (a diverging term),
    ``"no estimate"`` (another term of a fit without maximum-likelihood estimate) or
    ``"no interval"`` (a result without standard errors).
    """
    stats = view.statistics
    rows = []
    for j, term in enumerate(view.terms[: view.n_features]):
        if stats is None:
            rows.append(_row(term, _exp(view.coef[j]), None, None, "no interval"))
            continue
        if term in (stats.get("aliased") or ()) and not stats.get("penalized"):
            rows.append(_row(term, None, None, None, "aliased"))
            continue
        sign = (stats.get("diverging") or {}).get(term)
        if sign:
            rows.append(_row(term, None, None, None, "+inf" if sign > 0 else "-inf"))
            continue
        if not stats.get("wald", True):  # no maximum-likelihood estimate: nothing to draw
            rows.append(_row(term, None, None, None, "no estimate"))
            continue
        odds = stats["odds_ratio"][j]
        lower, upper = stats["or_ci_lower"][j], stats["or_ci_upper"][j]
        if _drawable(lower) and _drawable(upper):
            rows.append(_row(term, odds, lower, upper, None))
        else:
            rows.append(_row(term, odds, None, None, "no interval"))
    for row in rows:  # an odds ratio the log axis cannot show runs off to its side
        odds = row["odds_ratio"]
        if odds is not None and not _drawable(odds):
            row.update(odds_ratio=None, lower=None, upper=None, mark="+inf" if odds > 0 else "-inf")
    return rows


def _row(term, odds, lower, upper, mark) -> dict:
    return {"term": term, "odds_ratio": odds, "lower": lower, "upper": upper, "mark": mark}


def _exp(x: float) -> float:
    return math.exp(x) if x < 709.0 else math.inf


def _drawable(x) -> bool:
    return x is not None and math.isfinite(x) and x > 0


def forest_png(view: ResultView, plt) -> bytes:
    """Draw the forest plot of ``view`` as PNG bytes.

    Parameters
    ----------
    view : ResultView
    plt : module
        matplotlib's pyplot (:func:`pancreas_fl_tools.report.pyplot`).

    Raises
    ------
    ValueError
        With more than :data:`MAX_TERMS` terms, or none to plot.
    """
    rows = forest_rows(view)
    if not rows:
        raise ValueError(f"{view.file}: no term to plot (the model has only an intercept).")
    if len(rows) > MAX_TERMS:
        raise ValueError(
            f"{view.file}: {len(rows)} terms; a forest plot shows at most {MAX_TERMS}. "
            "Use 'pancreas-fl show --json' for the full table."
        )
    values = [v for r in rows for v in (r["odds_ratio"], r["lower"], r["upper"]) if v]
    low, high = (min(values), max(values)) if values else (1.0, 1.0)
    low, high = min(low, 1.0) / 1.6, max(high, 1.0) * 1.6
    fig, ax = plt.subplots(figsize=(7.0, max(2.8, 1.4 + 0.32 * len(rows))))
    ax.set_xscale("log")
    ax.set_xlim(low, high)
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    y = list(range(len(rows), 0, -1))
    for row, at in zip(rows, y, strict=True):
        _draw(ax, row, at, low, high)
    ax.set_yticks(y, [row["term"] for row in rows])
    ticks = _ticks(low, high)
    ax.minorticks_off()
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    heading = "odds ratio (95 % CI)" if view.statistics else "odds ratio"
    ax.text(
        1.02,
        len(rows) + 0.6,
        heading,
        transform=ax.get_yaxis_transform(),
        fontsize=8,
        va="bottom",
        fontweight="bold",
    )
    ax.set_ylim(0.4, len(rows) + 0.6)
    ax.set_xlabel(_x_label(view))
    ax.set_title(_title(view), fontsize=10)
    ax.grid(axis="x", which="major", alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def _ticks(low: float, high: float) -> list[float]:
    """Round odds ratios (1, 2, 5 times a power of ten) within the axis; decades when many."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    ticks = []
    for mantissas in ((1, 2, 5), (1, 1.5, 2, 3, 5, 7)):
        ticks = [m * 10.0**e for e in range(first, last + 1) for m in mantissas]
        ticks = [t for t in ticks if low <= t <= high]
        if len(ticks) >= 3:
            break
    if len(ticks) > 9:
        every = 1 + (last - first) // 8
        ticks = [10.0**e for e in range(first, last + 1, every) if low <= 10.0**e <= high]
    return ticks


def _draw(ax, row: dict, at: float, low: float, high: float) -> None:
    """One row: the point and its interval, or the mark that stands for them."""
    right = ax.get_yaxis_transform()  # x in axes fraction, y in data
    mark, odds = row["mark"], row["odds_ratio"]
    if odds is not None:
        if row["lower"] is not None:
            ax.plot([row["lower"], row["upper"]], [at, at], color="tab:blue", linewidth=1.6)
            label = f"{_short(odds)} ({_short(row['lower'])}, {_short(row['upper'])})"
        else:
            label = _short(odds)
        ax.plot([odds], [at], "s", color="tab:blue", markersize=6)
    elif mark == "aliased":
        ax.text(1.0, at, "  aliased: not estimable (NA)", va="center", color="tab:red")
        label = "NA"
    elif mark == "no estimate":
        ax.text(1.0, at, "  no estimate (separation)", va="center", color="grey")
        label = "NA"
    else:  # diverging, towards +inf or -inf
        towards_high = mark == "+inf"
        ax.annotate(
            "",
            xy=(high if towards_high else low, at),
            xytext=(1.0, at),
            arrowprops={"arrowstyle": "->", "color": "tab:red"},
        )
        ax.text(1.0, at + 0.25, "  diverges (separation)", va="bottom", color="tab:red", fontsize=8)
        label = f"-> {'inf' if towards_high else '0'}"
    ax.text(1.02, at, label, transform=right, va="center", fontsize=8)


def _short(x: float) -> str:
    """Write an odds ratio in a few characters: 2 decimals, or 3 significant digits."""
    return f"{x:.2f}" if 0.01 <= x < 1000 else f"{x:.2e}"


def _x_label(view: ResultView) -> str:
    per = "per standard deviation" if view.standardized else "per unit of the feature"
    interval = "; 95 % Wald interval" if view.statistics else ""
    return f"odds ratio {per} (log scale{interval})"


def _title(view: ResultView) -> str:
    stats = view.statistics
    if stats is None:
        what = "bare coefficients" if view.bare else f"{view.model.get('strategy', 'model')}"
        return f"{what}: no standard errors, no intervals"
    if not stats.get("wald", True):
        return "No maximum-likelihood estimate: (quasi-)separation"
    if stats.get("penalty") == "firth":
        return "Firth's penalized likelihood: odds ratios with 95 % intervals"
    if stats.get("penalized"):
        return f"L2-penalized (C={stats.get('C', float('nan')):g}): approximate intervals"
    return "Maximum likelihood: odds ratios with 95 % intervals"
