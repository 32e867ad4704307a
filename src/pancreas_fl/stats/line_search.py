r"""Armijo backtracking for the federated solver, one trial point per round.

In a pooled fit the line search evaluates :math:`\phi(t) = F(\theta + t d)` for a few
:math:`t` inside one iteration. Federated, every evaluation is a round: the aggregator
broadcasts the trial point :math:`\theta + t d`, the hospitals return their sums at it, and
:class:`ArmijoLineSearch` decides whether to take it.

Acceptance
----------
A trial step :math:`t` along the descent direction :math:`d` (:math:`\nabla F^\top d < 0`) is
accepted when either holds:

.. math::

    \phi(t) \le \phi(0) + c_1 t \phi'(0)
    \qquad\text{or}\qquad
    \phi'(t) \le c_1 \phi'(0),
    \qquad c_1 = 10^{-4}.

The first is Armijo's sufficient-decrease test. The second is its gradient form: :math:`F` is
convex along the line, so :math:`\phi(t) - \phi(0) \le t\phi'(t) \le c_1 t \phi'(0)`, which
implies Armijo in exact arithmetic. It stays decisive where the decrease of :math:`F` is below
the floating-point resolution of :math:`F` (near the optimum, met by L-BFGS in its last
rounds), where the value test is noise.

Backtracking
------------
A rejected step :math:`t` is replaced by one in :math:`[t/10, t/2]` (at least halved), the
minimiser of the cubic that interpolates :math:`\phi(0), \phi'(0), \phi(t), \phi'(t)`
(Nocedal & Wright, *Numerical Optimization*, 2nd ed., eq. 3.59), clipped to that interval;
plain halving when the trial's values are not finite. Below :data:`MIN_STEP` the search gives
up: no step lowers :math:`F` at floating-point resolution.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["ARMIJO_C1", "MIN_STEP", "ArmijoLineSearch"]

#: Sufficient-decrease constant :math:`c_1` of the Armijo test.
ARMIJO_C1 = 1e-4
#: Smallest trial step before the line search gives up.
MIN_STEP = 2.0**-40


class ArmijoLineSearch:
    r"""The line search from the last accepted point :math:`\theta` along :math:`d`.

    Attributes
    ----------
    f0 : float
        :math:`\phi(0) = F(\theta)`, the objective at the accepted point.
    direction : numpy.ndarray or None
        The search direction :math:`d` (``None`` before the first accepted point).
    gtd : float
        :math:`\phi'(0) = \nabla F(\theta)^\top d` (negative for a descent direction).
    t : float
        The step of the current trial point :math:`\theta + t d` (1 = full step).
    """

    def __init__(self) -> None:
        self.f0 = math.inf
        self.direction: np.ndarray | None = None
        self.gtd = 0.0
        self.t = 1.0

    def start(self, f0: float, direction: np.ndarray, gtd: float) -> None:
        r"""Begin a new search from an accepted point: full step :math:`t = 1` first."""
        self.f0, self.direction, self.gtd, self.t = f0, direction, gtd, 1.0

    def trial_point(self, theta: np.ndarray) -> np.ndarray:
        r""":math:`\theta + t d`: the point the hospitals evaluate next."""
        return theta + self.t * self.direction

    def accepts(self, f_t: float, g_t: np.ndarray, *, finite: bool) -> bool:
        r"""Whether the trial point passes the Armijo test or its gradient form.

        Parameters
        ----------
        f_t : float
            :math:`\phi(t) = F(\theta + t d)`.
        g_t : numpy.ndarray
            :math:`\nabla F(\theta + t d)`; :math:`\phi'(t) = \nabla F(\theta + t d)^\top d`.
        finite : bool
            Whether ``f_t`` and ``g_t`` are finite (a non-finite trial is never accepted).
        """
        armijo = f_t <= self.f0 + ARMIJO_C1 * self.t * self.gtd
        dphi = float(g_t @ self.direction)
        return finite and (armijo or dphi <= ARMIJO_C1 * self.gtd)

    def backtrack(self, f_t: float, g_t: np.ndarray | None) -> bool:
        r"""Shrink :math:`t` after a rejected trial; ``False`` once it is below MIN_STEP.

        Safeguarded cubic interpolation of :math:`\phi` from :math:`\phi(0), \phi'(0),
        \phi(t), \phi'(t)`, clipped to :math:`[0.1 t, 0.5 t]`; plain halving when ``g_t`` is
        ``None`` (a non-finite trial) or ``f_t`` is not finite.
        """
        self.t = self._cubic_step(f_t, g_t)
        return self.t >= MIN_STEP

    def _cubic_step(self, f_t: float, g_t: np.ndarray | None) -> float:
        t = self.t
        if g_t is None or not math.isfinite(f_t):
            return 0.5 * t
        f0, d0 = self.f0, self.gtd
        dt = float(g_t @ self.direction)
        d1 = d0 + dt - 3.0 * (f0 - f_t) / (0.0 - t)
        disc = d1 * d1 - d0 * dt
        if disc >= 0.0:
            d2 = math.sqrt(disc)
            denom = dt - d0 + 2.0 * d2
            t_new = t - t * (dt + d2 - d1) / denom if denom != 0.0 else 0.5 * t
        else:
            curv = f_t - f0 - d0 * t
            t_new = -d0 * t * t / (2.0 * curv) if curv > 0.0 else 0.5 * t
        if not math.isfinite(t_new):
            t_new = 0.5 * t
        return min(max(t_new, 0.1 * t), 0.5 * t)
