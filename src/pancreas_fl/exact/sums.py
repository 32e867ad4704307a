r"""Local (per-hospital) terms of the logistic log-likelihood.

Everything in this module runs *at a hospital* on its own patients; only the sums returned by
:func:`local_terms` leave the hospital. The aggregator adds the hospitals' sums and applies
``C`` and the penalty (see :mod:`pancreas_fl.exact.solver`), so a hospital never needs to know
``C`` or the penalty.

Notation
--------
For a patient with features :math:`x \in \mathbb{R}^d` and label :math:`y \in \{0, 1\}`
the design row is :math:`\tilde x = x` (``fit_intercept=False``) or
:math:`\tilde x = (x, 1)` (``fit_intercept=True``, intercept last), the parameter vector is
:math:`\theta = (w, b)` and the linear predictor :math:`z = \tilde x^\top \theta`.
The per-patient log-loss (negative log-likelihood) is

.. math::

    \ell(\theta) = \log(1 + e^{z}) - y z,

with gradient :math:`(\sigma(z) - y)\,\tilde x` and Hessian
:math:`\sigma(z)(1 - \sigma(z))\,\tilde x \tilde x^\top` (the Fisher information of the
Bernoulli model; for the canonical logit link Newton and Fisher scoring coincide).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pancreas_fl.exact.curvature import (
    ENCODINGS,
    GRAM_ROWS,
    add_packed,
    gram_of_weighted_rows,
    is_packed,
    pack_upper,
    unpack_upper,
)
from pancreas_fl.exact.packed import PackedSymmetric
from pancreas_fl.logistic import BLOCK_BYTES, design_rows, log_loss_terms

__all__ = ["aggregate_terms", "design_matrix", "local_terms", "sigmoid"]

_HESSIAN_MODES = (True, False, "diag", None, *ENCODINGS)
#: The curvature modes that pack the Hessian's upper triangle (see ``exact.curvature``).
_PACKED = ("triangle", "triangle32", "residual32")


def sigmoid(z: np.ndarray) -> np.ndarray:
    r"""Numerically stable logistic function :math:`\sigma(z) = 1 / (1 + e^{-z})`.

    Parameters
    ----------
    z : array_like
        Linear predictor.

    Returns
    -------
    numpy.ndarray
        :math:`\sigma(z)` in :math:`[0, 1]`, computed as :math:`e^{-\log(1 + e^{-z})}`
        with ``numpy.logaddexp`` so that no overflow occurs for large :math:`|z|`.
    """
    z = np.asarray(z, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -z))


def design_matrix(X: Any, *, fit_intercept: bool) -> np.ndarray:
    r"""Return ``X`` as float64 with a trailing column of ones if ``fit_intercept``.

    Parameters
    ----------
    X : array_like of shape (n, d)
        Feature matrix.
    fit_intercept : bool
        Append the intercept column (intercept last, as in :math:`\theta = (w, b)`).

    Returns
    -------
    numpy.ndarray of shape (n, d + fit_intercept)
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-d array. Got an array with {X.ndim} dimension(s).")
    if fit_intercept:
        X = np.hstack([X, np.ones((X.shape[0], 1))])
    return X


