r"""Federated solver for L2-penalized logistic regression (runs at the aggregator).

The aggregator minimises scikit-learn's objective on the *pooled* data

.. math::

    F(\theta) = C \sum_{k} \sum_{i \in \text{hospital } k} \ell_i(\theta)
                 + \tfrac12 \lVert w \rVert^2,
    \qquad \theta = (w, b),

(``penalty=None`` or ``C=inf``: :math:`F = \sum \ell_i`; the intercept :math:`b` is never
penalized). Each hospital returns the sums of :func:`~pancreas_fl.exact.sums.local_terms`
at the broadcast :math:`\theta`; the aggregator adds them and applies ``C`` and the penalty
exactly once:

.. math::

    \nabla F = C \sum_k g_k + P\theta, \qquad \nabla^2 F = C \sum_k H_k + P,
    \qquad P = \operatorname{diag}(1, \dots, 1, 0).

Because the sums are exact, every quantity the solver sees is the pooled one, so the result
equals a pooled fit (up to the convergence tolerance).

Rounds
------
One *round* is one evaluation: the aggregator broadcasts ``next_theta``, every hospital returns
its terms at it, and :meth:`FederatedSolver.update` decides the next point. The module reads as
one recipe, scikit-learn's ``NewtonSolver`` (``sklearn/linear_model/_glm/_newton_solver.py``)
turned inside out because each evaluation of :math:`F` costs a round; its sections, in order:

1. **setup**: the method (:func:`resolve_method`: Newton up to :data:`HESSIAN_LIMIT`
   parameters, else L-BFGS; the exact strategy instead chooses by cost,
   :func:`~pancreas_fl.exact.curvature.plan_curvature`) and the checked parameters
   (:func:`validate_solver_params`);
2. **gradient and Hessian**: :math:`F`, :math:`\nabla F` (and :math:`\nabla^2 F`) from the
   round's sums, ``C`` and the penalty applied once (:func:`objective`);
3. **inner solve**: the direction :math:`d`. Newton (Fisher scoring for the logit link):
   :math:`d = -(\nabla^2 F)^{-1} \nabla F` (:func:`newton_direction`); on wide panels, while
   its steps converge fast, from the last fresh Hessian kept factorized, the hospitals then
   sending the gradient alone (``reuse=True``, the chord method:
   :mod:`~pancreas_fl.exact.reuse`). L-BFGS, for many
   parameters (:class:`LBFGSMemory`): hospitals send only O(p) numbers, the gradient and the
   weighted moments that build a "centred diagonal" preconditioner
   (:class:`CentredDiagonal`), the initial inverse Hessian of the two-loop recursion; or,
   fixed once (:meth:`FederatedSolver.fix_preconditioner`), Böhning's bound
   :math:`C \tilde X^\top \tilde X / 4 + P` shared once (:mod:`~pancreas_fl.exact.bohning`);
4. **line search**: Armijo backtracking, one trial point per round
   (:class:`ArmijoLineSearch`): accept the evaluated point or shrink the step and ask for
   another, so the objective of accepted iterates never increases (in exact arithmetic; see
   there for the floating-point fine print) and ``best_theta`` is always an evaluated point;
5. **the recipe**, one round per call (:class:`FederatedSolver`): check the round's sums (the
   point must be the one asked for), line search, at an accepted point the inner solve and
   the convergence check (:meth:`~FederatedSolver.check_convergence`), and finalize (the
   round as a :class:`SolverStep`).

Convergence
-----------
At an accepted point the solver computes the next step :math:`d` and stops when

.. math::

    \lVert d \rVert_2 \le \mathrm{tol} \cdot \lVert \theta \rVert_2
    \quad (\text{or } d = 0),

i.e. when the full Newton (quasi-Newton) step would change the parameters by less than a
relative ``tol``. For Newton this is a scale-free estimate of the distance to the optimum:
:math:`\theta - \theta^* = -d + O(\lVert d\rVert^2)`, so the relative error of the
returned point is about ``tol``. The default ``tol = 1e-8`` gives two orders of magnitude of
margin below a 1e-6 relative agreement with a tightly converged pooled scikit-learn fit, yet
costs at most one extra round thanks to quadratic convergence. For L-BFGS, whose step
estimate is less reliable, the criterion uses ``tol / 100`` and must hold for the step just
taken, for the next proposed step and for the preconditioned gradient step
:math:`\lVert M^{-1} \nabla F\rVert`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pancreas_fl.constraints import check_bool, check_choice, check_int, check_real
from pancreas_fl.errors import ConfigError
from pancreas_fl.exact.cholesky import RIDGE_TRIES
from pancreas_fl.exact.packed import PackedSymmetric, kept
from pancreas_fl.exact.reuse import ChordRule
from pancreas_fl.params import default

__all__ = [
    "DEFAULT_TOL",
    "HESSIAN_LIMIT",
    "FederatedSolver",
    "SolverStep",
    "objective",
    "resolve_method",
    "validate_solver_params",
]

#: Above this many parameters ``method="auto"`` uses L-BFGS instead of Newton. A dense
#: p x p float64 Hessian is 8 p^2 bytes per hospital per round: 8 MB at p = 1000 (and
#: growing quadratically, 200 MB at p = 5000), plus an O(n p^2) product at each hospital and an
#: O(p^3) factorisation at the aggregator. Below the limit Newton's 6-10 rounds win;
#: above it, sending O(p) numbers per round for more rounds is cheaper and leaks less.
HESSIAN_LIMIT = 1000

#: Default relative step tolerance (see the module docstring): the parameter table's.
DEFAULT_TOL = default("tol", "exact")

_METHODS = ("auto", "lbfgs", "newton")
#: L-BFGS's step underestimates the distance to the optimum along poorly explored
#: directions, so it stops at ``tol * _LBFGS_TOL_FACTOR`` (measured: relative error <= 5e-9
#: at the default tol on a 300-feature set, vs up to 3e-7 without the factor).
_LBFGS_TOL_FACTOR = 1e-2
#: A gradient whose entries are all below the smallest normal float is zero for the solver.
_TINY = np.finfo(np.float64).tiny


# ---------------------------------------------------------- 1. setup: method and parameters
def resolve_method(n_params: int, method: str, max_hessian_features: int = HESSIAN_LIMIT) -> str:
    """Return the method ``"auto"`` stands for: Newton up to ``max_hessian_features`` parameters.

    Parameters
    ----------
    n_params : int
    method : {"auto", "newton", "lbfgs"}
        Validated (see :func:`validate_solver_params`).
    max_hessian_features : int, default=HESSIAN_LIMIT

    Returns
    -------
    {"newton", "lbfgs"}
    """
    if method == "auto":
        return "newton" if n_params <= max_hessian_features else "lbfgs"
    return method


def validate_solver_params(
    *,
    n_params: Any = 1,
    fit_intercept: Any = True,
    C: Any = 1.0,
    penalty: Any = "l2",
    tol: Any = DEFAULT_TOL,
    max_rounds: Any = 100,
    method: Any = "auto",
    max_hessian_features: Any = HESSIAN_LIMIT,
    memory: Any = 20,
) -> dict[str, Any]:
    r"""Validate the solver's parameters (the one place where they are checked).

    Messages follow scikit-learn's convention, e.g.
    ``"'tol' must be a float in (0, inf). Got -1 instead."``.

    Parameters
    ----------
    n_params : int
        Number of parameters :math:`p = d + \text{fit\_intercept}`, in [1, inf).
    fit_intercept : bool
    C : float
        Inverse regularisation strength, in (0, inf]; ``inf`` means no penalty.
    penalty : {"l2", None}
    tol : float
        Relative step tolerance, in (0, inf).
    max_rounds : int
        Maximum number of rounds (evaluations), in [1, inf).
    method : {"auto", "newton", "lbfgs"}
    max_hessian_features : int
        Largest ``n_params`` for which ``method="auto"`` uses Newton, in [1, inf).
    memory : int
        Number of L-BFGS correction pairs, in [1, inf).

    Returns
    -------
    dict
        The parameters, normalised (``C`` and ``tol`` as float, ``penalty`` as ``"l2"`` or
        ``None``; ``penalty`` becomes ``None`` when ``C`` is infinite), plus ``"method"``
        resolved to ``"newton"`` or ``"lbfgs"``.

    Raises
    ------
    pancreas_fl.errors.ConfigError
        If a parameter is invalid.
    """
    n_params = check_int("n_params", n_params, 1)
    fit_intercept = check_bool("fit_intercept", fit_intercept)
    C = check_real("C", C, closed="right")
    penalty = check_choice("penalty", penalty, ("l2", None))
    tol = check_real("tol", tol)
    max_rounds = check_int("max_rounds", max_rounds, 1)
    method = check_choice("method", method, _METHODS)
    max_hessian_features = check_int("max_hessian_features", max_hessian_features, 1)
    memory = check_int("memory", memory, 1)
    return {
        "n_params": n_params,
        "fit_intercept": fit_intercept,
        "C": C,
        "penalty": None if math.isinf(C) else penalty,
        "tol": tol,
        "max_rounds": max_rounds,
        "method": resolve_method(n_params, method, max_hessian_features),
        "max_hessian_features": max_hessian_features,
        "memory": memory,
    }


# ------------------------------------------------- 2. gradient and Hessian: the objective F
def _penalty_diag(n_params: int, fit_intercept: bool, penalty: str | None) -> np.ndarray:
    r"""Return the diagonal of :math:`P`, the penalty's Hessian.

    1 per coefficient, 0 for the intercept; all 0 without a penalty.
    """
    diag = np.ones(n_params) if penalty == "l2" else np.zeros(n_params)
    if fit_intercept:
        diag[-1] = 0.0
    return diag


def objective(
    theta: Any, loss_sum: float, *, fit_intercept: bool, C: float = 1.0, penalty: str | None = "l2"
) -> float:
    r"""scikit-learn's objective :math:`F = C \sum \ell_i + \frac12 \lVert w\rVert^2`.

    Parameters
    ----------
    theta : array_like of shape (p,)
        :math:`(w, b)`, intercept last when ``fit_intercept``.
    loss_sum : float
        :math:`\sum_i \ell_i(\theta)` over all hospitals.
    fit_intercept : bool
    C : float, default=1.0
    penalty : {"l2", None}, default="l2"
        ``None`` (or ``C=inf``) gives :math:`F = \sum_i \ell_i`.

    Returns
    -------
    float
    """
    theta = np.asarray(theta, dtype=np.float64)
    if penalty is None or math.isinf(C):
        return float(loss_sum)
    w = theta[:-1] if fit_intercept else theta
    return float(C * loss_sum + 0.5 * np.dot(w, w))


# ---------------------------------------------------- 3a. inner solve, Newton: d = -H^-1 g


#: Above this many parameters the factorized system is solved by one LU solve instead of two
#: general solves with the Cholesky factor (numpy has no triangular solve): 3/5 of the flops
#: at p = 5,000. Up to it the arithmetic stays as it was, bit for bit.
_ONE_SOLVE_ABOVE = 362


def newton_direction(g: np.ndarray, H: np.ndarray, *, overwrite: bool = False) -> np.ndarray:
    r"""Solve :math:`H d = -g` for a symmetric positive semi-definite :math:`H`.

    Parameters
    ----------
    g : numpy.ndarray of shape (p,)
        The gradient :math:`\nabla F`.
    H : numpy.ndarray of shape (p, p)
        The Hessian :math:`\nabla^2 F` (penalty included).
    overwrite : bool, default=False
        Whether ``H`` may be scaled in place (above ``_ONE_SOLVE_ABOVE`` parameters: one
        ``p x p`` matrix less; the same numbers).

    Returns
    -------
    numpy.ndarray of shape (p,)
        The Newton direction :math:`d`.

    Notes
    -----
    For the logit link Newton's method and Fisher scoring coincide. The pooled Hessian
    :math:`\nabla^2 F = C \sum_k H_k + P` is positive semi-definite; it is singular, or
    numerically so, for separable data, a hospital with a single class or ``penalty=None`` with
    collinear features. The system is therefore solved by a Jacobi-scaled Cholesky factorisation
    (:math:`D^{-1/2} \nabla^2 F D^{-1/2}`, :math:`D = \operatorname{diag}\nabla^2 F`) with an
    increasing ridge :math:`\lambda I` (:math:`10^{-12}` up to :math:`10^{-2}`) as fallback, and a
    least-squares solve as the last resort.
    """
    diag = np.diag(H).copy()
    scale = np.sqrt(np.where(diag > 0, diag, 1.0))
    if len(g) > _ONE_SOLVE_ABOVE:  # one scaled copy (Cholesky reads only one triangle)
        Hs = np.divide(H, scale[:, None], out=H if overwrite else None)
        Hs /= scale[None, :]
    else:
        Hs = H / scale[:, None] / scale[None, :]
        Hs = 0.5 * (Hs + Hs.T)
    gs = g / scale
    ridge = 0.0
    for _ in range(RIDGE_TRIES):
        try:
            L = np.linalg.cholesky(Hs + ridge * np.eye(len(g)) if ridge else Hs)
        except np.linalg.LinAlgError:
            ridge = 1e-12 if ridge == 0.0 else ridge * 10.0
            continue
        if len(g) > _ONE_SOLVE_ABOVE:  # the factorization proved the system definite
            del L
            u = np.linalg.solve(Hs + ridge * np.eye(len(g)) if ridge else Hs, -gs)
        else:
            u = np.linalg.solve(L.T, np.linalg.solve(L, -gs))
        if np.all(np.isfinite(u)):
            return u / scale
        ridge = 1e-12 if ridge == 0.0 else ridge * 10.0
    u = np.linalg.lstsq(Hs, -gs, rcond=None)[0]
    return u / scale


# ---------------------------------------- 3b. inner solve, L-BFGS: memory and preconditioner


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
        :func:`~pancreas_fl.exact.sums.local_terms` with ``hessian="diag"``.
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

    Notes
    -----
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


# -------------------------------------------- 4. line search: Armijo, one trial point a round


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

    Notes
    -----
    In a pooled fit the line search evaluates :math:`\phi(t) = F(\theta + t d)` for a few
    :math:`t` inside one iteration. Federated, every evaluation is a round: the aggregator
    broadcasts the trial point :math:`\theta + t d`, the hospitals return their sums at it, and
    :class:`ArmijoLineSearch` decides whether to take it.

    *Acceptance.*
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

    *Backtracking.*
    A rejected step :math:`t` is replaced by one in :math:`[t/10, t/2]` (at least halved), the
    minimiser of the cubic that interpolates :math:`\phi(0), \phi'(0), \phi(t), \phi'(t)`
    (Nocedal & Wright, *Numerical Optimization*, 2nd ed., eq. 3.59), clipped to that interval;
    plain halving when the trial's values are not finite. Below :data:`MIN_STEP` the search gives
    up: no step lowers :math:`F` at floating-point resolution.
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


# --------------------------- 5. the recipe, one round a call: steps 1 to 4, convergence, finalize
@dataclass(frozen=True)
class SolverStep:
    r"""What :meth:`FederatedSolver.update` decided after one round.

    Attributes
    ----------
    next_theta : numpy.ndarray or None
        The point the hospitals evaluate in the next round (``None`` when ``done``).
    best_theta : numpy.ndarray
        The last accepted point (the lowest objective evaluated so far); the result.
    best_objective : float
        :math:`F` at ``best_theta``.
    best_loss : float
        :math:`\sum_i \ell_i` at ``best_theta`` (deviance / 2, for the GLM statistics).
    objective : float
        :math:`F` at the point evaluated in this round.
    accepted : bool
        Whether the evaluated point was accepted (passed the line search).
    converged : bool
        The convergence criterion holds at ``best_theta``.
    done : bool
        No further round is needed (converged, ``max_rounds`` reached or the line search
        cannot make progress).
    status : str
        ``"running"``, ``"converged"``, ``"max_rounds"`` or ``"line_search_failed"``.
    round : int
        Number of rounds (evaluations) so far, this one included.
    iteration : int
        Number of accepted points so far (the initial point included).
    step_size : float
        Step length :math:`t` of ``next_theta`` along the current direction (1 = full step).
    step_norm : float
        :math:`\lVert d\rVert_2` of the full (quasi-)Newton step proposed from
        ``best_theta``, the quantity compared with ``tol * ||best_theta||``.
    grad_norm : float
        :math:`\lVert \nabla F\rVert_\infty` at ``best_theta``.
    step_bound : float
        What ``step_norm`` is compared with: :math:`\mathrm{tol} \lVert\theta\rVert` at
        ``best_theta`` (L-BFGS: divided by 100, and the step taken and the preconditioned
        gradient must be below it too); NaN before the first accepted point.
    curvature : str or None
        What the hospitals must return next: passed as ``hessian=`` to
        :func:`~pancreas_fl.exact.sums.local_terms` (``"full"`` for Newton, ``"diag"``
        for L-BFGS, ``None`` when done).
    """

    next_theta: np.ndarray | None
    best_theta: np.ndarray
    best_objective: float
    best_loss: float
    objective: float
    accepted: bool
    converged: bool
    done: bool
    status: str
    round: int
    iteration: int
    step_size: float
    step_norm: float
    grad_norm: float
    curvature: str | None
    step_bound: float = math.nan


class FederatedSolver:
    r"""Aggregator-side solver of the federated fit, by Newton or L-BFGS, one round per call.

    Parameters
    ----------
    n_params : int
        Number of parameters :math:`p` (features, plus one if ``fit_intercept``).
    fit_intercept : bool
        Whether the last parameter is an unpenalized intercept.
    C : float, default=1.0
        Inverse regularisation strength (scikit-learn's ``C``); ``inf`` means no penalty.
    penalty : {"l2", None}, default="l2"
    tol : float, default=DEFAULT_TOL
        Relative step tolerance (see the module docstring).
    max_rounds : int, default=100
        Maximum number of rounds (evaluations), the initial one included.
    method : {"auto", "newton", "lbfgs"}, default="auto"
        ``"auto"``: Newton when ``n_params <= max_hessian_features``, else L-BFGS.
    max_hessian_features : int, default=HESSIAN_LIMIT
    memory : int, default=20
        Number of correction pairs kept by L-BFGS.
    theta0 : array_like of shape (n_params,), optional
        Start point (warm start, e.g. from a FedAvg result); zeros by default, as
        scikit-learn. A poor start is safe: the line search guards it.
    reuse : bool, default=False
        Newton: keep the last Hessian while the steps converge fast, and ask for the
        gradient alone meanwhile (:mod:`~pancreas_fl.exact.reuse`, the chord method).

    Attributes
    ----------
    method : {"newton", "lbfgs"}
        The resolved method.
    round, iteration : int
        Rounds (evaluations) and accepted points so far.
    theta : numpy.ndarray or None
        The last accepted point (``None`` before the first round).
    f, loss : float
        :math:`F` and :math:`\sum_i \ell_i` at ``theta``.
    g : numpy.ndarray or None
        :math:`\nabla F` at ``theta``.
    hess_loglik : numpy.ndarray, PackedSymmetric or None
        Pooled log-likelihood Hessian (information, no ``C``, no penalty) at ``theta``
        (packed when the hospitals' triangles were summed packed); Newton only (``None`` for
        L-BFGS), for :func:`~pancreas_fl.exact.glm.glm_summary`.
    pending : numpy.ndarray or None
        The point the hospitals must evaluate next (``None`` when done).
    done, converged : bool
    status : str
        See :attr:`SolverStep.status`.
    last_step_norm : float
        :math:`\lVert d \rVert_2` of the last proposed full step.
    line_search : ArmijoLineSearch
        The direction, its slope and the current trial step.
    lbfgs : LBFGSMemory
        The correction pairs (empty for Newton).
    reuse : ChordRule or None
        With ``reuse=True`` (Newton): the kept Hessian and whether the next point asks for
        curvature; ``hess_loglik`` is then the last fresh Hessian, at ``reuse.fresh_at``.

    Notes
    -----
    Protocol: ``theta = solver.initial_theta()``; each round every hospital calls
    ``local_terms(X, y, theta, fit_intercept=..., hessian=solver.curvature)``; the aggregator
    sums them (:func:`~pancreas_fl.exact.sums.aggregate_terms`) and calls
    ``step = solver.update(theta, loss, grad, hess)``; stop when ``step.done``, else
    ``theta = step.next_theta``. The result is ``step.best_theta``.
    """

    def __init__(
        self,
        n_params: int,
        *,
        fit_intercept: bool,
        C: float = 1.0,
        penalty: str | None = "l2",
        tol: float = DEFAULT_TOL,
        max_rounds: int = 100,
        method: str = "auto",
        max_hessian_features: int = HESSIAN_LIMIT,
        memory: int = 20,
        theta0: Any = None,
        reuse: bool = False,
    ) -> None:
        params = validate_solver_params(
            n_params=n_params,
            fit_intercept=fit_intercept,
            C=C,
            penalty=penalty,
            tol=tol,
            max_rounds=max_rounds,
            method=method,
            max_hessian_features=max_hessian_features,
            memory=memory,
        )
        self.n_params: int = params["n_params"]
        self.fit_intercept: bool = params["fit_intercept"]
        self.C: float = params["C"]
        self.penalty: str | None = params["penalty"]
        self.tol: float = params["tol"]
        self.max_rounds: int = params["max_rounds"]
        self.method: str = params["method"]
        self.theta0 = self._check_theta0(theta0)
        self._pen = _penalty_diag(self.n_params, self.fit_intercept, self.penalty)
        # the state: rounds so far, the last accepted point and what is known there
        self.round = self.iteration = 0
        self.theta: np.ndarray | None = None
        self.f = self.loss = math.inf
        self.g: np.ndarray | None = None
        self.hess_loglik: np.ndarray | None = None
        self.pending: np.ndarray | None = self.theta0.copy()
        self.done = self.converged = False
        self.status = "running"
        self.last_step_norm = math.inf
        self.last_step_bound = math.nan
        self.line_search = ArmijoLineSearch()
        self.lbfgs = LBFGSMemory(params["memory"])
        reuse = check_bool("reuse", reuse) and self.method == "newton"
        self.reuse: ChordRule | None = ChordRule() if reuse else None
        self.fixed_preconditioner: Callable[[np.ndarray], np.ndarray] | None = None

    def _check_theta0(self, theta0: Any) -> np.ndarray:
        if theta0 is None:
            return np.zeros(self.n_params)
        theta0 = np.array(theta0, dtype=np.float64).reshape(-1)
        if theta0.shape != (self.n_params,) or not np.all(np.isfinite(theta0)):
            raise ConfigError(
                f"'theta0' must be a finite array of {self.n_params} floats. "
                f"Got shape {theta0.shape} instead."
            )
        return theta0

    # ------------------------------------------------------------------ protocol helpers
    @property
    def curvature(self) -> str | None:
        """``hessian=`` argument for ``local_terms`` in the next round.

        ``None`` when done, and in the rounds that reuse the kept Hessian (the gradient alone).
        """
        if self.done or (self.reuse is not None and not self.reuse.asks):
            return None
        return "full" if self.method == "newton" else "diag"

    def initial_theta(self) -> np.ndarray:
        """Return ``theta0``, the first point to evaluate (zeros by default, as scikit-learn)."""
        return self.theta0.copy()

    def objective(self, theta: Any, loss_sum: float) -> float:
        r""":math:`F(\theta)` from the pooled loss sum (see :func:`objective`)."""
        return objective(
            theta, loss_sum, fit_intercept=self.fit_intercept, C=self.C, penalty=self.penalty
        )

    @property
    def loss_factor(self) -> float:
        """The factor of the loss sum in :math:`F`: ``C``, or 1 without a penalty."""
        return 1.0 if self.penalty is None else self.C

    @property
    def penalty_diag(self) -> np.ndarray:
        """The diagonal of :math:`P`, the penalty's Hessian (0 for the intercept)."""
        return self._pen.copy()

    def fix_preconditioner(
        self,
        precondition: Callable[[np.ndarray], np.ndarray] | None = None,
        *,
        moments: dict[str, Any] | None = None,
    ) -> None:
        r"""L-BFGS: use one :math:`M^{-1}` from now on, whatever curvature a round brings.

        ``precondition``, or the :class:`CentredDiagonal` of ``moments``: e.g. Böhning's
        bound shared once (:mod:`~pancreas_fl.exact.bohning`), and until it is complete the
        centred diagonal of the moments at zero.
        """
        if moments is not None:
            precondition = self._centred_diagonal(moments)
        self.fixed_preconditioner = precondition

    def _centred_diagonal(self, moments: dict[str, Any]) -> CentredDiagonal:
        """:math:`M^{-1}` of the pooled ``"diag"`` moments, with this solver's ``C`` and penalty."""
        return CentredDiagonal(
            moments, C=self.loss_factor, penalty_diag=self._pen, fit_intercept=self.fit_intercept
        )

    # ------------------------------------------------------------------ the round
    def update(
        self, theta_evaluated: Any, loss_sum: float, grad_sum: Any, hess_sum: Any = None
    ) -> SolverStep:
        r"""Process one round: the pooled sums at ``theta_evaluated``.

        Parameters
        ----------
        theta_evaluated : array_like of shape (p,)
            The point the hospitals evaluated (must be the last ``next_theta``).
        loss_sum : float
            :math:`\sum_i \ell_i` over all hospitals (not multiplied by ``C``).
        grad_sum : array_like of shape (p,)
            :math:`\sum_i (\sigma_i - y_i) \tilde x_i` over all hospitals.
        hess_sum : array_like of shape (p, p), PackedSymmetric, dict or None
            Newton: :math:`\sum_i \sigma_i(1-\sigma_i)\tilde x_i \tilde x_i^\top`
            (required; a :class:`~pancreas_fl.exact.packed.PackedSymmetric` is unpacked once).
            L-BFGS: the ``"diag"`` moments dict of ``local_terms`` (optional; without it a
            scaled identity is used).

        Returns
        -------
        SolverStep
        """
        theta, g_raw, hessian, moments = self._check_round(theta_evaluated, grad_sum, hess_sum)
        self.round += 1
        f = self.objective(theta, float(loss_sum))
        g = self.loss_factor * g_raw + self._pen * theta
        finite = math.isfinite(f) and bool(np.all(np.isfinite(g)))
        accepted = self._accepts(f, g, finite)
        if accepted:
            taken = self._take(theta, f, g, float(loss_sum), hess_sum)
            precondition = self._preconditioner(moments)
            step_norm = self.inner_solve(g, hessian, precondition)
            self.check_convergence(theta, g, step_norm, taken, precondition)
        elif not self.line_search.backtrack(f, g if finite else None):
            self.done, self.status = True, "line_search_failed"
        if not self.done and self.round >= self.max_rounds:
            self.done, self.status = True, "max_rounds"
        self.pending = None if self.done else self.line_search.trial_point(self.theta)
        if self.reuse is not None:  # whether the next point asks for curvature
            self.reuse.plan(
                accepted=accepted,
                fresh=hess_sum is not None,
                step_norm=self.last_step_norm,
                bound=self.last_step_bound,
            )
            if self.done:  # the statistics need no chord step: the factor's p x p freed
                self.reuse.release()
        return self.finalize(f, accepted)

    def _check_round(
        self, theta_evaluated: Any, grad_sum: Any, hess_sum: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict[str, Any] | None]:
        r"""Check the round's inputs and return them as arrays.

        That is :math:`\theta`, :math:`\sum g_k`, the penalized Hessian :math:`\nabla^2 F`
        (Newton) and the moments (L-BFGS).
        """
        if self.done:
            raise RuntimeError("The federated solver is done; no further round is expected.")
        p = self.n_params
        theta = np.asarray(theta_evaluated, dtype=np.float64).reshape(-1)
        if theta.shape != (p,):
            raise ValueError(f"theta_evaluated must have {p} entries. Got {theta.shape[0]}.")
        if self.pending is not None and not np.array_equal(theta, self.pending):
            raise ValueError("theta_evaluated is not the point this solver asked for.")
        g_raw = np.asarray(grad_sum, dtype=np.float64).reshape(-1)
        if g_raw.shape != (p,):
            raise ValueError(f"grad_sum must have {p} entries. Got {g_raw.shape[0]}.")
        if self.method == "lbfgs":
            return theta, g_raw, None, hess_sum if isinstance(hess_sum, dict) else None
        if hess_sum is None and self.reuse is not None and not self.reuse.asks:
            return theta, g_raw, None, None  # a round on the kept Hessian
        if hess_sum is None or isinstance(hess_sum, dict):
            raise ValueError("method='newton' needs the full Hessian sum (hessian='full').")
        H = hess_sum if isinstance(hess_sum, PackedSymmetric) else np.asarray(hess_sum, float)
        if H.shape != (p, p):
            raise ValueError(f"hess_sum must have shape ({p}, {p}). Got {H.shape}.")
        if self.reuse is not None:  # fresh curvature: the kept factor is not used again
            self.reuse.release()
        return theta, g_raw, self._penalized(H), None

    def _penalized(self, H: np.ndarray | PackedSymmetric) -> np.ndarray:
        r"""Return :math:`\nabla^2 F = C H + P`, a new matrix (the solve's to overwrite)."""
        if isinstance(H, PackedSymmetric):  # unpacked once, into the matrix the solve scales
            penalized = H.unpack()
            penalized *= self.loss_factor
        else:
            penalized = self.loss_factor * H  # + diag(pen), in place: the same numbers, one copy
        penalized[np.diag_indices(self.n_params)] += self._pen
        return penalized

    def _accepts(self, f: float, g: np.ndarray, finite: bool) -> bool:
        """Whether the evaluated point becomes the new accepted point (the line search)."""
        if self.theta is None:  # the start point: nothing to compare it with
            if not finite:
                raise ValueError("The objective at the initial point is not finite.")
            return True
        return self.line_search.accepts(f, g, finite=finite)

    def _take(
        self, theta: np.ndarray, f: float, g: np.ndarray, loss: float, hess_sum: Any
    ) -> float:
        """Make the evaluated point the accepted one; return the length of the step taken."""
        previous = self.theta
        if self.method == "lbfgs" and previous is not None and self.g is not None:
            self.lbfgs.add(theta - previous, g - self.g)
        taken = math.inf if previous is None else float(np.linalg.norm(theta - previous))
        self.theta, self.f, self.g, self.loss = theta, f, g, loss
        if self.method == "newton" and hess_sum is not None:  # a packed sum: by reference
            self.hess_loglik = kept(hess_sum)
            if self.reuse is not None:
                self.reuse.fresh(theta)
        self.iteration += 1
        return taken

    def _preconditioner(self, moments: dict[str, Any] | None) -> CentredDiagonal | None:
        """:math:`M^{-1}` from the pooled moments (L-BFGS), or ``None`` without them."""
        if self.fixed_preconditioner is not None:
            return self.fixed_preconditioner
        if moments is None:
            return None
        return self._centred_diagonal(moments)

    def inner_solve(
        self, g: np.ndarray, hessian: np.ndarray | None, precondition: CentredDiagonal | None
    ) -> float:
        r"""Find the direction :math:`d` from the accepted point; start the line search on it.

        Newton: :math:`\nabla^2 F\, d = -\nabla F`. L-BFGS: :math:`d = -H_k \nabla F` by the
        two-loop recursion (``hessian``, the round's own matrix, is overwritten). A gradient
        that is zero at floating-point resolution (every entry
        below the smallest normal float, e.g. separable data without a penalty, far out)
        gives :math:`d = 0`, which :meth:`check_convergence` takes as converged.

        Returns
        -------
        float
            :math:`\lVert d \rVert_2`, the length of the full step.
        """
        if float(np.max(np.abs(g))) < _TINY:  # zero at floating-point resolution
            d, gtd = np.zeros_like(g), 0.0
        else:
            d = self._direction(g, hessian, precondition)
            gtd = float(g @ d)
        self.line_search.start(self.f, d, gtd)
        self.last_step_norm = float(np.linalg.norm(d))
        return self.last_step_norm

    def _direction(
        self, g: np.ndarray, hessian: np.ndarray | None, precondition: CentredDiagonal | None
    ) -> np.ndarray:
        r"""Return the Newton or L-BFGS direction, or steepest descent should it not descend.

        Should it not descend (:math:`\nabla F^\top d \ge 0`, not expected), the direction is
        (preconditioned) steepest descent, and L-BFGS forgets its pairs.
        """
        if self.method == "newton" and hessian is None:  # the kept Hessian (chord step)
            d = self.reuse.direction(g, self._kept_hessian)
        elif self.method == "newton":
            d = newton_direction(g, hessian, overwrite=True)  # the round's own matrix
        else:
            d = self.lbfgs.direction(g, precondition)
        if not float(g @ d) < 0:
            if self.method == "lbfgs":
                self.lbfgs.clear()
                return -(g.copy() if precondition is None else precondition(g))
            return -g
        return d

    def _kept_hessian(self) -> np.ndarray:
        r""":math:`\nabla^2 F` of the last fresh curvature (``hess_loglik``, packed or not).

        A new matrix, unpacked once as a round's own: the chord rule scales it in place into
        the one factor it keeps (:meth:`~pancreas_fl.exact.reuse.ChordRule.direction`).
        """
        return self._penalized(self.hess_loglik)

    def check_convergence(
        self,
        theta: np.ndarray,
        g: np.ndarray,
        step_norm: float,
        taken: float,
        precondition: CentredDiagonal | None,
    ) -> None:
        r"""Stop when the next full step is below ``tol`` relative to :math:`\theta`.

        Newton: :math:`\lVert d \rVert \le \mathrm{tol} \lVert\theta\rVert`. L-BFGS: the
        step just ``taken``, the next step and :math:`\lVert M^{-1}\nabla F\rVert` must all be
        at most :math:`\mathrm{tol} \lVert\theta\rVert / 100`. A zero gradient or a zero step
        always converges.
        """
        bound = self.last_step_bound = self.tol * float(np.linalg.norm(theta))
        if step_norm == 0.0 or not np.any(g):
            converged = True
        elif self.method == "newton":
            converged = step_norm <= bound
        else:
            bound *= _LBFGS_TOL_FACTOR
            self.last_step_bound = bound
            pre = float(np.linalg.norm(g.copy() if precondition is None else precondition(g)))
            converged = step_norm <= bound and taken <= bound and pre <= bound
        if converged:
            self.converged, self.done, self.status = True, True, "converged"

    def finalize(self, f: float, accepted: bool) -> SolverStep:
        """Return the round's report: the next point, the best point so far and the status."""
        return SolverStep(
            next_theta=None if self.pending is None else self.pending.copy(),
            best_theta=self.theta.copy(),
            best_objective=self.f,
            best_loss=self.loss,
            objective=f,
            accepted=bool(accepted),
            converged=self.converged,
            done=self.done,
            status=self.status,
            round=self.round,
            iteration=self.iteration,
            step_size=self.line_search.t,
            step_norm=self.last_step_norm,
            grad_norm=float(np.max(np.abs(self.g))) if self.g.size else 0.0,
            curvature=self.curvature,
            step_bound=self.last_step_bound,
        )
