r"""Jacobi-scaled Cholesky with a ridge fallback, and the triangular algebra numpy lacks.

The aggregator keeps two factors across rounds: Newton's last Hessian while the chord method
reuses it (:mod:`~pancreas_fl.exact.reuse`) and Böhning's bound, factorized once
(:mod:`~pancreas_fl.exact.bohning`). Both are factorized as
:func:`~pancreas_fl.exact.solver.newton_direction` factorizes a Newton step's Hessian:
scaled to a unit diagonal (:math:`D^{-1/2} H D^{-1/2}`, :math:`D = \operatorname{diag} H`),
then Cholesky, with an increasing ridge :math:`\lambda I` (:math:`10^{-12}` up to
:math:`10^{-1}`) should the matrix be singular (collinear features without a penalty).
numpy factorizes, but has neither a triangular solve nor a triangular inverse: both are here,
block by block, in dense solves and matrix products (BLAS).
"""

from __future__ import annotations

import numpy as np

__all__ = ["RIDGE_TRIES", "lower_inverse", "scaled_cholesky", "solve_lower", "solve_upper"]

#: Ridges tried, from none: 0, 1e-12, 1e-11, ..., 1e-2 (newton_direction's sequence).
RIDGE_TRIES = 12
#: Rows per block of the triangular solves: small dense solves, the rest matrix-vector products.
_BLOCK = 64
#: Below this order a triangular inverse is one ``numpy.linalg.inv``.
_DIRECT = 256


def scaled_cholesky(H: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, float]:
    r"""Scale ``H`` in place to a unit diagonal, then factorize it, ridged if need be.

    Parameters
    ----------
    H : numpy.ndarray of shape (p, p)
        Symmetric positive semi-definite (only its lower triangle is read by the factor);
        overwritten by the scaled matrix.

    Returns
    -------
    scale : numpy.ndarray of shape (p,)
        :math:`\sqrt{H_{jj}}` (1 where the diagonal is not positive).
    L : numpy.ndarray of shape (p, p) or None
        The lower Cholesky factor of the scaled ``H`` plus the ridge; ``None`` when no ridge
        of the sequence gives a finite factor (``H`` then holds the scaled matrix, for a
        least-squares solve).
    ridge : float
        The ridge of the factor (0 for a definite matrix).
    """
    diag = np.diag(H).copy()
    scale = np.sqrt(np.where(diag > 0, diag, 1.0))
    H /= scale[:, None]
    H /= scale[None, :]
    ridge = 0.0
    for _ in range(RIDGE_TRIES):
        try:
            L = np.linalg.cholesky(H + ridge * np.eye(len(diag)) if ridge else H)
        except np.linalg.LinAlgError:
            L = None
        if L is not None and np.all(np.isfinite(L)):
            return scale, L, ridge
        ridge = 1e-12 if ridge == 0.0 else ridge * 10.0
    return scale, None, ridge


def solve_lower(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve ``L x = b`` for a lower triangular ``L``, block by block."""
    x = b.copy()
    n = len(x)
    for i in range(0, n, _BLOCK):
        j = min(i + _BLOCK, n)
        x[i:j] = np.linalg.solve(L[i:j, i:j], x[i:j])
        x[j:] -= L[j:, i:j] @ x[i:j]
    return x


def solve_upper(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve ``L^T x = b`` for a lower triangular ``L``, block by block, from the last."""
    x = b.copy()
    n = len(x)
    for i in reversed(range(0, n, _BLOCK)):
        j = min(i + _BLOCK, n)
        x[i:j] = np.linalg.solve(L[i:j, i:j].T, x[i:j])
        x[:i] -= L[i:j, :i].T @ x[i:j]
    return x


def lower_inverse(L: np.ndarray) -> np.ndarray:
    r"""Return :math:`L^{-1}` for a lower-triangular :math:`L`, by halves (matrix products).

    :math:`\begin{pmatrix} A & 0 \\ C & D \end{pmatrix}^{-1} = \begin{pmatrix} A^{-1} & 0 \\
    -D^{-1} C A^{-1} & D^{-1} \end{pmatrix}`: :math:`p^3/3` flops, in BLAS-3 products (a
    general inverse costs six times as many).
    """
    p = L.shape[0]
    if p <= _DIRECT:
        return np.tril(np.linalg.inv(L))
    h = p // 2
    out = np.zeros_like(L)
    out[:h, :h] = lower_inverse(L[:h, :h])
    out[h:, h:] = lower_inverse(L[h:, h:])
    out[h:, :h] = -(out[h:, h:] @ (L[h:, :h] @ out[:h, :h]))
    return out
