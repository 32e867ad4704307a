"""What the aggregator sides of both strategies share: the cohort, the round log, the model.

:func:`introduce` is the aggregator's first step in round 0, whatever the strategy: it checks
that every hospital runs with the same shared parameters, reports every problem the hospitals
found with their data (in one error), checks that they have the same columns, agrees the
categorical levels, and keeps names and counts (:class:`Cohort`). :class:`RoundLog` writes one
history entry and one log line per round, and :func:`final_model` assembles the model dict the
analyst receives.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pancreas_fl import results
from pancreas_fl.data import check_same_columns
from pancreas_fl.encoding import Encoding, union_levels
from pancreas_fl.errors import ConfigError
from pancreas_fl.messages import Introduction
from pancreas_fl.params import SHARED_PARAMS, Params
from pancreas_fl.problems import raise_problems
from pancreas_fl.table import uses_table_options

__all__ = ["MAX_ITER_MESSAGE", "Cohort", "Log", "RoundLog", "final_model", "introduce"]

#: ``flame.flame_log``: ``log(message, log_type=...)``.
Log = Callable[..., None]

#: The tutorial's words when the round limit stops the analysis.
MAX_ITER_MESSAGE = "Maximum number of {max_iter} iterations reached. Returning current results."


@dataclass(frozen=True)
class Cohort:
    """What the aggregator knows of the hospitals: column names and counts, nothing else.

    Attributes
    ----------
    feature_names : list of str
    label : str
        The label column's name.
    n_samples : dict of str to int
        Patients per hospital (node id -> count), in the order of the node ids.
    n_positive : int
        Patients with label 1, over all hospitals.
    n_dropped : dict of str to int or None
        Incomplete rows each hospital dropped (``missing="complete-case"``), else ``None``.
    encoding : Encoding or None
        How the chosen columns become the model's (``features``, ``categorical``, ``fill``,
        ``missing``); ``None`` for the tutorial's table, used as it is.
    """

    feature_names: list[str]
    label: str
    n_samples: dict[str, int]
    n_positive: int
    n_dropped: dict[str, int] | None = None
    encoding: Encoding | None = None

    @property
    def n_total(self) -> int:
        """Patients over all hospitals."""
        return sum(self.n_samples.values())


def introduce(intros: dict[str, Introduction], params: Params) -> Cohort:
    """Round 0 at the aggregator: check that the hospitals agree with it, and count them.

    Parameters
    ----------
    intros : dict of str to Introduction
        Every hospital's introduction, by node id, in the order of the node ids.
    params : Params
        The aggregator's validated parameters.

    Raises
    ------
    ConfigError
        A hospital runs with another value of a shared parameter.
    DataError
        Hospitals sent problems with their data (every problem of every hospital, one line
        per hospital: :func:`pancreas_fl.problems.raise_problems`), or the hospitals'
        columns differ (names only cross, never values).
    """
    for node, intro in intros.items():
        theirs = intro["params"]
        for name in SHARED_PARAMS:
            if theirs[name] != getattr(params, name):
                raise ConfigError(
                    f"hospital {node!r} runs with {name}={theirs[name]!r} but the aggregator "
                    f"with {name}={getattr(params, name)!r}; pass the same value in "
                    "analyzer_kwargs and aggregator_kwargs."
                )
    raise_problems({node: intro["problems"] for node, intro in intros.items()})
    columns = {node: tuple(intro["columns"]) for node, intro in intros.items()}
    check_same_columns(columns, file=params.dataset)
    first = next(iter(columns.values()))
    feature_names, encoding = list(first[:-1]), None
    if uses_table_options(params):
        levels = union_levels({node: intro["levels"] or {} for node, intro in intros.items()})
        encoding = Encoding(
            tuple(feature_names), levels=levels, fill=params.fill or {}, missing=params.missing
        )
        feature_names = encoding.feature_names
    return Cohort(
        feature_names=feature_names,
        label=first[-1],
        n_samples={node: intro["n"] for node, intro in intros.items()},
        n_positive=sum(intro["n_pos"] for intro in intros.values()),
        n_dropped=(
            {node: intro["n_dropped"] for node, intro in intros.items()}
            if params.missing == "complete-case"
            else None
        ),
        encoding=encoding,
    )


class RoundLog:
    """The aggregator's history: one entry and one ``info`` log line per round.

    Parameters
    ----------
    n_total : int
        Patients over all hospitals (the log-loss is the pooled mean).
    log : callable
        ``flame.flame_log``.

    Attributes
    ----------
    history : list of dict
        One entry per round: ``round``, ``delta`` (change of the global parameters, ``None``
        in the first round), ``log_loss`` (pooled training log-loss of the model the round
        evaluated, ``None`` for a round that evaluated no model), ``seconds``, and what the
        strategy adds (exact: ``accepted``, ``False`` for a rejected line-search trial).
    """

    def __init__(self, n_total: int, log: Log) -> None:
        self.n_total = n_total
        self.log = log
        self.history: list[dict[str, Any]] = []
        self._clock = time.perf_counter()

    def record(self, round_index: int, delta: float | None, loss_sum: float | None, **extra):
        """Close round ``round_index``: append its entry and log one line."""
        now = time.perf_counter()
        entry = {
            "round": round_index,
            "delta": delta,
            "log_loss": None if loss_sum is None else loss_sum / self.n_total,
            "seconds": now - self._clock,
            **extra,
        }
        self._clock = now
        self.history.append(entry)
        change = "n/a" if delta is None else f"{delta:.3e}"
        loss = "n/a" if entry["log_loss"] is None else f"{entry['log_loss']:.6f}"
        self.log(
            f"round {round_index}: change {change}, log-loss {loss} ({entry['seconds']:.3f} s)",
            log_type="info",
        )


def final_model(
    params: Params,
    cohort: Cohort,
    rounds: RoundLog,
    stop_reason: str,
    coef,
    intercept,
    *,
    standardization: dict | None = None,
    statistics: dict | None = None,
) -> dict:
    """Build the model dict the analyst receives (see :func:`pancreas_fl.results.make_model`)."""
    return results.make_model(
        strategy=params.strategy,
        coef=coef,
        intercept=intercept,
        feature_names=cohort.feature_names,
        label=cohort.label,
        params=params,
        history=rounds.history,
        stop_reason=stop_reason,
        n_samples=cohort.n_samples,
        standardization=standardization,
        statistics=statistics,
        encoding=None if cohort.encoding is None else cohort.encoding.to_dict(),
        n_dropped=cohort.n_dropped,
    )
