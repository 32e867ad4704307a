"""Federated solver for L2-penalized logistic regression (runs at the aggregator).

The aggregator minimises scikit-learn's objective on the *pooled* data

.. math::

    F(\\theta) = C \\sum_{k} \\sum_{i \\in \\text{hospital } k} \\ell_i(\\theta)
                 + \\tfrac12 \\lVert w \\rVert^2,
    \\qquad \\theta = (w, b),

(``penalty=None`` or ``C=inf``: :math:`F = \\sum \\ell_i`; the intercept :math:`b` is never
penalized). Each hospital returns the sums of :func:`~pancreas_fl.stats.logistic.local_terms`
at the broadcast :math:`\\theta`; the aggregator adds them and applies ``C`` and the penalty
exactly once:

.. math::

    \\nabla F = C \\sum_k g_k + P\\theta, \\qquad \\nabla^2 F = C \\sum_k H_k + P,
    \\qquad P = \\operatorname{diag}(1, \\dots, 1, 0).

Because the sums are exact, every quantity the solver sees is the pooled one, so the result
equals a pooled fit (up to the convergence tolerance).

Rounds
------
One *round* is one evaluation: the aggregator broadcasts ``next_theta``, every hospital returns
its terms at it, and :meth:`FederatedNewton.update` decides the next point. Two methods:

* ``"newton"`` (Newton = Fisher scoring for the logit link): direction
  :math:`d = -(\\nabla^2 F)^{-1} \\nabla F`, solved by a Jacobi-scaled Cholesky
  factorisation with an increasing ridge as fallback when the Hessian is numerically
  singular (separable data, single-class hospitals, ``penalty=None``).
* ``"lbfgs"``: limited-memory BFGS for many parameters. Hospitals send only O(p) numbers:
  the gradient and the weighted moments :math:`\\sum v_i`, :math:`\\sum v_i x_i`,
  :math:`\\sum v_i x_i^2` (:math:`v_i = \\sigma_i(1-\\sigma_i)`) that build a
  "centred diagonal" preconditioner used as the initial inverse Hessian of the two-loop
  recursion (exact for uncorrelated features; it removes the ill-conditioning that an
  intercept and uncentred features such as log2 expression around 2-14 cause).

Both are safeguarded by Armijo backtracking: a trial point :math:`\\theta + t d` is accepted
when :math:`F(\\theta + t d) \\le F(\\theta) + c_1 t \\nabla F^\\top d` (:math:`c_1 = 10^{-4}`);
otherwise the step from the last accepted point is at least halved (see below) and the
hospitals evaluate the new trial in the next round. The objective of accepted iterates
therefore never increases (in exact arithmetic; see the gradient form of the test below for
the floating-point fine print), and ``best_theta`` is always an accepted (evaluated) point.

Convergence
-----------
At an accepted point the solver computes the next step :math:`d` and stops when

.. math::

    \\lVert d \\rVert_2 \\le \\mathrm{tol} \\cdot \\lVert \\theta \\rVert_2
    \\quad (\\text{or } d = 0),

i.e. when the full Newton (quasi-Newton) step would change the parameters by less than a
relative ``tol``. For Newton this is a scale-free estimate of the distance to the optimum:
:math:`\\theta - \\theta^* = -d + O(\\lVert d\\rVert^2)`, so the relative error of the
returned point is about ``tol``. The default ``tol = 1e-8`` gives two orders of magnitude of
margin below a 1e-6 relative agreement with a tightly converged pooled scikit-learn fit, yet
costs at most one extra round thanks to quadratic convergence. For L-BFGS, whose step
estimate is less reliable, the criterion uses ``tol / 100`` and must hold for the step just
taken, for the next proposed step and for the preconditioned gradient step
:math:`\\lVert M^{-1} \\nabla F\\rVert`.

Line search: a rejected trial step ``t`` is replaced by one in ``[t/10, t/2]`` (at least
halved), chosen by safeguarded cubic interpolation of the two evaluated points' values and
directional derivatives. A trial is accepted by the Armijo test on values, or by its gradient
form :math:`\\nabla F(\\theta + t d)^\\top d \\le c_1 \\nabla F(\\theta)^\\top d`, which implies
Armijo for the convex :math:`F` and stays decisive when the decrease is below the
floating-point resolution of :math:`F`. Only in that regime (relative changes of :math:`F`
around 1e-15, met by L-BFGS in its last rounds, not by Newton in practice) may the *computed*
objective of successive accepted points fluctuate by rounding error.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pancreas_fl._validation import check_bool, check_choice, check_int, check_real
from pancreas_fl.errors import ConfigError

__all__ = [
    "DEFAULT_TOL",
    "HESSIAN_LIMIT",
    "FederatedNewton",
    "SolverStep",
    "objective",
    "validate_solver_params",
]

#: Above this many parameters ``method="auto"`` uses L-BFGS instead of Newton. A dense
#: p x p float64 Hessian is 8 p^2 bytes per hospital per round: 8 MB at p = 1000 (and
#: growing quadratically, 200 MB at p = 5000), plus an O(n p^2) product at each hospital and an
#: O(p^3) factorisation at the aggregator. Below the limit Newton's 6-10 rounds win;
#: above it, sending O(p) numbers per round for more rounds is cheaper and leaks less.
HESSIAN_LIMIT = 1000

#: Default relative step tolerance (see the module docstring).
DEFAULT_TOL = 1e-8

_METHODS = ("auto", "lbfgs", "newton")
_ARMIJO_C1 = 1e-4
_MIN_STEP = 2.0**-40
#: L-BFGS's step underestimates the distance to the optimum along poorly explored
#: directions, so it stops at ``tol * _LBFGS_TOL_FACTOR`` (measured: relative error <= 5e-9
#: at the default tol on a 300-feature set, vs up to 3e-7 without the factor).
_LBFGS_TOL_FACTOR = 1e-2
_EPS = np.finfo(np.float64).eps


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
    """Validate the solver's parameters (the one place where they are checked).

    Messages follow scikit-learn's convention, e.g.
    ``"'tol' must be a float in (0, inf). Got -1 instead."``. The FLAME adapters may call
    this when a node starts so that a bad configuration fails before any round.

    Parameters
    ----------
    n_params : int
        Number of parameters :math:`p = d + \\text{fit\\_intercept}`, in [1, inf).
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
    if math.isinf(C):
        penalty = None
    if method == "auto":
        method = "newton" if n_params <= max_hessian_features else "lbfgs"
    return {
        "n_params": n_params,
        "fit_intercept": fit_intercept,
        "C": C,
        "penalty": penalty,
        "tol": tol,
        "max_rounds": max_rounds,
        "method": method,
        "max_hessian_features": max_hessian_features,
        "memory": memory,
    }


