r"""Federated solver for L2-penalized logistic regression (runs at the aggregator).

The aggregator minimises scikit-learn's objective on the *pooled* data

.. math::

    F(\theta) = C \sum_{k} \sum_{i \in \text{hospital } k} \ell_i(\theta)
                 + \tfrac12 \lVert w \rVert^2,
    \qquad \theta = (w, b),

(``penalty=None`` or ``C=inf``: :math:`F = \sum \ell_i`; the intercept :math:`b` is never
penalized). Each hospital returns the sums of :func:`~pancreas_fl.stats.logistic.local_terms`
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
its terms at it, and :meth:`FederatedSolver.update` decides the next point. Its steps follow
scikit-learn's ``NewtonSolver`` (``sklearn/linear_model/_glm/_newton_solver.py``), turned
inside out because each evaluation of :math:`F` costs a round:

1. check the round's sums (the point must be the one asked for) and form :math:`F`,
   :math:`\nabla F` (and :math:`\nabla^2 F`);
2. line search (:mod:`~pancreas_fl.stats.line_search`): accept the evaluated point or shrink
   the step and ask for another trial point;
3. at an accepted point, :meth:`~FederatedSolver.inner_solve` computes the next direction and
   :meth:`~FederatedSolver.check_convergence` decides whether to stop;
4. :meth:`~FederatedSolver.finalize` reports the round as a :class:`SolverStep`.

Two methods give the direction :math:`d`:

* ``"newton"`` (Newton = Fisher scoring for the logit link):
  :math:`d = -(\nabla^2 F)^{-1} \nabla F`, see :mod:`~pancreas_fl.stats.newton`.
* ``"lbfgs"``: limited-memory BFGS for many parameters, see :mod:`~pancreas_fl.stats.lbfgs`.
  Hospitals send only O(p) numbers: the gradient and the weighted moments that build a
  "centred diagonal" preconditioner, the initial inverse Hessian of the two-loop recursion.

Both are safeguarded by Armijo backtracking, so the objective of accepted iterates never
increases (in exact arithmetic; see :mod:`~pancreas_fl.stats.line_search` for the
floating-point fine print), and ``best_theta`` is always an accepted (evaluated) point.

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
from dataclasses import dataclass
from typing import Any

import numpy as np

from pancreas_fl._validation import check_bool, check_choice, check_int, check_real
from pancreas_fl.errors import ConfigError
from pancreas_fl.stats.lbfgs import CentredDiagonal, LBFGSMemory
from pancreas_fl.stats.line_search import ArmijoLineSearch
from pancreas_fl.stats.newton import newton_direction

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

#: Default relative step tolerance (see the module docstring).
DEFAULT_TOL = 1e-8

_METHODS = ("auto", "lbfgs", "newton")
#: L-BFGS's step underestimates the distance to the optimum along poorly explored
#: directions, so it stops at ``tol * _LBFGS_TOL_FACTOR`` (measured: relative error <= 5e-9
#: at the default tol on a 300-feature set, vs up to 3e-7 without the factor).
_LBFGS_TOL_FACTOR = 1e-2
#: A gradient whose entries are all below the smallest normal float is zero for the solver.
_TINY = np.finfo(np.float64).tiny


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
    hess_loglik : numpy.ndarray or None
        Pooled log-likelihood Hessian (information, no ``C``, no penalty) at ``theta``;
        Newton only (``None`` for L-BFGS), for :func:`~pancreas_fl.stats.glm.glm_summary`.
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

    Notes
    -----
    Protocol: ``theta = solver.initial_theta()``; each round every hospital calls
    ``local_terms(X, y, theta, fit_intercept=..., hessian=solver.curvature)``; the aggregator
    sums them (:func:`~pancreas_fl.stats.logistic.aggregate_terms`) and calls
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
        self.line_search = ArmijoLineSearch()
        self.lbfgs = LBFGSMemory(params["memory"])

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
        """``hessian=`` argument for ``local_terms`` in the next round (``None`` when done)."""
        if self.done:
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

    def _scale(self) -> float:
        """Return the factor of the loss sum in :math:`F`: ``C``, or 1 without a penalty."""
        return 1.0 if self.penalty is None else self.C

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
        hess_sum : array_like of shape (p, p), dict or None
            Newton: :math:`\sum_i \sigma_i(1-\sigma_i)\tilde x_i \tilde x_i^\top`
            (required). L-BFGS: the ``"diag"`` moments dict of ``local_terms`` (optional;
            without it a scaled identity is used).

        Returns
        -------
        SolverStep
        """
        theta, g_raw, hessian, moments = self._check_round(theta_evaluated, grad_sum, hess_sum)
        self.round += 1
        f = self.objective(theta, float(loss_sum))
        g = self._scale() * g_raw + self._pen * theta
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
        if hess_sum is None or isinstance(hess_sum, dict):
            raise ValueError("method='newton' needs the full Hessian sum (hessian='full').")
        H = np.asarray(hess_sum, dtype=np.float64)
        if H.shape != (p, p):
            raise ValueError(f"hess_sum must have shape ({p}, {p}). Got {H.shape}.")
        return theta, g_raw, self._scale() * H + np.diag(self._pen), None

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
        if self.method == "newton":
            self.hess_loglik = np.asarray(hess_sum, dtype=np.float64).copy()
        self.iteration += 1
        return taken

    def _preconditioner(self, moments: dict[str, Any] | None) -> CentredDiagonal | None:
        """:math:`M^{-1}` from the pooled moments (L-BFGS), or ``None`` without them."""
        if moments is None:
            return None
        return CentredDiagonal(
            moments, C=self._scale(), penalty_diag=self._pen, fit_intercept=self.fit_intercept
        )

    def inner_solve(
        self, g: np.ndarray, hessian: np.ndarray | None, precondition: CentredDiagonal | None
    ) -> float:
        r"""Find the direction :math:`d` from the accepted point; start the line search on it.

        Newton: :math:`\nabla^2 F\, d = -\nabla F`. L-BFGS: :math:`d = -H_k \nabla F` by the
        two-loop recursion. A gradient that is zero at floating-point resolution (every entry
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
        if self.method == "newton":
            d = newton_direction(g, hessian)
        else:
            d = self.lbfgs.direction(g, precondition)
        if not float(g @ d) < 0:
            if self.method == "lbfgs":
                self.lbfgs.clear()
                return -(g.copy() if precondition is None else precondition(g))
            return -g
        return d

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
        bound = self.tol * float(np.linalg.norm(theta))
        if step_norm == 0.0 or not np.any(g):
            converged = True
        elif self.method == "newton":
            converged = step_norm <= bound
        else:
            bound *= _LBFGS_TOL_FACTOR
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
        )
