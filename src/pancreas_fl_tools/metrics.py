"""Evaluation metrics and prediction helpers (numpy only).

These are computed on pooled predictions or, federated, from per-hospital sums; each function
documents the formula so that the CLI can report them consistently.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pancreas_fl.exact.sums import design_matrix, sigmoid

__all__ = [
    "accuracy",
    "log_loss_mean",
    "predict_proba",
    "roc_auc",
]


def predict_proba(X: Any, theta: Any, *, fit_intercept: bool) -> np.ndarray:
    r""":math:`P(y = 1 \mid x) = \sigma(\tilde x^\top \theta)`.

    Parameters
    ----------
    X : array_like of shape (n, d)
    theta : array_like of shape (d + fit_intercept,)
    fit_intercept : bool

    Returns
    -------
    numpy.ndarray of shape (n,)
    """
    Xd = design_matrix(X, fit_intercept=fit_intercept)
    return sigmoid(Xd @ np.asarray(theta, dtype=np.float64).reshape(-1))


def _labels(y: Any) -> np.ndarray:
    y = np.asarray(y).astype(np.float64).reshape(-1)
    if not np.all((y == 0.0) | (y == 1.0)):
        raise ValueError("y must contain only the labels 0 and 1.")
    return y


def log_loss_mean(y: Any, p: Any, *, eps: float = 1e-15) -> float:
    r"""Mean log-loss :math:`-\frac1n\sum_i [y_i\log p_i + (1-y_i)\log(1-p_i)]`.

    Probabilities are clipped to :math:`[\epsilon, 1-\epsilon]`. For exact values from a
    linear predictor use :func:`~pancreas_fl.exact.sums.local_terms` (``loss / n``).
    """
    y = _labels(y)
    p = np.clip(np.asarray(p, dtype=np.float64).reshape(-1), eps, 1.0 - eps)
    if y.size == 0:
        raise ValueError("log_loss_mean needs at least one sample.")
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


def accuracy(y: Any, p: Any, *, threshold: float = 0.5) -> float:
    r"""Fraction of correct predictions, predicting 1 when :math:`p \ge` ``threshold``."""
    y = _labels(y)
    if y.size == 0:
        raise ValueError("accuracy needs at least one sample.")
    pred = np.asarray(p, dtype=np.float64).reshape(-1) >= threshold
    return float(np.mean(pred == (y == 1.0)))


def roc_auc(y: Any, p: Any) -> float:
    r"""Area under the ROC curve (Mann-Whitney U with mid-ranks for ties).

    .. math::

        \mathrm{AUC} = \frac{R_+ - n_+(n_+ + 1)/2}{n_+ n_-},

    :math:`R_+` the sum of the mid-ranks of the positives. Equals
    ``sklearn.metrics.roc_auc_score``; NaN when only one class is present.
    """
    y = _labels(y)
    s = np.asarray(p, dtype=np.float64).reshape(-1)
    n_pos = int(np.count_nonzero(y))
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(s.size)
    # mid-ranks of tied groups
    _, start, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    mid = start + (counts + 1) / 2.0
    ranks[order] = np.repeat(mid, counts)
    r_pos = float(np.sum(ranks[y == 1.0]))
    return (r_pos - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