def _penalty_diag(n_params: int, fit_intercept: bool, penalty: str | None) -> np.ndarray:
    diag = np.ones(n_params) if penalty == "l2" else np.zeros(n_params)
    if fit_intercept:
        diag[-1] = 0.0
    return diag


def objective(
    theta: Any, loss_sum: float, *, fit_intercept: bool, C: float = 1.0, penalty: str | None = "l2"
) -> float:
    """scikit-learn's objective :math:`F = C \\sum \\ell_i + \\frac12 \\lVert w\\rVert^2`.

    Parameters
    ----------
    theta : array_like of shape (p,)
        :math:`(w, b)`, intercept last when ``fit_intercept``.
    loss_sum : float
        :math:`\\sum_i \\ell_i(\\theta)` over all hospitals.
    fit_intercept : bool
    C : float, default=1.0
    penalty : {"l2", None}, default="l2"
        ``None`` (or ``C=inf``) gives :math:`F = \\sum_i \\ell_i`.

    Returns
    -------
    float
    """
    theta = np.asarray(theta, dtype=np.float64)
    if penalty is None or math.isinf(C):
        return float(loss_sum)
    w = theta[:-1] if fit_intercept else theta
    return float(C * loss_sum + 0.5 * np.dot(w, w))


@dataclass(frozen=True)
class SolverStep:
    """What :meth:`FederatedNewton.update` decided after one round.

    Attributes
    ----------
    next_theta : numpy.ndarray or None
        The point the hospitals evaluate in the next round (``None`` when ``done``).
    best_theta : numpy.ndarray
        The last accepted point (the lowest objective evaluated so far); the result.
    best_objective : float
        :math:`F` at ``best_theta``.
    best_loss : float
        :math:`\\sum_i \\ell_i` at ``best_theta`` (deviance / 2, for the GLM statistics).
    objective : float
        :math:`F` at the point evaluated in this round.
    accepted : bool
        Whether the evaluated point was accepted (passed the Armijo test).
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
        :math:`\\lVert d\\rVert_2` of the full (quasi-)Newton step proposed from
        ``best_theta``, the quantity compared with ``tol * ||best_theta||``.
    grad_norm : float
        :math:`\\lVert \\nabla F\\rVert_\\infty` at ``best_theta``.
    curvature : str or None
        What the hospitals must return next: passed as ``hessian=`` to
        :func:`~pancreas_fl.stats.logistic.local_terms` (``"full"`` for Newton, ``"diag"``
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

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python copy (arrays as lists), e.g. for logging or JSON."""
        out = asdict(self)
        for key in ("next_theta", "best_theta"):
            if out[key] is not None:
                out[key] = np.asarray(out[key]).tolist()
        return out


