r"""The logistic model at one hospital: the per-patient terms both strategies use.

For a patient with features :math:`x \in \mathbb{R}^d` and label :math:`y \in \{0, 1\}` the
design row is :math:`\tilde x = x` (``fit_intercept=False``) or :math:`\tilde x = (x, 1)`
(intercept last), the parameters are :math:`\theta = (w, b)`, the linear predictor is
:math:`z = \tilde x^\top \theta` and the per-patient log-loss is
:math:`\ell = \log(1 + e^{z}) - y z`.

FedAvg sums the log-loss for the aggregator's history (:func:`log_loss_sum`); the exact
strategy's sums (:func:`pancreas_fl.exact.sums.local_terms`) add the gradient and the
curvature, over the same blocks of rows and with the same arithmetic, so that both report the
same number for the same model. Nothing here leaves the hospital but a sum.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BLOCK_BYTES", "design_rows", "log_loss_sum", "log_loss_terms"]


def log_loss_terms(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    r"""Per-patient log-loss :math:`\log(1 + e^{z}) - y z` (stable, via ``logaddexp``).

    Parameters
    ----------
    z : numpy.ndarray of shape (n,)
        Linear predictor.
    y : numpy.ndarray of shape (n,)
        Labels in {0, 1}.

    Returns
    -------
    numpy.ndarray of shape (n,)
        Non-negative losses.
    """
    return np.logaddexp(0.0, z) - y * z


#: Bytes of design rows :func:`local_terms` multiplies at a time (2 MiB: 8,456 rows of 30
#: features and an intercept). Blocks that fit in cache are also faster than one product.
BLOCK_BYTES = 2 * 2**20


def design_rows(block: np.ndarray, buffer: np.ndarray | None, fit_intercept: bool, scaler):
    """Return the rows of the design for ``block``.

    ``block`` itself, or standardized and/or with the intercept's ones in ``buffer`` (the same
    numbers as :func:`~pancreas_fl.exact.standardize.standardize` and
    :func:`~pancreas_fl.exact.sums.design_matrix`).
    """
    if buffer is None:
        return block
    m, d = block.shape
    Xd = buffer[:m]
    if scaler is None:
        Xd[:, :d] = block
    else:
        np.subtract(block, scaler[0], out=Xd[:, :d])
        np.divide(Xd[:, :d], scaler[1], out=Xd[:, :d])
    if fit_intercept:
        Xd[:, d] = 1.0
    return Xd


def log_loss_sum(X: np.ndarray, y: np.ndarray, theta: np.ndarray, *, fit_intercept: bool) -> float:
    r"""Sum the patients' log-loss :math:`\sum_i \ell_i` at ``theta``.

    The number :func:`~pancreas_fl.exact.sums.local_terms` reports as ``loss`` for the same
    arguments, bit for bit: the linear predictor is computed over the same blocks of rows
    (one product over ``X`` itself without an intercept), the terms summed in one call.

    Parameters
    ----------
    X : numpy.ndarray of shape (n, d)
        The hospital's features, float64.
    y : numpy.ndarray of shape (n,)
        Labels 0/1.
    theta : numpy.ndarray of shape (d + fit_intercept,)
        Coefficients, then the intercept when ``fit_intercept``.
    fit_intercept : bool

    Returns
    -------
    float
    """
    n, p = X.shape[0], theta.shape[0]
    rows = max(1, min(BLOCK_BYTES // (8 * p) if fit_intercept else n, n))
    design = np.empty((rows, p)) if fit_intercept else None
    z = np.empty(n)
    for start in range(0, n, rows):
        Xd = design_rows(X[start : start + rows], design, fit_intercept, None)
        np.matmul(Xd, theta, out=z[start : start + Xd.shape[0]])
    return float(np.sum(log_loss_terms(z, y.astype(np.float64))))
