r"""The Newton direction of the federated solver: solve :math:`\nabla^2 F\, d = -\nabla F`.

For the logit link Newton's method and Fisher scoring coincide. The pooled Hessian
:math:`\nabla^2 F = C \sum_k H_k + P` is positive semi-definite; it is singular, or
numerically so, for separable data, a hospital with a single class or ``penalty=None`` with
collinear features. The system is therefore solved by a Jacobi-scaled Cholesky factorisation
(:math:`D^{-1/2} \nabla^2 F D^{-1/2}`, :math:`D = \operatorname{diag}\nabla^2 F`) with an
increasing ridge :math:`\lambda I` (:math:`10^{-12}` up to :math:`10^{-2}`) as fallback, and a
least-squares solve as the last resort.
"""

from __future__ import annotations

import numpy as np

__all__ = ["newton_direction"]

_RIDGE_TRIES = 12


def newton_direction(g: np.ndarray, H: np.ndarray) -> np.ndarray:
    r"""Solve :math:`H d = -g` for a symmetric positive semi-definite :math:`H`.

    Parameters
    ----------
    g : numpy.ndarray of shape (p,)
        The gradient :math:`\nabla F`.
    H : numpy.ndarray of shape (p, p)
        The Hessian :math:`\nabla^2 F` (penalty included).

    Returns
    -------
    numpy.ndarray of shape (p,)
        The Newton direction :math:`d`.
    """
    diag = np.diag(H).copy()
    scale = np.sqrt(np.where(diag > 0, diag, 1.0))
    Hs = H / scale[:, None] / scale[None, :]
    Hs = 0.5 * (Hs + Hs.T)
    gs = g / scale
    ridge = 0.0
    for _ in range(_RIDGE_TRIES):
        try:
            L = np.linalg.cholesky(Hs + ridge * np.eye(len(g)) if ridge else Hs)
        except np.linalg.LinAlgError:
            ridge = 1e-12 if ridge == 0.0 else ridge * 10.0
            continue
        u = np.linalg.solve(L.T, np.linalg.solve(L, -gs))
        if np.all(np.isfinite(u)):
            return u / scale
        ridge = 1e-12 if ridge == 0.0 else ridge * 10.0
    u = np.linalg.lstsq(Hs, -gs, rcond=None)[0]
    return u / scale
