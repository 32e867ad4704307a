"""A result file read back for the analyst: what ``pancreas-fl show`` prints, as text or JSON.

The Hub hands out the aggregator's final result for download: the tutorial's bare
``(1, n_features)`` coefficient array, or pancreas-fl's model dict. :func:`read_view` loads it
exactly as :func:`pancreas_fl.results.load_model` does (the same refusals of hostile pickles),
checks that its statistics belong to its coefficients, and returns a :class:`ResultView`:

* a model dict prints as ``simulate`` prints that result: the rounds and why they stopped,
  the patients per hospital and, for the exact strategy, the GLM table with odds ratios and
  95 % intervals, the fit statistics and the notes (the per-hospital accuracy and ROC AUC need
  the hospitals' data and are left out);
* a model dict without statistics (FedAvg) prints its coefficients and odds ratios;
* a bare array prints its coefficients, named when the names are known (``feature_names``, or
  the header of a CSV in training order), and a note on what a bare array does not carry.
"""

from __future__ import annotations

import json
import math
import os
import textwrap
from dataclasses import dataclass, field

import numpy as np

from pancreas_fl.errors import quote_path
from pancreas_fl.results import ModelFileError, as_model_dict, load_result
from pancreas_fl_tools import report
from pancreas_fl_tools.output import one_line

__all__ = ["ResultView", "read_view", "view_json", "view_text"]

INTERCEPT = "intercept"

# the statistics' per-term lists (one number per term) that the table and the plot read
_PER_TERM = (
    "coef",
    "std_err",
    "z",
    "p_value",
    "ci_lower",
    "ci_upper",
    "odds_ratio",
    "or_ci_lower",
    "or_ci_upper",
)


@dataclass(frozen=True)
class ResultView:
    """A checked result, ready to print or plot.

    Attributes
    ----------
    file : str
        The file as given, quoted for a one-line message where needed.
    bare : bool
        The tutorial's bare coefficient array (no model dict).
    model : dict
        The result normalized by :func:`pancreas_fl.results.as_model_dict`.
    terms : list of str
        One name per coefficient, the intercept last when the result has one; ``column 1``,
        ``column 2``, ... for a bare array whose names are unknown.
    coef : numpy.ndarray
        The coefficients in the order of ``terms`` (raw feature space).
    statistics : dict or None
        The GLM summary (exact strategy), checked against ``terms``.
    notes : list of str
        What the result does not carry, and where to get it.
    """

    file: str
    bare: bool
    model: dict
    terms: list[str]
    coef: np.ndarray
    statistics: dict | None
    notes: list[str] = field(default_factory=list)

    @property
    def n_features(self) -> int:
        """The number of features (the terms but the intercept)."""
        return int(self.model["coef"].shape[1])

    @property
    def standardized(self) -> bool:
        """Whether the statistics refer to standardized features (per standard deviation)."""
        return self.statistics is not None and bool(self.model.get("standardization"))


def read_view(path, *, feature_names=None) -> ResultView:
    """Load a result file for display; refuse what :func:`~pancreas_fl.results.load_model` does.

    Parameters
    ----------
    path : str or os.PathLike
        The aggregator's result (FLAME's download, ``StarModelTester``'s file, or
        ``pancreas-fl simulate --out``).
    feature_names : list of str, optional
        Names for a bare array's coefficients, in training order (e.g. a hospital file's
        header); ignored for a model dict, which names its own.

    Returns
    -------
    ResultView

    Raises
    ------
    ModelFileError
        Unreadable, unsafe or malformed, or statistics that do not match the coefficients.
    """
    name = quote_path(os.fspath(path))
    result = load_result(path)
    model = as_model_dict(result, name=name)
    bare = not isinstance(result, dict)
    n_features = model["coef"].shape[1]
    if bare:
        return _bare_view(name, model, n_features, feature_names)
    has_intercept = isinstance(result, dict) and result.get("intercept") is not None
    names = model["feature_names"]
    if names is None:
        names = [f"column {j + 1}" for j in range(n_features)]
    terms = [*names, INTERCEPT] if has_intercept else list(names)
    coef = model["coef"].ravel()
    if has_intercept:
        coef = np.append(coef, model["intercept"])
    statistics = model.get("statistics")
    if statistics is not None:
        _check_statistics(statistics, terms, name)
    notes = [] if statistics else [_no_statistics_note(model)]
    return ResultView(name, False, model, terms, coef, statistics or None, notes)


def _bare_view(name: str, model: dict, n_features: int, feature_names) -> ResultView:
    if feature_names is not None:
        terms = [str(n) for n in feature_names][:n_features]
        named = (
            "named from the given header, in training order (nothing in the file checks that order)"
        )
    else:
        terms = [f"column {j + 1}" for j in range(n_features)]
        named = (
            "named by their position among the training file's columns (give --names-from "
            "CSV to name them from a hospital file's header)"
        )
    notes = [
        f"The tutorial's bare coefficient array of shape (1, {n_features}): coefficients "
        f"{named}. It carries no feature names, label, intercept (a fit with one is not in "
        "it), standard errors, p-values, intervals, fit statistics, rounds or patient counts. "
        "For these, run with output='model', and with strategy='exact' for the GLM table."
    ]
    return ResultView(name, True, model, terms, model["coef"].ravel(), None, notes)


def _no_statistics_note(model: dict) -> str:
    strategy = model.get("strategy")
    if strategy == "exact":
        return (
            "No standard errors: the fit did not share the Hessian (gradient-only solver). "
            "Run with solver='newton' for the GLM table."
        )
    return (
        "No standard errors, p-values or intervals: FedAvg's averaged coefficients have no "
        "known sampling distribution. Run with strategy='exact' for the GLM table."
    )


