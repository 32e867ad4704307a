"""FedAvg: the FLAME tutorial's algorithm, step by step, and its messages.

The FLAME pancreas tutorial (``pancreas-analysis-tutorial.txt``), and where each of its steps
lives in pancreas-fl::

    tutorial                                            pancreas-fl
    --------------------------------------------------  -----------------------------------
    2.2    LogisticRegression(max_iter=1,               FedAvgHospital.clf
           fit_intercept=False, warm_start=True)
    2.2.1  parse the CSV, split off the last column     pancreas_fl.reader (once, in round 0)
    2.2.1  clf.coef_ = aggregator_results; clf.fit;     FedAvgHospital.update
           return clf.coef_
    2.3.1  np.stack(coefs, axis=0).mean(axis=0)         FedAvgAggregator.aggregate,
                                                        federated_mean
    2.3.2  has_converged: L2 change <= 1e-8, or         stop_rule (with MAX_ITER and TOL),
           num_iterations > max_iter - 1 (11 rounds)    applied once per round in aggregate

What a hospital sends in round ``k``: :class:`FedAvgUpdate`, its coefficients after one
warm-started lbfgs step from the global model of round ``k - 1`` (from zero in round 0), and
the sum of its patients' log-loss there. What it gets back: the mean coefficients
(:data:`FedAvgBroadcast`).

Why the default result is the tutorial's, bit for bit:

1. **The same numbers.** The reader parses the file with the tutorial's
   ``pd.read_csv(BytesIO(raw))``, splits it with its ``iloc`` and converts the features once
   exactly as ``LogisticRegression.fit`` converts that frame in each of the tutorial's fits
   (:func:`pancreas_fl.reader.read_hospital_data`): each fit here sees the tutorial's array.
2. **The same estimator and step.** ``LogisticRegression(max_iter=1, fit_intercept=False,
   warm_start=True)``, its ``coef_`` set to the broadcast, one ``fit`` per round.
3. **The same mean.** ``np.stack(coefs, axis=0).mean(axis=0)`` over the hospitals in the
   order of their node ids (:func:`federated_mean`).
4. **The same rule.** ``norm(result - last_result, ord=2) <= TOL``, else
   ``num_iterations > MAX_ITER - 1`` (:func:`stop_rule`), on the same two models.
5. **The same output.** The bare ``(1, n_features)`` mean coefficients, pickled.

The parameters generalise it without changing that: ``local_steps`` (lbfgs iterations per
round, the tutorial's ``max_iter=1``), ``C``, ``fit_intercept``, ``weighted`` (average by
patient counts) and ``max_iter``/``tol`` of the rule. The log-loss each hospital adds is for
the aggregator's history only; it changes nothing in the model.
"""

from __future__ import annotations

from typing import TypedDict

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from pancreas_fl._warnings import ignoring
from pancreas_fl.handshake import Agreement
from pancreas_fl.logistic import log_loss_sum
from pancreas_fl.params import Params, default
from pancreas_fl.reader import HospitalData
from pancreas_fl.rounds import MAX_ITER_MESSAGE, Log, RoundLog, final_model
from pancreas_fl.wire import UpdateSpec

__all__ = [
    "MAX_ITER",
    "TOL",
    "FedAvgAggregator",
    "FedAvgBroadcast",
    "FedAvgHospital",
    "FedAvgUpdate",
    "GlobalModel",
    "federated_mean",
    "l2_change",
    "stop_rule",
]


#: The tutorial's stopping rule (2.3.2), as the defaults of ``max_iter`` and ``tol`` in the
#: parameter table: stop when the L2 change of the global model is at most ``TOL`` (1e-8),
#: else after ``MAX_ITER + 1`` rounds (10, so 11 rounds).
MAX_ITER = default("max_iter", "fedavg")
TOL = default("tol", "fedavg")


# ----------------------------------------------------------------------- messages
class FedAvgUpdate(TypedDict):
    """FedAvg, every round: the hospital's model after its local step."""

    coef: np.ndarray
    """``(1, n_features)``: ``LogisticRegression.coef_`` after ``local_steps`` lbfgs
    iterations, warm-started from the global model (the tutorial's whole message)."""
    intercept: np.ndarray | None
    """``(1,)`` when ``fit_intercept``, else ``None``."""
    loss: float
    """Sum of the patients' log-loss at the global model the round started from (for the
    aggregator's history)."""
    sum_abs: np.ndarray | None
    r"""First model round only (else ``None``): ``(n_features,)``, :math:`\sum_i |x_{ij}|` per
    feature, an aggregate like a mean. The aggregator bounds the intercept and the loss of
    every later update with it (:mod:`pancreas_fl.wire`)."""


class GlobalModel(TypedDict):
    """FedAvg's broadcast when the result is the model dict (``output='model'``)."""

    coef: np.ndarray
    """``(1, n_features)``: the (weighted) mean of the hospitals' coefficients."""
    intercept: np.ndarray | None


