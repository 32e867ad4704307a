"""Federated averaging of one-step local fits: the FLAME tutorial's algorithm.

Each round every hospital warm-starts scikit-learn's ``LogisticRegression`` from the global
coefficients, takes ``local_steps`` lbfgs iterations on its own patients and returns the
coefficients; the aggregator averages them (plainly, as the tutorial does, or weighted by
sample counts) and stops when the L2 change is at most ``tol`` or after ``max_iter + 1``
rounds. With the defaults this reproduces the tutorial bit for bit.
"""

from __future__ import annotations

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from pancreas_fl._warnings import ignoring

__all__ = ["federated_mean", "l2_change", "local_step", "make_local_model", "stop_reason"]


def make_local_model(*, C: float = 1.0, fit_intercept: bool = False, local_steps: int = 1):
    """The hospital's local model: ``local_steps`` warm-started lbfgs iterations per round.

    With the defaults this is the tutorial's
    ``LogisticRegression(max_iter=1, fit_intercept=False, warm_start=True)``.
    """
    return LogisticRegression(
        C=C, max_iter=local_steps, fit_intercept=fit_intercept, warm_start=True
    )


def local_step(model, X, y, coef, intercept=None):
    """Warm-start ``model`` from the global parameters and fit it on one hospital's data.

    Parameters
    ----------
    model : LogisticRegression
        From :func:`make_local_model`, kept by the hospital across rounds.
    X : array-like of shape (n_samples, n_features)
        The hospital's features (the tutorial passes the parsed DataFrame itself).
    y : array-like of shape (n_samples,)
        0/1 labels.
    coef : ndarray of shape (1, n_features) or None
        The global coefficients; ``None`` in the first round (the fit then starts at zero).
    intercept : ndarray of shape (1,), optional
        The global intercept, when the model fits one.

    Returns
    -------
    coef : ndarray of shape (1, n_features)
    intercept : ndarray of shape (1,) or None

    Notes
    -----
    The local fit stops after ``max_iter`` iterations on purpose, so scikit-learn's
    ``ConvergenceWarning`` is expected here and silenced, only this warning and only around
    this fit. Every other warning still surfaces.
    """
    model.coef_ = coef
    if intercept is not None:
        model.intercept_ = intercept
    with ignoring(ConvergenceWarning):
        model.fit(X, y)
    return model.coef_, (model.intercept_ if model.fit_intercept else None)


def federated_mean(arrays, weights=None):
    """Average the hospitals' arrays: plainly (the tutorial) or weighted by sample counts.

    Parameters
    ----------
    arrays : sequence of ndarray, all of one shape
    weights : sequence of float, optional
        For example each hospital's number of patients.

    Returns
    -------
    ndarray
        ``np.stack(arrays).mean(axis=0)`` (bit for bit the tutorial's expression) or the
        weighted average.
    """
    stacked = np.stack(arrays, axis=0)
    if weights is None:
        return stacked.mean(axis=0)
    return np.average(stacked, axis=0, weights=np.asarray(weights, dtype=float))


def l2_change(result, last_result) -> float:
    """The tutorial's change between two global parameter arrays: ``norm(a - b, ord=2)``."""
    return np.linalg.norm(result - last_result, ord=2).item()


def stop_reason(change, round_index: int, *, max_iter: int, tol: float):
    """The tutorial's stopping rule.

    Parameters
    ----------
    change : float or None
        The L2 change of the global parameters; ``None`` in the first round.
    round_index : int
        0 in the first round (the aggregator's ``num_iterations`` before the increment).
    max_iter, tol
        Stop when ``change <= tol``, or when ``round_index > max_iter - 1``.

    Returns
    -------
    {'tolerance', 'max_iter'} or None
        ``None`` means go on. A run that never reaches ``tol`` performs ``max_iter + 1``
        rounds.
    """
    if change is None:
        return None
    if change <= tol:
        return "tolerance"
    if round_index > max_iter - 1:
        return "max_iter"
    return None
