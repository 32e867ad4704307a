r"""The pieces of the federated L-BFGS: correction memory, two-loop recursion, preconditioner.

With many parameters the hospitals do not send a :math:`p \times p` Hessian. They send the
gradient and :math:`2p + 1` weighted moments of their features,

.. math::

    s = \sum_i v_i, \qquad sx = \sum_i v_i x_i, \qquad sxx = \sum_i v_i x_i^2
    \quad (\text{elementwise}), \qquad v_i = \sigma_i (1 - \sigma_i),

from which the aggregator builds :class:`CentredDiagonal`, an O(p) approximation :math:`M` of
the Hessian of :math:`F`. The L-BFGS two-loop recursion (:meth:`LBFGSMemory.direction`) starts
from :math:`H_0 = M^{-1}` (Nocedal & Wright, *Numerical Optimization*, 2nd ed., Algorithm 7.4).
:math:`M` is exact for uncorrelated features and removes the ill-conditioning that an intercept
and uncentred features (log2 expression around 2-14) cause.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["CentredDiagonal", "LBFGSMemory"]


class CentredDiagonal:
    r"""Apply :math:`M^{-1}`, the centred-diagonal approximation of the inverse Hessian.

    With weighted means :math:`m = sx / s` and centred weighted variances
    :math:`c_j = \sum_i v_i (x_{ij} - m_j)^2 = sxx_j - sx_j m_j`, the loss Hessian is
    :math:`\sum_i v_i \tilde x_i \tilde x_i^\top`. Dropping its centred off-diagonal terms
    gives, with an intercept, the block-diagonal matrix
    :math:`\operatorname{diag}(C c + \text{pen}, C s)` in the centred parametrisation
    :math:`(w, b + m^\top w)`, and without one
    :math:`\operatorname{diag}(C c + \text{pen}) + C s\, m m^\top` (inverted by
    Sherman-Morrison). Both cost O(p) per application.

    Parameters
    ----------
    moments : dict
        The pooled ``{"s": float, "sx": (d,), "sxx": (d,)}`` of
        :func:`~pancreas_fl.stats.logistic.local_terms` with ``hessian="diag"``.
    C : float
        The factor of the loss sum in :math:`F` (1 without a penalty).
    penalty_diag : numpy.ndarray of shape (p,)
        The diagonal of the penalty's Hessian (0 for the intercept).
    fit_intercept : bool
    """

    def __init__(
        self, moments: dict[str, Any], *, C: float, penalty_diag: np.ndarray, fit_intercept: bool
    ) -> None:
        self.C = C
        self.fit_intercept = fit_intercept
        self.s = max(float(moments["s"]), 1e-300)
        sx = np.asarray(moments["sx"], dtype=np.float64)
        sxx = np.asarray(moments["sxx"], dtype=np.float64)
        self.m = sx / self.s
        cent = np.maximum(sxx - sx * self.m, 1e-10 * np.maximum(sxx, 1e-300))
        pen_w = penalty_diag[:-1] if fit_intercept else penalty_diag
        dw = C * cent + pen_w
        self.dw = np.maximum(dw, 1e-12 * max(float(np.max(dw)), 1e-300))

    def __call__(self, v: np.ndarray) -> np.ndarray:
        r""":math:`M^{-1} v`."""
        C, s, m, dw = self.C, self.s, self.m, self.dw
        if self.fit_intercept:
            vw, vb = v[:-1], v[-1]
            uw = vw - m * vb
            rw = uw / dw
            rc = vb / (C * s)
            return np.concatenate([rw, [rc - float(m @ rw)]])
        u = math.sqrt(C * s) * m
        dinv_v = v / dw
        dinv_u = u / dw
        return dinv_v - dinv_u * (float(u @ dinv_v) / (1.0 + float(u @ dinv_u)))


class LBFGSMemory:
    r"""The last ``memory`` correction pairs :math:`(s_k, y_k)` and the two-loop recursion.

    :math:`s_k = \theta_{k+1} - \theta_k` and :math:`y_k = \nabla F_{k+1} - \nabla F_k` between
    successive accepted points.

    Parameters
    ----------
    memory : int
        Number of pairs kept (the oldest is dropped first).
    """

    def __init__(self, memory: int) -> None:
        self.memory = memory
        self.s: list[np.ndarray] = []
        self.y: list[np.ndarray] = []

    def add(self, s: np.ndarray, y: np.ndarray) -> None:
        r"""Keep the pair if it has positive curvature, :math:`s^\top y > 10^{-10}\|s\|\|y\|`.

        :math:`F` is convex, so :math:`s^\top y \ge 0`; the test skips pairs whose curvature
        is lost in rounding, which would make the update ill-defined.
        """
        sy = float(s @ y)
        if sy > 1e-10 * float(np.sqrt((s @ s) * (y @ y))):
            self.s.append(s)
            self.y.append(y)
            if len(self.s) > self.memory:
                self.s.pop(0)
                self.y.pop(0)

    def clear(self) -> None:
        """Forget every pair (restart from the initial inverse Hessian)."""
        self.s.clear()
        self.y.clear()

    def direction(
        self, g: np.ndarray, precondition: Callable[[np.ndarray], np.ndarray] | None
    ) -> np.ndarray:
        r"""Compute the quasi-Newton direction :math:`d = -H_k \nabla F` (two-loop recursion).

        The initial inverse Hessian :math:`H_0` is ``precondition`` (:math:`M^{-1}`), scaled by
        :math:`s^\top y / y^\top M^{-1} y` of the newest pair (Shanno-Phua scaling in the
        metric of :math:`M`). Without a preconditioner it is the scaled identity
        :math:`(s^\top y / y^\top y) I`, and before the first pair :math:`I / \max(1,
        \lVert g \rVert_\infty)`.
        """
        q = g.copy()
        alphas = []
        rhos = []
        for s, y in zip(reversed(self.s), reversed(self.y), strict=True):
            rho = 1.0 / float(y @ s)
            a = rho * float(s @ q)
            q -= a * y
            alphas.append(a)
            rhos.append(rho)
        r = self._initial_inverse_hessian(q, precondition)
        pairs = zip(self.s, self.y, reversed(alphas), reversed(rhos), strict=True)
        for s, y, a, rho in pairs:
            b = rho * float(y @ r)
            r += (a - b) * s
        return -r

    def _initial_inverse_hessian(
        self, q: np.ndarray, precondition: Callable[[np.ndarray], np.ndarray] | None
    ) -> np.ndarray:
        r""":math:`H_0 q` (see :meth:`direction`)."""
        # y' M^-1 y and y' y are positive in exact arithmetic; they underflow to 0 only when
        # y does (separable data without a penalty, far out): then H_0 stays unscaled.
        if precondition is not None:
            r = precondition(q)
            if self.s:
                s, y = self.s[-1], self.y[-1]
                y_my = float(y @ precondition(y))
                if y_my > 0.0:
                    r *= float(s @ y) / y_my
            return r
        if self.s:
            s, y = self.s[-1], self.y[-1]
            yy = float(y @ y)
            if yy > 0.0:
                return q * (float(s @ y) / yy)
        return q / max(float(np.max(np.abs(q))), 1.0)