#: FedAvg's broadcast: the tutorial's bare ``(1, n_features)`` mean coefficients
#: (``output='coef'``), or :class:`GlobalModel`.
FedAvgBroadcast = np.ndarray | GlobalModel


# ----------------------------------------------------------------------- at each hospital
class FedAvgHospital:
    """The hospital side: one warm-started ``LogisticRegression``, kept across rounds.

    Parameters
    ----------
    data : HospitalData
        The hospital's data, parsed and validated once (round 0).
    params : Params

    Attributes
    ----------
    clf : sklearn.linear_model.LogisticRegression
        The tutorial's ``self.clf``; with the defaults exactly
        ``LogisticRegression(max_iter=1, fit_intercept=False, warm_start=True)``.
    """

    #: A local fit needs patients of both classes at every hospital.
    requires_both_classes = True

    def __init__(self, data: HospitalData, params: Params) -> None:
        # Tutorial 2.2.1 parses the CSV in every round; PancreasAnalyzer parses it once, in
        # round 0, and hands it over here. With the label in the last column (the default),
        # data.X is the tutorial's iloc[:, :-1] as LogisticRegression.fit converts it
        # (float64, C order), and data.y its iloc[:, -1].
        self.data = data
        self.fit_intercept = params.fit_intercept
        # Tutorial 2.2: max_iter=1, one lbfgs step per round, so that the hospitals stay in
        # step; warm_start=True, so that each fit starts from the global model.
        self.clf = LogisticRegression(
            C=params.C,
            max_iter=params.local_steps,
            fit_intercept=params.fit_intercept,
            warm_start=True,
        )

    def update(self, global_model: FedAvgBroadcast | None) -> FedAvgUpdate:
        """One round at the hospital (tutorial 2.2.1): step from the global model.

        Parameters
        ----------
        global_model : ndarray, GlobalModel or None
            The aggregator's last broadcast; ``None`` in the first round, where the fit
            starts from zero.

        Returns
        -------
        FedAvgUpdate
        """
        coef, intercept = _unpack(global_model)
        loss = self._loss_at(coef, intercept)
        # Tutorial: self.clf.coef_ = aggregator_results (None in the first round).
        self.clf.coef_ = coef
        if intercept is not None:
            self.clf.intercept_ = intercept
        # Tutorial: self.clf.fit(data, labels). The tutorial's fit converts its frame to the
        # array data.X already is, so this fit sees the same bits and copies nothing.
        # The fit stops after max_iter iterations on purpose: its ConvergenceWarning, and only
        # that warning, is expected here.
        with ignoring(ConvergenceWarning):
            self.clf.fit(self.data.X, self.data.y)
        # Tutorial: return self.clf.coef_
        intercept = self.clf.intercept_ if self.fit_intercept else None
        sum_abs = self._abs_sums() if global_model is None else None  # for the checks
        return {"coef": self.clf.coef_, "intercept": intercept, "loss": loss, "sum_abs": sum_abs}

    def _abs_sums(self) -> np.ndarray:
        """Sum ``|x|`` per feature: the reader's sums (its magnitudes' check) or one pass."""
        if self.data.abs_sums is not None:
            return self.data.abs_sums.copy()
        return _sum_abs(self.data.X)

    def _loss_at(self, coef: np.ndarray | None, intercept: np.ndarray | None) -> float:
        """Sum the patients' log-loss at the global model (zero coefficients in round 0).

        For the aggregator's history; not part of the tutorial.
        """
        X, y = self.data.X, self.data.y
        theta = np.zeros(self.data.n_features + self.fit_intercept)
        if coef is not None:
            theta = np.concatenate([coef.ravel(), [] if intercept is None else intercept.ravel()])
        return log_loss_sum(X, y, theta, fit_intercept=self.fit_intercept)


#: Bytes of rows :func:`_sum_abs` takes at a time: a block, its ``|x|`` and the next block
#: stay in a core's L2 cache (a 2 MiB block does not: 1.5x slower on 100,000 x 30).
_ABS_BLOCK_BYTES = 256 * 2**10


