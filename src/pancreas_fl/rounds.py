"""The aggregator's rounds, whatever the strategy: one history entry and log line each, the model.

:class:`RoundLog` writes one history entry and one ``info`` log line per round;
:func:`final_model` assembles the model dict the analyst receives
(:func:`pancreas_fl.results.make_model`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pancreas_fl.handshake import Agreement
from pancreas_fl.params import Params

__all__ = ["MAX_ITER_MESSAGE", "Log", "RoundLog", "final_model"]

#: ``flame.flame_log``: ``log(message, log_type=...)``.
Log = Callable[..., None]

#: The tutorial's words when the round limit stops the analysis.
MAX_ITER_MESSAGE = "Maximum number of {max_iter} iterations reached. Returning current results."


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
        strategy adds (exact: ``accepted``, ``False`` for a rejected line-search trial, and
        the stopping rule's ``step_norm``, ``step_bound`` and ``grad_norm`` at the best point,
        ``None`` until known; see :class:`pancreas_fl.exact.SolverStep`).
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
    agreement: Agreement,
    rounds: RoundLog,
    stop_reason: str,
    coef,
    intercept,
    *,
    standardization: dict | None = None,
    statistics: dict | None = None,
) -> dict:
    """Build the model dict the analyst receives (see :func:`pancreas_fl.results.make_model`).

    Only with ``output='model'`` (the exact strategy's default): the tutorial's run, whose
    result is the bare coefficient array, never loads :mod:`pancreas_fl.results`.
    """
    from pancreas_fl import results

    return results.make_model(
        strategy=params.strategy,
        coef=coef,
        intercept=intercept,
        feature_names=agreement.feature_names,
        label=agreement.label,
        params=params,
        history=rounds.history,
        stop_reason=stop_reason,
        n_samples=agreement.n_samples,
        standardization=standardization,
        statistics=statistics,
        encoding=None if agreement.encoding is None else agreement.encoding.to_dict(),
        n_dropped=agreement.n_dropped,
    )
