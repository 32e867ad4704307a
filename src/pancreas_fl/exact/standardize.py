r"""Federated feature standardization (equal to ``StandardScaler`` on the pooled data).

Each hospital sends :func:`local_moments` (count, mean and sum of squared deviations of every
feature); the aggregator combines them exactly with the parallel formula of Chan, Golub and
LeVeque (1979):

.. math::

    n = n_a + n_b,\quad \delta = \bar x_b - \bar x_a,\quad
    \bar x = \bar x_a + \delta\, n_b / n,\quad
    M_2 = M_{2,a} + M_{2,b} + \delta^2\, n_a n_b / n,

which avoids the cancellation of :math:`\sum x^2 - n \bar x^2` for uncentred features
(log2 expression around 2-14). The variance is the population variance
:math:`M_2 / n` (``ddof=0``) and ``scale = sqrt(var)``, replaced by 1 where the variance is
(numerically) zero, as in scikit-learn.

A model fit on standardized features :math:`u = (x - \mu) / s` has
:math:`z = w^\top u + b = (w / s)^\top x + (b - \sum_j w_j \mu_j / s_j)`, so in raw
feature space :math:`\theta_{raw} = J \theta_{std}` with the linear map :math:`J`
(:func:`raw_space_jacobian`) and :math:`\operatorname{Cov}(\theta_{raw}) = J \Sigma J^\top`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pancreas_fl.logistic import BLOCK_BYTES

__all__ = [
    "combine_moments",
    "local_moments",
    "raw_space_jacobian",
    "scale_from_var",
    "standardize",
    "to_raw_space",
]


def local_moments(X: Any) -> dict[str, Any]:
    r"""Per-hospital moments of every feature (only these leave the hospital).

    Parameters
    ----------
    X : array_like of shape (n, d)

    Returns
    -------
    dict
        ``n`` (int), ``mean`` (ndarray (d,)) and ``m2`` (ndarray (d,),
        :math:`\sum_i (x_{ij} - \bar x_j)^2`, computed two-pass from the local mean).
        An empty hospital gives ``n = 0`` and zero arrays.

    Notes
    -----
    The deviations from the mean exist one block of rows at a time
    (:data:`~pancreas_fl.exact.sums.BLOCK_BYTES`), never for all patients at once; up to
    one block the arithmetic is that of one pass over all rows.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-d array. Got an array with {X.ndim} dimension(s).")
    n, d = X.shape
    if n == 0:
        return {"n": 0, "mean": np.zeros(d), "m2": np.zeros(d)}
    rows = max(1, BLOCK_BYTES // (8 * max(d, 1)))
    mean = X.mean(axis=0)
    # Second pass correction (Bjorck): removes the rounding error left in `mean`.
    mean = mean + _blockwise(lambda dev: np.add.reduce(dev, axis=0), X, mean, rows) / n
    m2 = _blockwise(lambda dev: np.einsum("ij,ij->j", dev, dev), X, mean, rows)
    return {"n": int(n), "mean": mean, "m2": m2}


def _blockwise(reduce, X: np.ndarray, mean: np.ndarray, rows: int) -> np.ndarray:
    """Sum ``reduce(X[block] - mean)`` over blocks of rows."""
    total = None
    for start in range(0, X.shape[0], rows):
        part = reduce(X[start : start + rows] - mean)
        total = part if total is None else total + part
    return total


def combine_moments(moments: list[dict[str, Any]]) -> tuple[int, np.ndarray, np.ndarray]:
    """Combine the hospitals' :func:`local_moments` (Chan et al. parallel algorithm).

    Parameters
    ----------
    moments : list of dict
        One :func:`local_moments` result per hospital.

    Returns
    -------
    n : int
        Pooled number of patients.
    mean : numpy.ndarray of shape (d,)
        Pooled mean (``StandardScaler().mean_``).
    var : numpy.ndarray of shape (d,)
        Pooled population variance :math:`M_2 / n` (``StandardScaler().var_``).
    """
    if not moments:
        raise ValueError("combine_moments needs the moments of at least one hospital.")
    n = 0
    mean = None
    m2 = None
    for mom in moments:
        nb = int(mom["n"])
        if nb == 0:
            continue
        mb = np.asarray(mom["mean"], dtype=np.float64)
        m2b = np.asarray(mom["m2"], dtype=np.float64)
        if mean is None:
            n, mean, m2 = nb, mb.copy(), m2b.copy()
            continue
        tot = n + nb
        delta = mb - mean
        mean = mean + delta * (nb / tot)
        m2 = m2 + m2b + delta * delta * (n * nb / tot)
        n = tot
    if mean is None:
        raise ValueError("combine_moments: every hospital is empty (n = 0).")
    return n, mean, m2 / n


def scale_from_var(var: Any, mean: Any = None, n: int | None = None) -> np.ndarray:
    r"""``sqrt(var)`` with scikit-learn's treatment of (near-)constant features (scale 1).

    Parameters
    ----------
    var : array_like of shape (d,)
    mean : array_like of shape (d,), optional
        With ``n``, scikit-learn's test of a constant feature is used (the error bound of the
        two-pass variance, ``sklearn.preprocessing._data._is_constant_feature``):
        :math:`\mathrm{var} \le n \epsilon\, \mathrm{var} + (n \bar x \epsilon)^2`.
        Otherwise a scale below :math:`10\epsilon` counts as zero.
    n : int, optional

    Returns
    -------
    numpy.ndarray of shape (d,)
    """
    var = np.asarray(var, dtype=np.float64)
    scale = np.sqrt(var)
    eps = np.finfo(np.float64).eps
    if mean is not None and n is not None:
        mean = np.asarray(mean, dtype=np.float64)
        upper = n * eps * var + (n * mean * eps) ** 2
        constant = var <= upper
    else:
        constant = var < 10 * eps
    constant = constant | (scale < 10 * eps)
    return np.where(constant, 1.0, scale)


def standardize(X: Any, mean: Any, scale: Any) -> np.ndarray:
    r""":math:`(X - \mu) / s` (columnwise).

    Parameters
    ----------
    X : array_like of shape (n, d)
    mean, scale : array_like of shape (d,)

    Returns
    -------
    numpy.ndarray of shape (n, d)
    """
    return (np.asarray(X, dtype=np.float64) - np.asarray(mean, dtype=np.float64)) / np.asarray(
        scale, dtype=np.float64
    )


def raw_space_jacobian(mean: Any, scale: Any) -> np.ndarray:
    r"""Return the linear map :math:`J` with :math:`(w_{raw}, b_{raw}) = J (w, b)`.

    .. math::

        J = \begin{pmatrix} \operatorname{diag}(1/s) & 0 \\ -(\mu / s)^\top & 1
            \end{pmatrix} \in \mathbb{R}^{(d+1)\times(d+1)}.

    Parameters
    ----------
    mean, scale : array_like of shape (d,)

    Returns
    -------
    numpy.ndarray of shape (d + 1, d + 1)
        Use ``J[:, :d]`` for a model without intercept (then :math:`b = 0`, but a raw
        intercept :math:`-\sum_j w_j \mu_j / s_j` still exists). Covariances transform as
        :math:`J \Sigma J^\top` (exact, since the map is linear).
    """
    mean = np.asarray(mean, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    d = mean.shape[0]
    J = np.zeros((d + 1, d + 1))
    J[np.arange(d), np.arange(d)] = 1.0 / scale
    J[d, :d] = -mean / scale
    J[d, d] = 1.0
    return J


def to_raw_space(
    coef: Any, intercept: Any, mean: Any, scale: Any, cov: Any = None
) -> tuple[np.ndarray, float] | tuple[np.ndarray, float, np.ndarray]:
    r"""Express a model fit on standardized features in raw feature space.

    Parameters
    ----------
    coef : array_like of shape (d,)
        :math:`w` on standardized features.
    intercept : float or None
        :math:`b` (``None`` or 0 when the model has no intercept).
    mean, scale : array_like of shape (d,)
        The pooled standardization (:func:`combine_moments`, :func:`scale_from_var`).
    cov : array_like of shape (d, d) or (d + 1, d + 1), optional
        Covariance of :math:`w` (no intercept) or of :math:`(w, b)`.

    Returns
    -------
    coef_raw : numpy.ndarray of shape (d,)
        :math:`w / s`.
    intercept_raw : float
        :math:`b - \sum_j w_j \mu_j / s_j`.
    cov_raw : numpy.ndarray of shape (d + 1, d + 1)
        Only if ``cov`` is given: :math:`J \Sigma J^\top` of :math:`(w_{raw}, b_{raw})`
        (with the map restricted to :math:`w` when there is no intercept).
    """
    coef = np.asarray(coef, dtype=np.float64).reshape(-1)
    b = 0.0 if intercept is None else float(np.asarray(intercept, dtype=np.float64).reshape(-1)[0])
    J = raw_space_jacobian(mean, scale)
    d = coef.shape[0]
    raw = J @ np.append(coef, b)
    if cov is None:
        return raw[:d], float(raw[d])
    cov = np.asarray(cov, dtype=np.float64)
    Jc = J if cov.shape[0] == d + 1 else J[:, :d]
    return raw[:d], float(raw[d]), Jc @ cov @ Jc.T