def _sum_abs(X: np.ndarray) -> np.ndarray:
    """Sum ``|x|`` per column, one block of rows at a time (no temporary the size of ``X``).

    Each block's ``|x|`` goes into one reused buffer and is summed by a matrix-vector product
    with ones (BLAS reads the buffer once, while it is still in cache).
    """
    n, d = X.shape
    rows = max(1, min(n, _ABS_BLOCK_BYTES // (8 * max(d, 1))))
    block, ones = np.empty((rows, d)), np.ones(rows)
    total = np.zeros(d)
    for start in range(0, n, rows):
        part = np.abs(X[start : start + rows], out=block[: min(rows, n - start)])
        total += ones[: len(part)] @ part
    return total


def _unpack(global_model: FedAvgBroadcast | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Coefficients and intercept of a broadcast: the very array object of a bare one."""
    if global_model is None:
        return None, None
    if isinstance(global_model, dict):
        return global_model["coef"], global_model["intercept"]
    return global_model, None


# ----------------------------------------------------------------------- at the aggregator
def federated_mean(arrays: list[np.ndarray], weights: list[int] | None = None) -> np.ndarray:
    """Average the hospitals' arrays (tutorial 2.3.1), plainly or weighted by patient counts.

    ``np.stack(arrays, axis=0).mean(axis=0)`` is the tutorial's expression, bit for bit.
    """
    stacked = np.stack(arrays, axis=0)
    if weights is None:
        return stacked.mean(axis=0)
    return np.average(stacked, axis=0, weights=np.asarray(weights, dtype=float))


def l2_change(result: np.ndarray, last_result: np.ndarray) -> float:
    """Return the tutorial's change between two global models.

    That is ``norm(result - last_result, ord=2)``.
    """
    return np.linalg.norm(result - last_result, ord=2).item()


def stop_rule(change: float | None, num_iterations: int, *, max_iter: int, tol: float):
    """Apply the tutorial's stopping rule (2.3.2).

    Parameters
    ----------
    change : float or None
        The L2 change of the global model; ``None`` in the first round (no last result).
    num_iterations : int
        The aggregator's round counter: 0 in the first round.
    max_iter, tol : int, float
        Stop when ``change <= tol``, else when ``num_iterations > max_iter - 1``; a run that
        never reaches ``tol`` therefore performs ``max_iter + 1`` rounds (11 by default).

    Returns
    -------
    {'tolerance', 'max_iter'} or None
        ``None``: go on.
    """
    if change is None:
        return None
    if change <= tol:
        return "tolerance"
    if num_iterations > max_iter - 1:
        return "max_iter"
    return None


class FedAvgAggregator:
    """The aggregator side: average the hospitals' models, stop by the tutorial's rule.

    Parameters
    ----------
    params : Params
    agreement : Agreement
        The hospitals' column names and counts (round 0).
    log : callable
        ``flame.flame_log``.

    Attributes
    ----------
    rounds : RoundLog
        The history, one entry per round.
    previous_ : numpy.ndarray or None
        The last global parameters (``None`` before the first round).
    stop_reason_ : {'tolerance', 'max_iter'} or None
        Why the analysis stopped (``None`` while it runs).
    """

    def __init__(self, params: Params, agreement: Agreement, log: Log) -> None:
        self.params = params
        self.agreement = agreement
        self.rounds = RoundLog(agreement.n_total, log)
        self.previous_: np.ndarray | None = None
        self.stop_reason_: str | None = None

    def update_spec(self) -> UpdateSpec:
        """Return what this round's updates must be: their shapes, and the model they left."""
        d = len(self.agreement.feature_names)
        p, previous = self.params, self.previous_
        start = None if previous is None else previous[:, :d]
        b0 = float(previous[0, d]) if previous is not None and p.fit_intercept else None
        return UpdateSpec("fedavg", d, p.fit_intercept, C=p.C, start=start, start_intercept=b0)

    def aggregate(self, updates: dict[str, FedAvgUpdate], num_iterations: int):
        """One round at the aggregator (tutorial 2.3.1): the mean of the hospitals' models.

        Parameters
        ----------
        updates : dict of str to FedAvgUpdate
            By node id, in the order of the node ids (the mean does not depend on arrival).
        num_iterations : int
            The round counter (0 in the first round).

        Returns
        -------
        ndarray, GlobalModel or dict
            With ``output='coef'`` the tutorial's bare mean coefficients, also as the final
            result; otherwise a :class:`GlobalModel` while the analysis runs and the model
            dict in its last round.
        """
        p = self.params
        local = list(updates.values())
        weights = [self.agreement.n_samples[node] for node in updates] if p.weighted else None
        # Tutorial: global_params_ = np.stack(coefs, axis=0).mean(axis=0)
        coef = federated_mean([u["coef"] for u in local], weights)
        intercept = None
        if p.fit_intercept:
            intercept = federated_mean([u["intercept"] for u in local], weights)
        current = coef if intercept is None else np.hstack([coef, intercept[:, None]])
        change = None if self.previous_ is None else l2_change(current, self.previous_)
        self.previous_ = current
        self.rounds.record(num_iterations, change, sum(u["loss"] for u in local))
        # Tutorial 2.3.2 (has_converged), applied here, once, to the same two models: the last
        # round returns the model dict rather than the broadcast. has_converged reports it.
        self.stop_reason_ = stop_rule(change, num_iterations, max_iter=p.max_iter, tol=p.tol)
        if p.output == "coef":
            return coef  # the tutorial's result, and its broadcast
        if self.stop_reason_ is None:
            return GlobalModel(coef=coef, intercept=intercept)  # the hospitals get the model only
        return final_model(p, self.agreement, self.rounds, self.stop_reason_, coef, intercept)

    def stop_message(self, reason: str) -> tuple[str, str]:
        """Return the log line (message, log type) for ``reason``: the tutorial's words."""
        if reason == "tolerance":
            return "Delta error is smaller than the tolerance threshold", "info"
        return MAX_ITER_MESSAGE.format(max_iter=self.params.max_iter), "info"