def local_terms(
    X: Any,
    y: Any,
    theta: Any,
    *,
    fit_intercept: bool,
    hessian: bool | str | None = True,
    mean: Any = None,
    scale: Any = None,
) -> dict[str, Any]:
    r"""Sum the per-patient log-loss terms at ``theta`` (computed at one hospital).

    Parameters
    ----------
    X : array_like of shape (n, d)
        The hospital's raw features; converted to float64 (no copy when they are float64).
    y : array_like of shape (n,)
        Labels in {0, 1} (bool or integer). A hospital may hold a single class.
    theta : array_like of shape (d + fit_intercept,)
        Parameter vector :math:`(w, b)` broadcast by the aggregator (intercept last).
    fit_intercept : bool
        Whether ``theta`` ends with an intercept.
    hessian : {True, False, None, "full", "diag", "triangle", "triangle32", "residual32"}
        What curvature to return: ``True``/``"full"`` the full matrix
        :math:`\sum_i \sigma_i(1-\sigma_i)\tilde x_i\tilde x_i^\top` (what
        Newton needs, :attr:`FederatedSolver.curvature` ``"full"``), ``"diag"`` only the
        :math:`2p+1` weighted moments used by the L-BFGS preconditioner, ``False``/``None``
        nothing; ``"triangle"``, ``"triangle32"`` and ``"residual32"`` that matrix's upper
        triangle, packed (:func:`~pancreas_fl.exact.curvature.pack_upper`). Default True.
    mean, scale : array_like of shape (d,), optional
        A standardization (:func:`~pancreas_fl.exact.standardize`): the sums are then those
        of the standardized features :math:`(x - \mu) / s`, without a standardized copy of
        ``X``.

    Returns
    -------
    dict
        ``n`` (int), ``n_pos`` (int, number of ``y == 1``), ``loss`` (float,
        :math:`\sum_i \ell_i`, **not** multiplied by ``C``), ``grad`` (ndarray (p,),
        :math:`\sum_i (\sigma_i - y_i)\tilde x_i`) and ``hess``: the (p, p) ndarray for the
        full Hessian, ``None`` when no curvature was asked for, or for ``"diag"`` a dict
        ``{"s": float, "sx": (d,), "sxx": (d,)}`` with :math:`s = \sum_i v_i`,
        :math:`sx = \sum_i v_i x_i` and :math:`sxx = \sum_i v_i x_i^2` (elementwise),
        :math:`v_i = \sigma_i (1 - \sigma_i)`.
        Only these sums leave the hospital.

    Notes
    -----
    No temporary the size of the data is made. The intercept's column of ones, the
    standardized features and the curvature's products exist one block of rows at a time
    (:data:`BLOCK_BYTES` of design): up to one block the arithmetic is that of one product
    over all rows; beyond, the sums over rows are added block by block (the same sums,
    rounded differently). Without any of them (raw features, no intercept, no curvature) the
    products run over ``X`` itself, in one block.
    """
    X, yf, theta = _check_inputs(X, y, theta, fit_intercept=fit_intercept, hessian=hessian)
    scaler = _check_scaler(mean, scale, X.shape[1])
    (n, d), p = X.shape, theta.shape[0]
    full, diag, packed = hessian in (True, "full"), hessian == "diag", hessian in _PACKED
    materialized = fit_intercept or scaler is not None or full or diag or packed
    # X's own rows and no curvature: one block, nothing is copied
    rows = max(1, min(BLOCK_BYTES // (8 * p) if materialized else n, n))
    if packed:  # each block's product passes over the p x p sum once: fewer, taller blocks
        rows = max(rows, min(GRAM_ROWS, n))
    # reused from block to block: the design's rows (unless they are X's own), and the
    # curvature's products (weighted rows, or squared features)
    design = np.empty((rows, p)) if fit_intercept or scaler is not None else None
    work = np.empty((rows, p if full or packed else d)) if full or diag or packed else None
    z = np.empty(n)
    v = np.empty(n) if full or diag or packed else None
    grad = hess = sx = sxx = None
    for start in range(0, n, rows):
        Xd = design_rows(X[start : start + rows], design, fit_intercept, scaler)
        m = Xd.shape[0]
        zb = z[start : start + m]
        np.matmul(Xd, theta, out=zb)
        prob = sigmoid(zb)
        grad = _add(grad, Xd.T @ (prob - yf[start : start + m]))
        if v is None:
            continue
        # sigma(z) * sigma(-z) avoids the cancellation of 1 - sigma(z) when sigma(z) ~ 1.
        vb = np.multiply(prob, sigmoid(-zb), out=v[start : start + m])
        if full:
            hess = _add(hess, np.multiply(Xd, vb[:, None], out=work[:m]).T @ Xd)
        elif packed:
            hess = gram_of_weighted_rows(Xd, vb, work, hess)
        else:
            Xf = Xd[:, :-1] if fit_intercept else Xd
            sx = _add(sx, vb @ Xf)
            sxx = _add(sxx, vb @ np.multiply(Xf, Xf, out=work[:m]))
    out: dict[str, Any] = {
        "n": int(n),
        "n_pos": int(np.count_nonzero(yf)),
        "loss": float(np.sum(log_loss_terms(z, yf))),
        "grad": np.zeros(p) if grad is None else grad,
        "hess": None,
    }
    if full:
        out["hess"] = np.zeros((p, p)) if hess is None else hess
    elif packed:
        out["hess"] = pack_upper(np.zeros((p, p)) if hess is None else hess, hessian)
    elif diag:
        out["hess"] = {
            "s": float(np.sum(v)),
            "sx": np.zeros(d) if sx is None else sx,
            "sxx": np.zeros(d) if sxx is None else sxx,
        }
    return out


def _add(total: np.ndarray | None, part: np.ndarray) -> np.ndarray:
    """``total + part``; the first block's sums are taken as they are."""
    return part if total is None else total + part


def _check_scaler(mean: Any, scale: Any, d: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``(mean, scale)`` as float64 vectors of length ``d``, or ``None`` without them."""
    if mean is None and scale is None:
        return None
    if mean is None or scale is None:
        raise ValueError("'mean' and 'scale' must be given together.")
    mean = np.asarray(mean, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    if mean.shape != (d,) or scale.shape != (d,):
        raise ValueError(
            f"'mean' and 'scale' must have one entry per feature ({d}). Got shapes "
            f"{mean.shape} and {scale.shape} instead."
        )
    return mean, scale


def _check_inputs(
    X: Any, y: Any, theta: Any, *, fit_intercept: bool, hessian: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check and return the features, the labels as floats and ``theta`` as a vector."""
    if hessian not in _HESSIAN_MODES:
        raise ValueError(
            "'hessian' must be one of True, False, None, 'full' or 'diag'. "
            f"Got {hessian!r} instead."
        )
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-d array. Got an array with {X.ndim} dimension(s).")
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(
            f"y must be a 1-d array with one label per row of X ({X.shape[0]}). "
            f"Got shape {y.shape} instead."
        )
    yf = y.astype(np.float64)
    if not np.all((yf == 0.0) | (yf == 1.0)):
        raise ValueError("y must contain only the labels 0 and 1.")
    theta = np.asarray(theta, dtype=np.float64).reshape(-1)
    n_cols = X.shape[1] + fit_intercept
    if theta.shape[0] != n_cols:
        raise ValueError(
            f"theta has {theta.shape[0]} entries but the design has {n_cols} columns "
            f"(fit_intercept={fit_intercept})."
        )
    return X, yf, theta


def aggregate_terms(terms: list[dict[str, Any]], *, keep_packed: bool = False) -> dict[str, Any]:
    """Add the hospitals' :func:`local_terms` (done at the aggregator).

    Parameters
    ----------
    terms : list of dict
        One :func:`local_terms` result per hospital, all evaluated at the same ``theta`` with
        the same ``hessian`` mode.
    keep_packed : bool, default=False
        Return the sum of packed triangles packed, as a
        :class:`~pancreas_fl.exact.packed.PackedSymmetric` (half the memory; the exact
        strategy's aggregator unpacks it once, to solve).

    Returns
    -------
    dict
        Same keys as :func:`local_terms`; every value is the sum over hospitals
        (``hess`` stays ``None`` if any hospital sent none; packed triangles are summed in
        float64 and returned as the symmetric ``(p, p)`` matrix, or packed with
        ``keep_packed``). Sums are accumulated in the given order; the result does not
        depend on the order beyond floating-point rounding.
    """
    if not terms:
        raise ValueError("aggregate_terms needs the terms of at least one hospital.")
    out: dict[str, Any] = {
        "n": sum(int(t["n"]) for t in terms),
        "n_pos": sum(int(t["n_pos"]) for t in terms),
        "loss": float(sum(float(t["loss"]) for t in terms)),
        "grad": np.sum([np.asarray(t["grad"], dtype=np.float64) for t in terms], axis=0),
        "hess": None,
    }
    hess = [t.get("hess") for t in terms]
    if all(h is not None for h in hess):
        if all(is_packed(h) for h in hess):  # packed triangles: summed in float64
            total, p = add_packed(hess), out["grad"].shape[0]
            out["hess"] = PackedSymmetric(total, p) if keep_packed else unpack_upper(total, p)
        elif all(isinstance(h, dict) for h in hess):
            out["hess"] = {
                "s": float(sum(float(h["s"]) for h in hess)),
                "sx": np.sum([np.asarray(h["sx"], dtype=np.float64) for h in hess], axis=0),
                "sxx": np.sum([np.asarray(h["sxx"], dtype=np.float64) for h in hess], axis=0),
            }
        else:
            out["hess"] = np.sum([np.asarray(h, dtype=np.float64) for h in hess], axis=0)
    return out