class FederatedNewton:
    """Aggregator-side state machine of the federated fit.

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

    Notes
    -----
    Protocol: ``theta = solver.initial_theta()``; each round every hospital calls
    ``local_terms(X, y, theta, fit_intercept=..., hessian=solver.curvature)``; the aggregator
    sums them (:func:`~pancreas_fl.stats.logistic.aggregate_terms`) and calls
    ``step = solver.update(theta, loss, grad, hess)``; stop when ``step.done``, else
    ``theta = step.next_theta``. The result is ``step.best_theta``.

    The state is plain data: :meth:`get_state` / :meth:`from_state` round-trip it (lists,
    floats, strings), e.g. to persist the aggregator between rounds.
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
        self.params = params
        self.n_params: int = params["n_params"]
        self.fit_intercept: bool = params["fit_intercept"]
        self.C: float = params["C"]
        self.penalty: str | None = params["penalty"]
        self.tol: float = params["tol"]
        self.max_rounds: int = params["max_rounds"]
        self.method: str = params["method"]
        self.memory: int = params["memory"]
        self._pen = _penalty_diag(self.n_params, self.fit_intercept, self.penalty)
        # Mutable state (plain data; see get_state).
        self.round = 0
        self.iteration = 0
        self.theta: np.ndarray | None = None  # last accepted point
        self.f = math.inf
        self.loss = math.inf
        #: Pooled log-likelihood Hessian (information, no C, no penalty) at the accepted
        #: point; Newton only (None for L-BFGS), for :func:`~pancreas_fl.stats.glm.glm_summary`.
        self.hess_loglik: np.ndarray | None = None
        self.g: np.ndarray | None = None
        self.direction: np.ndarray | None = None
        self.gtd = 0.0
        self.t = 1.0
        if theta0 is None:
            self.theta0 = np.zeros(self.n_params)
        else:
            self.theta0 = np.array(theta0, dtype=np.float64).reshape(-1)
            if self.theta0.shape != (self.n_params,) or not np.all(np.isfinite(self.theta0)):
                raise ConfigError(
                    f"'theta0' must be a finite array of {self.n_params} floats. "
                    f"Got shape {self.theta0.shape} instead."
                )
        self.pending: np.ndarray | None = self.theta0.copy()
        self.done = False
        self.status = "running"
        self.converged = False
        self.last_step_norm = math.inf
        self.s_hist: list[np.ndarray] = []
        self.y_hist: list[np.ndarray] = []
        self.history: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ protocol helpers
    @property
    def needs_hessian(self) -> bool:
        """Whether the hospitals must send the full p x p Hessian (Newton)."""
        return self.method == "newton"

    @property
    def curvature(self) -> str | None:
        """``hessian=`` argument for ``local_terms`` in the next round."""
        if self.done:
            return None
        return "full" if self.method == "newton" else "diag"

    def initial_theta(self) -> np.ndarray:
        """The first point to evaluate: ``theta0`` (zeros by default, as scikit-learn)."""
        return self.theta0.copy()

    def objective(self, theta: Any, loss_sum: float) -> float:
        """:math:`F(\\theta)` from the pooled loss sum (see :func:`objective`)."""
        return objective(
            theta, loss_sum, fit_intercept=self.fit_intercept, C=self.C, penalty=self.penalty
        )

    def _scale(self) -> float:
        return 1.0 if self.penalty is None else self.C

    # ------------------------------------------------------------------ linear algebra
    def _newton_direction(self, g: np.ndarray, H: np.ndarray) -> np.ndarray:
        """Solve :math:`H d = -g` (Jacobi-scaled Cholesky, ridge / lstsq fallback)."""
        diag = np.diag(H).copy()
        scale = np.sqrt(np.where(diag > 0, diag, 1.0))
        Hs = H / scale[:, None] / scale[None, :]
        Hs = 0.5 * (Hs + Hs.T)
        gs = g / scale
        ridge = 0.0
        for _ in range(12):
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

    def _precondition(self, v: np.ndarray, moments: dict[str, Any] | None) -> np.ndarray:
        """Apply :math:`M^{-1}`, the centred-diagonal approximation of the inverse Hessian.

        With :math:`s = \\sum v_i`, weighted mean :math:`m = \\sum v_i x_i / s` and centred
        weighted variances :math:`c_j = \\sum v_i (x_{ij} - m_j)^2`, the loss Hessian is
        :math:`\\sum v_i \\tilde x_i \\tilde x_i^\\top`. Dropping the centred off-diagonal
        terms gives, with an intercept, the block-diagonal matrix
        :math:`\\operatorname{diag}(C c + \\text{pen}, C s)` in the centred parametrisation
        :math:`(w, b + m^\\top w)`, and without one :math:`\\operatorname{diag}(C c + \\text{pen})
        + C s\\, m m^\\top` (inverted by Sherman-Morrison). Both cost O(p).
        """
        if moments is None:
            return v.copy()
        C = self._scale()
        s = max(float(moments["s"]), 1e-300)
        sx = np.asarray(moments["sx"], dtype=np.float64)
        sxx = np.asarray(moments["sxx"], dtype=np.float64)
        m = sx / s
        cent = np.maximum(sxx - sx * m, 1e-10 * np.maximum(sxx, 1e-300))
        pen_w = self._pen[:-1] if self.fit_intercept else self._pen
        dw = C * cent + pen_w
        dw = np.maximum(dw, 1e-12 * max(float(np.max(dw)), 1e-300))
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

    def _lbfgs_direction(self, g: np.ndarray, moments: dict[str, Any] | None) -> np.ndarray:
        """Two-loop recursion with :math:`H_0 = M^{-1}` (or scaled identity)."""
        q = g.copy()
        alphas = []
        rhos = []
        for s, y in zip(reversed(self.s_hist), reversed(self.y_hist), strict=True):
            rho = 1.0 / float(y @ s)
            a = rho * float(s @ q)
            q -= a * y
            alphas.append(a)
            rhos.append(rho)
        if moments is not None:
            r = self._precondition(q, moments)
            if self.s_hist:  # Shanno-Phua scaling of H0 in the metric of M
                s, y = self.s_hist[-1], self.y_hist[-1]
                r *= float(s @ y) / float(y @ self._precondition(y, moments))
        elif self.s_hist:
            s, y = self.s_hist[-1], self.y_hist[-1]
            r = q * (float(s @ y) / float(y @ y))
        else:
            r = q / max(float(np.max(np.abs(q))), 1.0)
        pairs = zip(self.s_hist, self.y_hist, reversed(alphas), reversed(rhos), strict=True)
        for s, y, a, rho in pairs:
            b = rho * float(y @ r)
            r += (a - b) * s
        return -r

    def _backtrack(self, f_t: float, g_t: np.ndarray | None) -> float:
        """Next trial step after a rejected step ``t``: in [t/10, t/2].

        Safeguarded cubic interpolation of :math:`\\phi(s) = F(\\theta + s d)` from
        :math:`\\phi(0), \\phi'(0), \\phi(t), \\phi'(t)` (Nocedal & Wright, eq. 3.59),
        clipped to :math:`[0.1 t, 0.5 t]`; plain halving if the data are not finite.
        """
        t = self.t
        if g_t is None or not math.isfinite(f_t):
            return 0.5 * t
        f0, d0 = self.f, self.gtd
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

    # ------------------------------------------------------------------ the round
    def update(
        self,
        theta_evaluated: Any,
        loss_sum: float,
        grad_sum: Any,
        hess_sum: Any = None,
    ) -> SolverStep:
        """Process one round: the pooled sums at ``theta_evaluated``.

        Parameters
        ----------
        theta_evaluated : array_like of shape (p,)
            The point the hospitals evaluated (must be the last ``next_theta``).
        loss_sum : float
            :math:`\\sum_i \\ell_i` over all hospitals (not multiplied by ``C``).
        grad_sum : array_like of shape (p,)
            :math:`\\sum_i (\\sigma_i - y_i) \\tilde x_i` over all hospitals.
        hess_sum : array_like of shape (p, p), dict or None
            Newton: :math:`\\sum_i \\sigma_i(1-\\sigma_i)\\tilde x_i \\tilde x_i^\\top`
            (required). L-BFGS: the ``"diag"`` moments dict of ``local_terms`` (optional;
            without it a scaled identity is used).

        Returns
        -------
        SolverStep
        """
        if self.done:
            raise RuntimeError("The federated solver is done; no further round is expected.")
        theta_e = np.asarray(theta_evaluated, dtype=np.float64).reshape(-1)
        if theta_e.shape != (self.n_params,):
            raise ValueError(
                f"theta_evaluated must have {self.n_params} entries. Got {theta_e.shape[0]}."
            )
        if self.pending is not None and not np.array_equal(theta_e, self.pending):
            raise ValueError("theta_evaluated is not the point this solver asked for.")
        g_raw = np.asarray(grad_sum, dtype=np.float64).reshape(-1)
        if g_raw.shape != (self.n_params,):
            raise ValueError(f"grad_sum must have {self.n_params} entries. Got {g_raw.shape[0]}.")
        H = None
        moments = None
        if self.method == "newton":
            if hess_sum is None or isinstance(hess_sum, dict):
                raise ValueError("method='newton' needs the full Hessian sum (hessian='full').")
            H = np.asarray(hess_sum, dtype=np.float64)
            if H.shape != (self.n_params, self.n_params):
                raise ValueError(
                    f"hess_sum must have shape ({self.n_params}, {self.n_params}). Got {H.shape}."
                )
            H = self._scale() * H + np.diag(self._pen)
        elif isinstance(hess_sum, dict):
            moments = hess_sum

        self.round += 1
        f_e = self.objective(theta_e, float(loss_sum))
        g_e = self._scale() * g_raw + self._pen * theta_e
        finite = math.isfinite(f_e) and bool(np.all(np.isfinite(g_e)))

        if self.theta is None:
            accepted = finite
            if not finite:
                raise ValueError("The objective at the initial point is not finite.")
        else:
            armijo = f_e <= self.f + _ARMIJO_C1 * self.t * self.gtd
            # F is convex along the line, so phi'(t) <= c1 phi'(0) implies
            # phi(t) - phi(0) <= t phi'(t) <= c1 t phi'(0): Armijo holds in exact arithmetic.
            # This gradient form stays decisive when the decrease of F is below its
            # floating-point resolution (near the optimum), where the value test is noise.
            dphi = float(g_e @ self.direction)
            accepted = finite and (armijo or dphi <= _ARMIJO_C1 * self.gtd)

        if accepted:
            prev_theta = self.theta
            if self.method == "lbfgs" and prev_theta is not None and self.g is not None:
                s = theta_e - prev_theta
                y = g_e - self.g
                sy = float(s @ y)
                if sy > 1e-10 * float(np.sqrt((s @ s) * (y @ y))):
                    self.s_hist.append(s)
                    self.y_hist.append(y)
                    if len(self.s_hist) > self.memory:
                        self.s_hist.pop(0)
                        self.y_hist.pop(0)
            taken = math.inf if prev_theta is None else float(np.linalg.norm(theta_e - prev_theta))
            self.theta, self.f, self.g = theta_e, f_e, g_e
            self.loss = float(loss_sum)
            if self.method == "newton":
                self.hess_loglik = np.asarray(hess_sum, dtype=np.float64).copy()
            self.iteration += 1
            if self.method == "newton":
                d = self._newton_direction(g_e, H)
            else:
                d = self._lbfgs_direction(g_e, moments)
            gtd = float(g_e @ d)
            if not gtd < 0:  # not a descent direction (should not happen): steepest descent
                if self.method == "lbfgs":
                    self.s_hist.clear()
                    self.y_hist.clear()
                    d = -self._precondition(g_e, moments)
                else:
                    d = -g_e
                gtd = float(g_e @ d)
            self.direction, self.gtd, self.t = d, gtd, 1.0
            step_norm = float(np.linalg.norm(d))
            self.last_step_norm = step_norm
            bound = self.tol * float(np.linalg.norm(theta_e))
            if self.method == "newton":
                conv = step_norm <= bound
            else:
                bound *= _LBFGS_TOL_FACTOR
                pre = float(np.linalg.norm(self._precondition(g_e, moments)))
                conv = step_norm <= bound and taken <= bound and pre <= bound
            conv = conv or not np.any(g_e) or step_norm == 0.0
            if conv:
                self.converged, self.done, self.status = True, True, "converged"
        else:
            self.t = self._backtrack(f_e, g_e if finite else None)
            if self.t < _MIN_STEP:
                self.done, self.status = True, "line_search_failed"

        if not self.done and self.round >= self.max_rounds:
            self.done, self.status = True, "max_rounds"
        if self.done:
            self.pending = None
        else:
            self.pending = self.theta + self.t * self.direction

        step = SolverStep(
            next_theta=None if self.pending is None else self.pending.copy(),
            best_theta=self.theta.copy(),
            best_objective=self.f,
            best_loss=self.loss,
            objective=f_e,
            accepted=bool(accepted),
            converged=self.converged,
            done=self.done,
            status=self.status,
            round=self.round,
            iteration=self.iteration,
            step_size=self.t,
            step_norm=self.last_step_norm,
            grad_norm=float(np.max(np.abs(self.g))) if self.g.size else 0.0,
            curvature=self.curvature,
        )
        self.history.append(
            {
                "round": step.round,
                "objective": step.objective,
                "best_objective": step.best_objective,
                "accepted": step.accepted,
                "step_size": step.step_size,
                "step_norm": step.step_norm,
                "grad_norm": step.grad_norm,
            }
        )
        return step

    # ------------------------------------------------------------------ plain-data state
    def get_state(self) -> dict[str, Any]:
        """The full state as plain Python data (lists, floats, str, bool, None)."""

        def arr(a: np.ndarray | None) -> list[Any] | None:
            return None if a is None else np.asarray(a, dtype=np.float64).tolist()

        return {
            "params": dict(self.params),
            "theta0": arr(self.theta0),
            "round": self.round,
            "iteration": self.iteration,
            "theta": arr(self.theta),
            "f": self.f,
            "loss": self.loss,
            "hess_loglik": arr(self.hess_loglik),
            "g": arr(self.g),
            "direction": arr(self.direction),
            "gtd": self.gtd,
            "t": self.t,
            "pending": arr(self.pending),
            "done": self.done,
            "status": self.status,
            "converged": self.converged,
            "last_step_norm": self.last_step_norm,
            "s_hist": [arr(s) for s in self.s_hist],
            "y_hist": [arr(y) for y in self.y_hist],
            "history": [dict(h) for h in self.history],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FederatedNewton:
        """Rebuild a solver from :meth:`get_state` output."""
        params = dict(state["params"])
        n_params = params.pop("n_params")
        solver = cls(n_params, theta0=state["theta0"], **params)

        def arr(a: Any) -> np.ndarray | None:
            return None if a is None else np.asarray(a, dtype=np.float64)

        solver.round = int(state["round"])
        solver.iteration = int(state["iteration"])
        solver.theta = arr(state["theta"])
        solver.f = float(state["f"])
        solver.loss = float(state["loss"])
        solver.hess_loglik = arr(state["hess_loglik"])
        solver.g = arr(state["g"])
        solver.direction = arr(state["direction"])
        solver.gtd = float(state["gtd"])
        solver.t = float(state["t"])
        solver.pending = arr(state["pending"])
        solver.done = bool(state["done"])
        solver.status = str(state["status"])
        solver.converged = bool(state["converged"])
        solver.last_step_norm = float(state["last_step_norm"])
        solver.s_hist = [np.asarray(s, dtype=np.float64) for s in state["s_hist"]]
        solver.y_hist = [np.asarray(y, dtype=np.float64) for y in state["y_hist"]]
        solver.history = [dict(h) for h in state["history"]]
        return solver
