r"""exact: the pooled scikit-learn fit, by federated Newton (or L-BFGS) on exact sums.

Every round the aggregator names a point :math:`\theta`; every hospital returns the sums of
its patients' log-loss, gradient and curvature terms at it
(:func:`~pancreas_fl.exact.local_terms`); the aggregator adds them, which gives the pooled
quantities exactly, and lets :class:`~pancreas_fl.exact.FederatedSolver` choose the next
point. The result equals the pooled fit up to the solver's tolerance, and comes with the GLM
statistics (standard errors, z, p-values) of the pooled information matrix when Newton ran.

Rounds:

* round 0: the hospitals evaluate the start point (zeros). With ``standardize=True`` they
  send per-feature moments instead; the aggregator broadcasts the pooled scaler and the start
  point, and the fit begins in round 1.
* then: one evaluation per round, until the solver converges, the line search cannot lower
  the objective, or ``max_iter + 1`` rounds have run.
* above the curvature budget, L-BFGS with Böhning's bound (:mod:`~pancreas_fl.exact.bohning`):
  the first rounds also carry the rows of the hospitals' Gram triangle, one chunk a round.
* ``penalty="firth"`` (:mod:`~pancreas_fl.exact.firth`): the hospitals add their
  third-moment sum to their sums, and the solver (unpenalized, ``C=inf``) is handed Firth's
  objective :math:`-\ell^*` and its gradient in place of the log-loss sum and its gradient.
  Above :data:`~pancreas_fl.exact.firth.TENSOR_LIMIT` parameters an evaluation takes two
  rounds (the sums, then the hat-weighted sums), and ``max_iter`` counts evaluations.

What crosses is in :mod:`pancreas_fl.exact.messages` (:class:`ExactUpdate`,
:class:`ExactBroadcast`).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import replace

import numpy as np

from pancreas_fl.exact import firth
from pancreas_fl.exact.bohning import BohningRounds, local_gram_rows
from pancreas_fl.exact.curvature import CurvaturePlan, plan_curvature
from pancreas_fl.exact.firth_rounds import FirthRounds
from pancreas_fl.exact.glm import format_aliases, glm_summary, null_deviance
from pancreas_fl.exact.messages import ExactBroadcast, ExactUpdate
from pancreas_fl.exact.packed import PackedSymmetric, diagonal, kept
from pancreas_fl.exact.reuse import reuses_curvature
from pancreas_fl.exact.separation import column_rms, count_extreme
from pancreas_fl.exact.solver import FederatedSolver, SolverStep
from pancreas_fl.exact.standardize import (
    combine_moments,
    local_moments,
    scale_from_var,
    to_raw_space,
)
from pancreas_fl.exact.sums import aggregate_terms, local_terms
from pancreas_fl.exact.wire import certify
from pancreas_fl.handshake import Agreement
from pancreas_fl.params import LBFGS_MAX_ITER, Params
from pancreas_fl.reader import HospitalData
from pancreas_fl.rounds import MAX_ITER_MESSAGE, Log, RoundLog, final_model
from pancreas_fl.wire import UpdateSpec

__all__ = ["ExactAggregator", "ExactHospital"]

_STANDARDIZED_NOTE = " Coefficients refer to standardized features (per standard deviation)."


def curvature_plan(n_params: int, params: Params) -> CurvaturePlan:
    """Return the curvature plan both sides derive from the shared parameters.

    See :func:`~pancreas_fl.exact.curvature.plan_curvature`; Firth's penalty needs the
    Hessian to full precision in every round, so it never takes the float32 triangle.
    """
    return plan_curvature(
        n_params,
        params.solver,
        max_message_mb=params.max_message_mb,
        max_memory_mb=params.max_memory_mb,
        float32=params.penalty != "firth",
    )


def _number(x: float) -> float | None:
    """Return a finite float for the history, ``None`` for what is not known yet (inf, NaN)."""
    return float(x) if math.isfinite(x) else None


# ----------------------------------------------------------------------- at each hospital
class ExactHospital:
    """The hospital side: sums of per-patient terms at the point the aggregator asks for.

    Parameters
    ----------
    data : HospitalData
        The hospital's data, parsed and validated once (round 0).
    params : Params

    Attributes
    ----------
    scaler_ : dict or None
        The pooled standardization (``mean``, ``scale``) the sums are computed with, from
        round 1 on with ``standardize=True``; ``None`` for the raw features. The features are
        standardized block by block in every round, never kept as a second matrix.
    """

    #: Sums from a hospital whose patients all have one label are still exact.
    requires_both_classes = False

    def __init__(self, data: HospitalData, params: Params) -> None:
        self.X, self.y = data.X, data.y  # the hospital's one matrix, not a copy
        self.fit_intercept = params.fit_intercept
        self.standardize = params.standardize
        self.solver = params.solver
        self.penalty = params.penalty
        self.params = params
        self.scaler_: dict | None = None

    def update(self, broadcast: ExactBroadcast | None) -> ExactUpdate:
        """One round at the hospital.

        Parameters
        ----------
        broadcast : ExactBroadcast or None
            ``None`` in the first round.

        Returns
        -------
        ExactUpdate
        """
        if broadcast is None:
            if self.standardize:  # per-feature moments first; the fit starts next round
                return {
                    "terms": None,
                    "moments": local_moments(self.X),
                    "n_extreme": None,
                    "firth": None,
                }
            theta = np.zeros(self.X.shape[1] + self.fit_intercept)
            # No broadcast yet: plan as the aggregator will, to send the curvature it needs.
            plan = curvature_plan(theta.size, self.params)
            curvature, gram = plan.encoding, None
            if plan.gram_rows:  # Böhning's bound: the moments and the Gram's first rows
                curvature, gram = "diag", plan.gram_rows[0]
            request = firth.first_request(theta.size) if self.penalty == "firth" else None
        else:
            self.scaler_ = broadcast["scaler"]
            theta, curvature = broadcast["next_theta"], broadcast["curvature"]
            gram = broadcast.get("gram")  # rows of the Gram triangle (Böhning's bound)
            request = firth.check_request(broadcast.get("firth"), len(theta))
        extra = firth.local_sums(  # Firth's sums, as the request asks (else None)
            self.X, theta, request, fit_intercept=self.fit_intercept, **(self.scaler_ or {})
        )
        if request is not None and request["send"] == "hat":  # the 2nd of two rounds
            return {"terms": None, "moments": None, "n_extreme": None, "firth": extra}
        terms = local_terms(
            self.X,
            self.y,
            theta,
            fit_intercept=self.fit_intercept,
            hessian=None if curvature == "none" else curvature,
            **(self.scaler_ or {}),
        )
        update = {
            "terms": terms,
            "moments": None,
            "n_extreme": self._n_extreme(theta),
            "firth": extra,
        }
        if gram is not None:
            update["gram"] = local_gram_rows(
                self.X, gram, fit_intercept=self.fit_intercept, **(self.scaler_ or {})
            )
        return update

    def _n_extreme(self, theta: np.ndarray) -> int:
        """Patients whose fitted probability at ``theta`` is numerically 0 or 1 (a count).

        With the pooled standardization the linear predictor is computed on the raw features
        with the coefficients mapped to them, so no standardized copy is made.
        """
        w, b = (theta[:-1], float(theta[-1])) if self.fit_intercept else (theta, 0.0)
        if self.scaler_ is not None:
            w = w / self.scaler_["scale"]
            b -= float(self.scaler_["mean"] @ w)
        return count_extreme(self.X @ w + b)


# ----------------------------------------------------------------------- at the aggregator
class ExactAggregator:
    r"""The aggregator side: add the sums, step the solver, report the fit and its statistics.

    Parameters
    ----------
    params : Params
    agreement : Agreement
        The hospitals' column names and counts (round 0).
    log : callable
        ``flame.flame_log``.
    max_iter_given : bool
        Whether the analyst set ``max_iter``. If not, and the solver is L-BFGS (many
        features, or ``solver='lbfgs'``), the default becomes ``LBFGS_MAX_ITER``: every
        line-search step costs a round. The solver is known only now that the number of
        columns is.

    Attributes
    ----------
    params : Params
        As given, with that default applied.
    solver : FederatedSolver
    rounds : RoundLog
        The history, one entry per round.
    scaler_ : Scaler or None
        The pooled standardization (``standardize=True``, from round 0 on).
    previous_ : numpy.ndarray or None
        The point evaluated in the last round.
    step_ : SolverStep or None
        The solver's last report.
    stop_reason_ : {'tolerance', 'max_iter', 'line_search'} or None
        Why the analysis stopped (``None`` while it runs).
    path_ : collections.deque of numpy.ndarray
        The last accepted points (at most ``PATH_LENGTH``), oldest first: the diverging
        coefficients of a separated unpenalized fit are named from them.
    origin_ : numpy.ndarray or None
        The first accepted point: a diverging coefficient's direction is its move from there.
    grad_ : numpy.ndarray or None
        The pooled log-likelihood gradient at the last accepted point.
    n_extreme_ : int or None
        Patients whose fitted probability is numerically 0 or 1 at the last accepted point.
    info0_ : numpy.ndarray, PackedSymmetric or None
        The pooled information at the start point (zeros): :math:`\tilde X^\top\tilde X/4`
        of the pooled design, on which aliasing is judged.
    scale_ : numpy.ndarray or None
        Root mean square of each design column (from ``info0_``), in which the iterates'
        moves are measured.
    """

    #: Accepted points kept to judge which coefficients diverge.
    PATH_LENGTH = 5

    def __init__(self, params: Params, agreement: Agreement, log: Log, *, max_iter_given: bool):
        n_params = len(agreement.feature_names) + params.fit_intercept
        self.plan = curvature_plan(n_params, params)
        method = self.plan.method
        if method == "lbfgs" and not max_iter_given:
            params = replace(params, max_iter=LBFGS_MAX_ITER)
        self.params = params
        self.agreement = agreement
        self.log = log
        self.rounds = RoundLog(agreement.n_total, log)
        self.solver = FederatedSolver(
            n_params,
            fit_intercept=params.fit_intercept,
            C=params.C,
            tol=params.tol,
            max_rounds=params.max_iter + 1,
            method=method,
            reuse=reuses_curvature(  # the chord method (exact/reuse.py): wide panels only
                n_params,
                self.plan.encoding,
                params.reuse_curvature,
                firth=params.penalty == "firth",
            ),
        )
        self.scaler_: dict | None = None
        self.previous_: np.ndarray | None = None
        self.step_: SolverStep | None = None
        self.stop_reason_: str | None = None
        self.path_: deque[np.ndarray] = deque(maxlen=self.PATH_LENGTH)
        self.origin_: np.ndarray | None = None
        self.grad_: np.ndarray | None = None
        self.n_extreme_: int | None = None
        self.info0_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        # why the fit stopped, while the statistics rounds run (see ExactAggregator._refined),
        # and the curvature each of them still asks for at the estimate
        self.refining_: str | None = None
        self.statistics_rounds_: list[str] = []
        self.trace0_: float | None = None
        self.firth_: FirthRounds | None = None  # penalty="firth" (exact/firth_rounds.py)
        # above the curvature budget: Böhning's bound, shared once (exact/bohning.py)
        self.bohning_: BohningRounds | None = None
        if self.plan.gram_rows:
            self.bohning_ = BohningRounds(n_params, self.plan.gram_rows)
        if params.penalty == "firth":
            terms = [*agreement.feature_names, *(["intercept"] if params.fit_intercept else [])]
            self.firth_ = FirthRounds(n_params, method, terms, fit_intercept=params.fit_intercept)

    def update_spec(self) -> UpdateSpec:
        """Return what this round's updates must be: moments, or the sums at the point asked for."""
        d, p = len(self.agreement.feature_names), self.params
        if p.standardize and self.scaler_ is None:
            return UpdateSpec("moments", d, p.fit_intercept)
        at_zero = not np.any(self.solver.pending)
        if self.firth_ is not None and self.firth_.request["send"] == "hat":
            return UpdateSpec("hat", d, p.fit_intercept)  # the second of two Firth rounds
        curvature = self.solver.curvature
        if self.refining_:  # a statistics round
            curvature, at_zero = self.statistics_rounds_[0], False
        elif curvature == "full":  # Newton's curvature, in the plan's encoding
            curvature = self.plan.encoding
        elif curvature is None:  # a round on the kept Hessian (exact/reuse.py)
            curvature = "none"
        elif self.bohning_ is not None:
            curvature = self.bohning_.curvature
            spec = UpdateSpec("terms", d, p.fit_intercept, curvature, at_zero=at_zero)
            return replace(spec, scaler=self.scaler_, gram=self.bohning_.rows)
        spec = UpdateSpec("terms", d, p.fit_intercept, curvature, at_zero=at_zero)
        third = self.firth_ is not None and self.firth_.request["send"] == "third"
        return replace(spec, scaler=self.scaler_, firth_third=third)

    def aggregate(self, updates: dict[str, ExactUpdate], num_iterations: int):
        """One round at the aggregator.

        Parameters
        ----------
        updates : dict of str to ExactUpdate
            By node id, in the order of the node ids.
        num_iterations : int
            The round counter (0 in the first round).

        Returns
        -------
        ExactBroadcast, dict or ndarray
            The next point while the analysis runs; in its last round the model dict (or
            its bare coefficients with ``output='coef'``).
        """
        if self.params.standardize and self.scaler_ is None:
            return self._pool_moments(updates, num_iterations)
        if self.refining_:  # a statistics round (float32 or reused curvature; never Firth)
            total = aggregate_terms([u["terms"] for u in updates.values()], keep_packed=True)
            return self._refined(total, num_iterations)
        theta = self.solver.pending
        if self.firth_ is not None:
            pooled = self.firth_.pool(updates, num_iterations)
            if pooled is None:  # the first round of a two-round Firth evaluation
                self.rounds.record(num_iterations, None, None)
                return self._broadcast(theta, "full")
            total, updates, loss, grad = pooled
        else:  # packed triangles stay packed: the solver unpacks their sum once
            total = aggregate_terms([u["terms"] for u in updates.values()], keep_packed=True)
            loss, grad = total["loss"], total["grad"]
        if self.bohning_ is not None:  # the round's Gram rows; the initial inverse Hessian
            self.bohning_.pool(updates, self.solver, total["hess"])
        self.step_ = step = self.solver.update(theta, loss, grad, total["hess"])
        self._remember(theta, total, updates, accepted=step.accepted)
        delta = None if self.previous_ is None else float(np.linalg.norm(theta - self.previous_))
        self.previous_ = theta
        # a rejected trial point (line search) is evaluated but not taken
        self.rounds.record(
            num_iterations,
            delta,
            total["loss"],
            accepted=step.accepted,
            # the stopping rule: step_norm <= step_bound at the best point (report.plot_png)
            step_norm=_number(step.step_norm),
            step_bound=_number(step.step_bound),
            grad_norm=_number(step.grad_norm),
        )
        # a two-round Firth evaluation counts once against max_iter
        two_round = self.firth_ is not None and self.firth_.two_round
        self.stop_reason_ = self._decide(
            step, self.solver.round - 1 if two_round else num_iterations
        )
        if self.stop_reason_ is None:
            return self._broadcast(step.next_theta, step.curvature)
        self.statistics_rounds_ = self._statistics_rounds(step.best_theta)
        if self.statistics_rounds_ and self.params.output == "model":
            self.refining_, self.stop_reason_ = self.stop_reason_, None
            return self._broadcast(step.best_theta, self.statistics_rounds_[0])
        return self._final()

    def _statistics_rounds(self, theta: np.ndarray) -> list[str]:
        """Return the curvature the GLM statistics still need at the estimate, round by round.

        They need the Hessian at the estimate to full precision. After rounds on a kept
        Hessian (``exact/reuse.py``) the estimate may lack it: one round for it in the plan's
        encoding. With float32 one round for the residual of the triangles sent there.
        """
        rounds = []
        reuse = self.solver.reuse
        if reuse is not None and not reuse.fresh_at_point(theta):
            rounds.append(self.plan.encoding)
        if self.plan.statistics_round:
            rounds.append("residual32")
        return rounds

    def _refined(self, total: dict, num_iterations: int):
        """Close a statistics round: the Hessian at the estimate, or its float32 residual."""
        if self.statistics_rounds_.pop(0) == "residual32":
            self.solver.hess_loglik += total["hess"]
        else:  # the estimate was evaluated on a kept Hessian: its own, now
            self.solver.hess_loglik = kept(total["hess"])
        self.rounds.record(num_iterations, 0.0, total["loss"], accepted=False)
        if self.statistics_rounds_:
            return self._broadcast(self.step_.best_theta, self.statistics_rounds_[0])
        self.stop_reason_ = self.refining_
        return self._final()

    def _final(self):
        """Return the final result: the model dict, or its bare coefficients."""
        model = self._model()
        return model if self.params.output == "model" else model["coef"]

    def _remember(self, theta: np.ndarray, total: dict, updates, *, accepted: bool) -> None:
        """Keep what the statistics need of an accepted point (aggregates only)."""
        hess = total["hess"]
        # the certificate's curvature bound (the start point always carries curvature)
        if self.trace0_ is None and hess is not None and not np.any(theta):
            diag = hess if isinstance(hess, dict) else {"s": 0.0, "sxx": diagonal(hess)}
            self.trace0_ = float(diag["s"] + np.sum(diag["sxx"]))
        if (
            self.info0_ is None
            and isinstance(hess, (np.ndarray, PackedSymmetric))
            and not np.any(theta)
        ):
            self.info0_ = kept(hess)
            self.scale_ = column_rms(hess, self.agreement.n_total)
        if not accepted:
            return
        if self.origin_ is None:
            self.origin_ = theta.copy()
        self.path_.append(theta.copy())
        self.grad_ = np.asarray(total["grad"], dtype=np.float64).copy()
        counts = [update.get("n_extreme") for update in updates.values()]
        self.n_extreme_ = None if None in counts else int(sum(counts))

    def _pool_moments(self, updates: dict[str, ExactUpdate], num_iterations: int):
        """Round 0 of a standardized fit: the pooled scaler, and the start point."""
        n, mean, var = combine_moments([update["moments"] for update in updates.values()])
        self.scaler_ = {"mean": mean, "scale": scale_from_var(var, mean, n)}
        self.rounds.record(num_iterations, None, None)
        return self._broadcast(self.solver.initial_theta(), self.solver.curvature)

    def _broadcast(self, theta: np.ndarray, curvature: str) -> ExactBroadcast:
        """Return what the hospitals need for the next round (no patient-level content).

        Newton's curvature (the solver's ``"full"``) crosses in the plan's encoding; its
        ``None`` as ``"none"``: the gradient alone (a round on the kept Hessian,
        ``exact/reuse.py``).
        """
        if curvature == "full":
            curvature = self.plan.encoding
        elif curvature is None:
            curvature = "none"
        broadcast = {
            "next_theta": theta,
            "curvature": curvature,
            "scaler": self.scaler_,
            "firth": None if self.firth_ is None else self.firth_.request,
        }
        if self.bohning_ is not None:  # Böhning's bound: its next rows while they cross
            broadcast["curvature"] = self.bohning_.curvature
            if self.bohning_.rows is not None:
                broadcast["gram"] = self.bohning_.rows
        return broadcast

    def _decide(self, step: SolverStep, num_iterations: int) -> str | None:
        if step.converged and not self._certified(step):
            return "uncertified"
        if step.converged:
            return "tolerance"
        if step.status == "line_search_failed":
            return "line_search"
        if step.done or num_iterations > self.params.max_iter - 1:
            return "max_iter"
        return None

    def _certified(self, step: SolverStep) -> bool:
        """Whether the hospitals' gradient sums at the best point certify convergence.

        :func:`pancreas_fl.wire.certify`: no extra round, since the best point is one the
        hospitals evaluated, and the solver keeps the penalized gradient they sent there.
        """
        C, finite = self.params.C, math.isfinite(self.params.C)
        d = len(self.agreement.feature_names)
        return certify(
            self.solver.g,
            step.best_theta,
            C=C if finite else 1.0,
            trace0=self.trace0_ or 0.0,
            n_penalized=d if finite else 0,
            tol=self.params.tol,
            n_total=self.agreement.n_total,
        )

    def stop_message(self, reason: str) -> tuple[str, str]:
        """Return the log line (message, log type) for ``reason``."""
        if reason == "tolerance":
            return "The solver step is smaller than the tolerance: converged", "info"
        if reason == "uncertified":
            return (
                "The solver reported convergence, but the hospitals' gradient sums at the "
                "final estimate are larger than a converged fit allows: the fit did not "
                "converge (a damaged message?). Do not use the result.",
                "warn",
            )
        if reason == "line_search":
            return (
                "The line search cannot lower the objective any further (floating-point "
                "resolution): returning the best point found.",
                "warn",
            )
        return MAX_ITER_MESSAGE.format(max_iter=self.params.max_iter), "info"

    # ------------------------------------------------------------------ the final model
    def _model(self) -> dict:
        """Build the model dict: raw-space coefficients, standardization and GLM statistics."""
        theta = self.step_.best_theta
        d = len(self.agreement.feature_names)
        coef, intercept = theta[:d], (theta[d:] if self.params.fit_intercept else None)
        statistics = self._statistics(theta)
        standardization = None
        if self.scaler_ is not None:
            standardization = {
                **self.scaler_,
                "coef": coef.reshape(1, -1),
                "intercept": None if intercept is None else intercept.copy(),
            }
            raw_coef, raw_intercept = to_raw_space(coef, intercept, **self.scaler_)
            coef, intercept = raw_coef, np.array([raw_intercept])
            if statistics is not None:
                statistics["note"] += _STANDARDIZED_NOTE
        if statistics is not None:
            self._report(statistics)
        return final_model(
            self.params,
            self.agreement,
            self.rounds,
            self.stop_reason_,
            coef,
            intercept,
            standardization=standardization,
            statistics=statistics,
        )

    def _statistics(self, theta: np.ndarray) -> dict | None:
        """Return the GLM table from the pooled information matrix (Newton), else ``None``."""
        info = self.solver.hess_loglik
        if info is None:
            self.log(
                "no standard errors: the Hessian was not shared (gradient-only solver)",
                log_type="notice",
            )
            return None
        p, n = self.params, self.agreement.n_total
        if self.firth_ is not None:
            return self.firth_.statistics(
                theta,
                info,
                self.step_.best_objective,
                design_info=self.info0_,
                feature_names=self.agreement.feature_names,
                n=n,
                n_positive=self.agreement.n_positive,
                rounds=len(self.rounds.history),
            )
        return glm_summary(
            theta,
            info,
            feature_names=self.agreement.feature_names,
            fit_intercept=p.fit_intercept,
            n=n,
            deviance=2.0 * self.step_.best_loss,
            null_deviance=null_deviance(
                n, self.agreement.n_positive, fit_intercept=p.fit_intercept
            ),
            C=p.C,
            penalty="l2",
            rounds=len(self.rounds.history),
            grad=self.grad_,
            converged=self.stop_reason_ == "tolerance",
            tol=p.tol,
            n_extreme=self.n_extreme_,
            path=np.array(self.path_),
            scale=self.scale_,
            origin=self.origin_,
            design_info=self.info0_,
        )

    def _report(self, statistics: dict) -> None:
        """Log what the analyst must know about the statistics.

        Aliased terms, a fit without a valid Wald table (separation), a fit that stopped before
        converging.
        """
        if statistics["aliased"]:
            self.log(
                "aliased terms (perfectly collinear with earlier ones, not estimable): "
                + format_aliases(statistics["aliases"]),
                log_type="warn",
            )
        if not statistics["wald"]:
            self.log(statistics["note"], log_type="warn")
        elif self.stop_reason_ != "tolerance":
            if statistics["penalized"]:
                self._warn_unconverged(statistics)
            else:  # the estimable part converged; the solver wandered along aliased terms
                self.log(
                    "the estimable part of the fit converged; the solver ran on only along "
                    "the aliased terms' directions, which change no prediction",
                    log_type="notice",
                )

    def _warn_unconverged(self, statistics: dict) -> None:
        advice = (
            "Raise max_iter."
            if self.firth_ is not None
            else "Without a penalty (C=inf) this usually means the classes are "
            "(quasi-)separable; use penalty='firth' (or a finite C)."
        )
        warning = (
            f"The fit stopped before converging ({self.stop_reason_}): standard errors "
            f"and p-values are unreliable. {advice}"
        )
        statistics["note"] += " " + warning
        self.log(warning, log_type="warn")