def _check_statistics(statistics, terms: list[str], name: str) -> None:
    """Refuse statistics that cannot be shown, or that belong to other terms."""
    if not isinstance(statistics, dict):
        raise ModelFileError(f"{name}: 'statistics' must be a dict.")
    if statistics.get("terms") != terms:
        raise ModelFileError(f"{name}: the statistics' terms are not the model's coefficients.")
    for key in _PER_TERM:
        values = statistics.get(key)
        if not isinstance(values, (list, tuple)) or len(values) != len(terms):
            raise ModelFileError(f"{name}: the statistics' {key!r} must list one number per term.")
        if not all(_is_number(v) for v in values):
            raise ModelFileError(f"{name}: the statistics' {key!r} must hold numbers only.")
    try:  # the header's fit statistics, as the table prints them
        report.glm_table(_escaped(statistics))
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        raise ModelFileError(f"{name}: the statistics are incomplete or malformed.") from None


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool)


def view_text(view: ResultView) -> str:
    """Return what ``pancreas-fl show`` prints.

    Control characters in the file's names and notes are escaped: a result file may come from
    anywhere, and nothing in it may move the cursor or clear the terminal.
    """
    if view.bare:
        lines = [f"{view.file}: the tutorial's bare coefficient array", ""]
        lines += _coefficient_table(view)
    else:
        model = view.model
        lines = [f"{view.file}: pancreas-fl model dict"]
        if _has_outcome(model):
            lines.append(one_line(report.outcome_line(model)))
        lines.append(f"label: {one_line(str(model.get('label', 'not recorded')))}")
        lines += _hospital_lines(model)
        lines.append("")
        if view.statistics:
            lines.append(report.glm_table(_escaped(view.statistics)))
        else:
            lines += _coefficient_table(view)
    for note in view.notes:
        wrapped = textwrap.wrap(
            one_line(note),
            78,
            initial_indent="Note: ",
            subsequent_indent="      ",
            break_on_hyphens=False,
            break_long_words=False,
        )
        lines += ["", *wrapped]
    return "\n".join(lines).rstrip()


def _escaped(statistics: dict) -> dict:
    """Return the statistics with every name and the note printable on one line."""
    names = ("terms", "aliased")
    out = {**statistics, **{key: [one_line(t) for t in statistics.get(key) or []] for key in names}}
    out["note"] = one_line(statistics["note"])
    return out


def _has_outcome(model: dict) -> bool:
    strategy, rounds = model.get("strategy"), model.get("rounds")
    return (
        isinstance(strategy, str)
        and isinstance(rounds, int)
        and not isinstance(rounds, bool)
        and isinstance(model.get("stop_reason"), (str, type(None)))
    )


def _hospital_lines(model: dict) -> list[str]:
    counts = model.get("n_samples")
    if not isinstance(counts, dict) or not all(
        isinstance(n, int) and not isinstance(n, bool) for n in counts.values()
    ):
        return []
    dropped = model.get("n_dropped") if isinstance(model.get("n_dropped"), dict) else None
    names = {node: one_line(str(node)) for node in counts}
    width = max([16, *(len(name) for name in names.values())])  # FLAME's node ids: 36 characters
    header = f"{'hospital':<{width}} {'patients':>8}" + (f" {'dropped':>8}" if dropped else "")
    lines = [header]
    for node, n in counts.items():
        extra = f" {one_line(str(dropped.get(node, 0))):>8}" if dropped else ""
        lines.append(f"{names[node]:<{width}} {n:>8}{extra}")
    lines.append(f"{'total':<{width}} {sum(counts.values()):>8}")
    return lines


def _coefficient_table(view: ResultView) -> list[str]:
    terms = [one_line(t) for t in view.terms]
    width = max(len("term"), *(len(t) for t in terms))
    lines = [f"{'term':<{width}} {'coef':>10} {'odds ratio':>10}", "-" * (width + 22)]
    for term, value in zip(terms, view.coef, strict=True):
        lines.append(f"{term:<{width}} {_number(value)} {_number(_exp(value))}")
    return lines


def _exp(x: float) -> float:
    return math.exp(x) if x < 709.0 else math.inf


def _number(x: float) -> str:
    if not math.isfinite(x):
        return f"{x!s:>10}"
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:>10.3e}"
    return f"{x:>10.4f}"


def view_json(view: ResultView) -> str:
    """Return ``pancreas-fl show --json``: the same content as one JSON document.

    Keys: ``file``, ``form`` (``"model"`` or ``"bare"``), ``terms``, ``coef`` and
    ``odds_ratio`` (one per term, the intercept last when present), ``statistics`` (the GLM
    summary or null), ``notes``, and from a model dict ``strategy``, ``rounds``,
    ``stop_reason``, ``label``, ``n_samples``, ``n_dropped``, ``params`` and
    ``standardization``. Non-finite numbers are null.
    """
    out = {
        "file": view.file,
        "form": "bare" if view.bare else "model",
        "terms": view.terms,
        "coef": view.coef,
        "odds_ratio": [_exp(float(v)) for v in view.coef],
        "statistics": view.statistics,
        "notes": view.notes,
    }
    if not view.bare:
        keys = ("strategy", "rounds", "stop_reason", "label", "n_samples", "n_dropped")
        out.update({key: view.model.get(key) for key in keys})
        out.update(params=view.model["params"], standardization=view.model.get("standardization"))
    return json.dumps(report.json_ready(out), indent=2, default=str)
