r"""Newton's curvature kept across rounds while the steps converge fast: the chord method.

On wide panels a Newton round's price is its curvature: :math:`O(n p^2)` flops at each
hospital, :math:`p (p + 1) / 2` numbers per hospital to send, and a factorization at the
aggregator. The fixed point depends only on the gradient sums; the Hessian only shapes the
step. So once Newton converges fast, the aggregator keeps the last Hessian, factorized once,
and asks the next rounds for the gradient alone (the hospitals skip the Hessian, the message
shrinks to :math:`O(p)`): the *chord* (simplified Newton) method, and with fresh curvature every
few steps Shamanskii's method (V. E. Shamanskii, "A modification of Newton's method",
Ukrainian Math. J. 19, 1967; C. T. Kelley, *Iterative Methods for Linear and Nonlinear
Equations*, SIAM 1995, ch. 5, and *Solving Nonlinear Equations with Newton's Method*, SIAM
2003, ch. 2; P. Deuflhard, *Newton Methods for Nonlinear Problems*, Springer 2004, ch. 2,
the simplified Newton method). A step from the kept Hessian
:math:`H_j` converges linearly, :math:`e_{k+1} \approx \lVert H_j^{-1}(H_j - H_*)\rVert e_k`,
at a rate proportional to the distance of :math:`\theta_j` from the optimum: fast once Newton
itself is fast, slow (and worth a fresh Hessian) before.

The rule
--------
Kelley's solvers (``nsold``) refresh the Jacobian when the residual falls by less than a factor
``rsham = 0.5``; Deuflhard measures the contraction affine-invariantly, as the ratio of
successive corrections :math:`\Theta_k = \lVert d_k\rVert / \lVert d_{k-1}\rVert`. A
federated round costs about 1.1 s of polling, so here a chord step must not cost a round: at a
rate of 0.5 the 1e-8 tolerance would take dozens. After each accepted point :math:`\theta_k`
the aggregator has :math:`\Theta_k` (the steps the solver proposes, each from the curvature it
had) and predicts the steps to come: after a Newton step the ratio squares (quadratic
convergence, :math:`e_{k+1} = c\, e_k^2`), after a chord step it stays. It asks the next
point for the gradient alone only when all of these hold, else for fresh curvature:

1. :math:`\Theta_k \le` :data:`CONTRACTION_MAX` (0.1; the start point and a rejected trial
   point, where the line search backtracks, always bring fresh curvature): Newton is in its
   fast, local phase. Measured on the wide benchmark, Newton's own ratios run 0.8, 1.5, 0.7,
   0.2, 0.04, 1e-3: reuse can only pay in the last rounds;
2. the next point's step is predicted above the tolerance (otherwise the next point is probably
   the estimate, whose Hessian the GLM statistics need at full precision anyway: asked for at
   once, it costs no extra round, and the last convergence test uses a fresh Newton step, as
   without reuse);
3. a chord step from the next point does not land in :math:`(0.1, 1]` times the tolerance: a
   chord step into the estimate leaves it about as far from the optimum as its own next step,
   a Newton step far closer, so the estimate stays within a tenth of ``tol`` of the optimum
   (within 1e-8 of the pooled fit at the default ``tol``);
4. the chord steps are predicted to reach the tolerance in no more rounds than Newton's:
   keeping the Hessian saves the hospitals' curvature and costs no round.

Convergence, the line search and the certificate (:func:`~pancreas_fl.exact.wire.certify`,
which uses no curvature) are those of Newton, unchanged. Should the fit stop at a point
evaluated without curvature (a prediction missed), the aggregator asks for the Hessian there
in one more round (with the float32 triangle, then its residual, as without reuse).

When
----
Only for the packed encodings (``"triangle"``, ``"triangle32"`` of
:func:`~pancreas_fl.exact.curvature.plan_curvature`): narrow data (the dense ``"full"``
matrix, p <= 362) keep their rounds and results bit for bit. Not with Firth's penalty, whose
every step needs the curvature. The parameter ``reuse_curvature`` (``"auto"``, ``"on"``,
``"off"``) decides; ``"auto"`` reuses from :data:`REUSE_MIN_PARAMS` parameters, where one
hospital's Hessian (0.5 to 1 s and 25 MB at p = 2,500, ``benchmarks/wide.py``) costs about a
polling round, so that the round a missed prediction may cost is paid for. Measured there
(README, *Wide gene panels*): one Hessian round of eight saved at p = 2,500, none at 1,100 and
5,000, in the same rounds: Newton's quadratic phase is its last two or three rounds.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from pancreas_fl.exact.cholesky import scaled_cholesky, solve_lower, solve_upper

__all__ = [
    "CONTRACTION_MAX",
    "REUSE_MIN_PARAMS",
    "ChordRule",
    "needs_curvature",
    "reuses_curvature",
]

#: Fresh curvature when a step shrinks by less than this factor (see the module docstring).
CONTRACTION_MAX = 0.1
#: ``reuse_curvature="auto"`` keeps the Hessian from this many parameters on (measured).
REUSE_MIN_PARAMS = 2000
#: The encodings whose curvature may be kept: the packed triangles (never the dense matrix).
REUSABLE = ("triangle", "triangle32")
_MAX_PREDICTED = 100


def reuses_curvature(n_params: int, encoding: str, setting: str, *, firth: bool = False) -> bool:
    """Whether the aggregator may ask for the gradient alone in some rounds.

    Both sides evaluate it from the shared parameters (the hospitals to accept a broadcast
    that asks for no curvature).

    Parameters
    ----------
    n_params : int
    encoding : str
        The plan's curvature encoding (:func:`~pancreas_fl.exact.curvature.plan_curvature`).
    setting : {"auto", "on", "off"}
        The ``reuse_curvature`` parameter.
    firth : bool, default=False
        ``penalty="firth"``: never (every step needs the curvature).
    """
    if firth or encoding not in REUSABLE or setting == "off":
        return False
    return setting == "on" or n_params >= REUSE_MIN_PARAMS


class ChordRule:
    r"""The kept Hessian's factorization, and whether the next point needs fresh curvature.

    Attributes
    ----------
    asks : bool
        Whether the point evaluated next carries curvature (``True`` until the rule says
        otherwise; see the module docstring).
    fresh_at : numpy.ndarray or None
        The point of the last fresh Hessian (the solver's ``hess_loglik``).
    hessian_rounds : int
        Rounds whose sums carried curvature.
    """

    def __init__(self) -> None:
        self.asks = True
        self.fresh_at: np.ndarray | None = None
        self.hessian_rounds = 0
        self._previous_step: float | None = None
        self._factor: tuple[np.ndarray, np.ndarray, bool] | None = None

    def fresh(self, theta: np.ndarray) -> None:
        """Keep the fresh Hessian that arrived at the accepted point ``theta``: a new factor."""
        self.fresh_at = theta.copy()
        self._factor = None

    def release(self) -> None:
        """Drop the kept factor: fresh curvature arrived, or the fit is done (never used again)."""
        self._factor = None

    def fresh_at_point(self, theta: np.ndarray) -> bool:
        """Whether the kept Hessian was evaluated at ``theta`` (the statistics need that)."""
        return self.fresh_at is not None and np.array_equal(self.fresh_at, theta)

    def direction(self, g: np.ndarray, penalized: Callable[[], np.ndarray]) -> np.ndarray:
        r"""Return the chord step :math:`d = -H_j^{-1} \nabla F` with the kept Hessian.

        The first chord step factorizes :math:`H_j` (``penalized()``, the penalized Hessian
        :math:`\nabla^2 F` of the last fresh curvature: a new matrix, which is scaled in
        place) as :func:`~pancreas_fl.exact.solver.newton_direction` does with ``overwrite``:
        Jacobi-scaled Cholesky, with the same ridge fallback. The factor is kept, the one
        ``p x p`` matrix of the rule: every chord step then costs two triangular solves,
        :math:`O(p^2)`, against the :math:`O(p^3)` of a fresh step.
        """
        if self._factor is None:
            H = penalized()
            scale, L, _ = scaled_cholesky(H)  # H becomes the scaled matrix
            self._factor = (scale, H if L is None else L, L is not None)
        scale, L, factored = self._factor
        gs = g / scale
        if not factored:  # no ridge made it definite: least squares, as newton_direction
            return -np.linalg.lstsq(L, gs, rcond=None)[0] / scale
        return -solve_upper(L, solve_lower(L, gs)) / scale

    def plan(self, *, accepted: bool, fresh: bool, step_norm: float, bound: float) -> None:
        r"""Decide whether the next point asks for curvature (after each round).

        Parameters
        ----------
        accepted : bool
            Whether the evaluated point was accepted.
        fresh : bool
            Whether its sums carried curvature.
        step_norm : float
            :math:`\lVert d_k\rVert`, the step proposed from the accepted point.
        bound : float
            :math:`\mathrm{tol} \lVert\theta_k\rVert`, the convergence test's bound.
        """
        self.hessian_rounds += fresh
        if not accepted:  # the line search backtracks: fresh curvature at the shorter step
            self.asks = True
            return
        previous, self._previous_step = self._previous_step, step_norm
        self.asks = previous is None or needs_curvature(
            step_norm / previous if previous > 0.0 else math.inf,
            step_norm,
            bound,
            fresh=fresh,
        )


def needs_curvature(ratio: float, step: float, bound: float, *, fresh: bool) -> bool:
    r"""Whether the next point asks for fresh curvature (rules 1-4 of the module docstring).

    Parameters
    ----------
    ratio : float
        :math:`\Theta_k = \lVert d_k\rVert / \lVert d_{k-1}\rVert`.
    step : float
        :math:`\lVert d_k\rVert`.
    bound : float
        :math:`\mathrm{tol} \lVert\theta_k\rVert`.
    fresh : bool
        Whether :math:`d_k` is a Newton step (from curvature evaluated at :math:`\theta_k`).
    """
    if not (ratio <= CONTRACTION_MAX and bound > 0.0):  # 1.
        return True
    rate = ratio * ratio if fresh else ratio  # after a Newton step the ratio squares
    step *= rate  # the step the next point will propose
    if step <= bound:  # 2. the next point is probably the estimate
        return True
    if CONTRACTION_MAX * bound < step * rate <= bound:  # 3. a chord step into the estimate
        return True
    chord = _rounds_to(bound, step, rate, quadratic=False)
    return chord > _rounds_to(bound, step, rate * rate, quadratic=True)  # 4.


def _rounds_to(bound: float, step: float, ratio: float, *, quadratic: bool) -> int:
    r"""Return the points still to evaluate until a step is at most ``bound`` (predicted).

    The chord method contracts by a constant ``ratio`` a round; Newton's ratio squares from
    round to round (quadratic convergence: :math:`e_{k+1} = c e_k^2`, so
    :math:`\Theta_{k+1} = \Theta_k^2`).
    """
    rounds = 0
    while step > bound and rounds < _MAX_PREDICTED:
        step *= ratio
        ratio = ratio * ratio if quadratic else ratio
        rounds += 1
    return rounds
