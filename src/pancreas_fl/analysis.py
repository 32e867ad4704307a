"""The FLAME node classes: thin adapters between the star pattern and the statistics.

:class:`PancreasAnalyzer` runs at every hospital, :class:`FederatedLogisticRegression` at the
aggregator. They subclass the star-pattern bases chosen by :mod:`pancreas_fl.sdk` (the real
FLAME SDK when it is installed, else the offline engine) and hold no statistics of their own:
the numerics live in :mod:`pancreas_fl.stats`, parsing and validation in
:mod:`pancreas_fl.data`, the disclosure guards in :mod:`pancreas_fl.privacy`.

What crosses between nodes (every message is a plain dict of numbers, arrays and names, so it
survives FLAME's pickle transport):

* hospital -> aggregator: the hospital's node id, its patient count (and number of positives),
  its column names, the shared parameters, and the strategy's aggregate: local coefficients
  (FedAvg) or sums of per-patient loss, gradient and curvature terms (exact), or per-feature
  sums for standardization (exact, first round). Never a patient record.
* aggregator -> hospitals: the global model (FedAvg: the tutorial's bare coefficient array).

With default parameters the pair reproduces the FLAME tutorial bit for bit: one warm-started
lbfgs iteration per hospital and round, the plain mean of the coefficient arrays, stop when
the L2 change is at most 1e-8 or after 11 rounds, and a ``(1, n_features)`` array as the final
result.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from pancreas_fl import results
from pancreas_fl.data import check_same_columns, load_hospital_data
from pancreas_fl.errors import ConfigError, DataError
from pancreas_fl.params import LBFGS_MAX_ITER, SHARED_PARAMS, resolve_params
from pancreas_fl.privacy import check_disclosure
from pancreas_fl.sdk import StarAggregator, StarAnalyzer
from pancreas_fl.stats import (
    FederatedSolver,
    aggregate_terms,
    combine_moments,
    federated_mean,
    glm_summary,
    l2_change,
    local_moments,
    local_step,
    local_terms,
    make_local_model,
    null_deviance,
    scale_from_var,
    standardize,
    stop_reason,
    to_raw_space,
    validate_solver_params,
)

__all__ = ["FederatedLogisticRegression", "PancreasAnalyzer"]


def _fail(flame, err: Exception) -> None:
    """Report a user error (bad data or parameters) as this node's failure, in one line.

    ``log_type="error"`` is chosen on purpose and only here: in production (flamesdk 0.5/0.6)
    it marks the node *failed* at once, so the platform's orchestrator stops the analysis
    instead of leaving the other nodes waiting for a message that will never come. (It then
    blocks the node for a while; the orchestrator tears the pod down meanwhile.) Everything
    else the analysis logs uses the production types ``info``, ``notice`` and ``warn``.
    """
    flame.flame_log(str(err), log_type="error")


class PancreasAnalyzer(StarAnalyzer):
    """A hospital: parses its CSV once, then returns one aggregate per round.

    Parameters
    ----------
    flame : FlameCoreSDK
        The node's core object, passed by ``StarModel``.
    **params
        The analysis parameters (``analyzer_kwargs``): ``strategy``, ``dataset``, ``label``,
        ``C``, ``fit_intercept``, ``local_steps``, ``standardize``, ``min_patients``,
        ``max_param_ratio`` and the aggregator's ones (accepted and ignored here, so one dict
        can serve both roles). See :class:`pancreas_fl.params.Params`. They are validated in
        the first round.

    Attributes
    ----------
    params_ : Params
        The validated parameters (after the first round).
    data_ : HospitalData
        The parsed, validated data (after the first round; never sent anywhere).
    """

    def __init__(self, flame, **params):
        super().__init__(flame)
        self.params = params

    def analysis_method(self, data, aggregator_results):
        try:
            if self.num_iterations == 0:
                self._setup(data)
            if self.params_.strategy == "fedavg":
                update = self._fedavg_round(aggregator_results)
            else:
                update = self._exact_round(aggregator_results)
        except DataError as err:
            err = err.with_context(node=self.id)
            _fail(self.flame, err)
            raise err from None
        except ConfigError as err:
            _fail(self.flame, err)
            raise
        return {
            "node": self.id,
            "n": self.data_.n_samples,
            "n_pos": self.data_.n_positive,
            **update,
        }

    # ------------------------------------------------------------------ first round
    def _setup(self, data) -> None:
        self.params_ = p = resolve_params(**self.params)
        self.data_ = load_hospital_data(
            data,
            dataset=p.dataset,
            label=p.label,
            require_both_classes=p.strategy == "fedavg",
        )
        d = self.data_
        check_disclosure(
            d.n_samples,
            d.n_features + p.fit_intercept,
            n_positive=d.n_positive,
            min_patients=p.min_patients,
            max_param_ratio=p.max_param_ratio,
            file=p.dataset,
        )
        self.flame.flame_log(
            f"{p.dataset}: {d.n_samples} patients ({d.n_positive} with label 1), "
            f"{d.n_features} features",
            log_type="info",
        )
        if p.strategy == "fedavg":  # one estimator per hospital, warm-started every round
            self._model = make_local_model(
                C=p.C, fit_intercept=p.fit_intercept, local_steps=p.local_steps
            )
        self._X = None  # the design for the exact strategy (standardized once, if asked)

    def _first_message(self) -> dict:
        return {"columns": list(self.data_.columns), "params": self.params_.shared()}

    # ------------------------------------------------------------------ FedAvg
    def _fedavg_round(self, aggregator_results) -> dict:
        p = self.params_
        coef, intercept = results.global_parameters(aggregator_results)
        X, y = self.data_.to_numpy()
        # The pooled log-loss of the model this round starts from (zeros in the first round).
        start = np.zeros(self.data_.n_features + p.fit_intercept)
        if coef is not None:
            start = np.concatenate([coef.ravel(), [] if intercept is None else intercept.ravel()])
        loss = local_terms(X, y, start, fit_intercept=p.fit_intercept, hessian=False)["loss"]
        # The tutorial passes the parsed DataFrame itself; so do we, for identical bits.
        new_coef, new_intercept = local_step(
            self._model, self.data_.features, self.data_.labels, coef, intercept
        )
        update = {"coef": new_coef, "intercept": new_intercept, "loss": loss}
        if self.num_iterations == 0:
            update.update(self._first_message())
        return update

    # ------------------------------------------------------------------ exact
    def _exact_round(self, aggregator_results) -> dict:
        p = self.params_
        X, y = self.data_.to_numpy()
        if self.num_iterations == 0:
            update = self._first_message()
            if p.standardize:  # per-feature sums first; the fit starts next round
                update["moments"] = local_moments(X)
                return update
            self._X = X
            theta = np.zeros(self.data_.n_features + p.fit_intercept)
            # the solver the aggregator will use decides what curvature to send at the start
            method = validate_solver_params(
                n_params=theta.size, fit_intercept=p.fit_intercept, method=p.solver
            )["method"]
            curvature = "full" if method == "newton" else "diag"
        else:
            if self._X is None:
                self._X = standardize(X, **aggregator_results["scaler"])
            theta = aggregator_results["next_theta"]
            curvature = aggregator_results["curvature"]
            update = {}
        update["terms"] = local_terms(
            self._X, y, theta, fit_intercept=p.fit_intercept, hessian=curvature
        )
        return update


class FederatedLogisticRegression(StarAggregator):
    """The aggregator: combines the hospitals' aggregates and decides when to stop.

    Parameters
    ----------
    flame : FlameCoreSDK
        The node's core object, passed by ``StarModel``.
    **params
        The analysis parameters (``aggregator_kwargs``): ``strategy``, ``max_iter``, ``tol``,
        ``C``, ``fit_intercept``, ``weighted``, ``standardize``, ``solver``, ``output`` and
        the analyzer's ones (accepted and ignored here). See
        :class:`pancreas_fl.params.Params`. They are validated in the first round.

    Attributes
    ----------
    params_ : Params
        The validated parameters.
    history_ : list of dict
        One entry per round: ``round``, ``delta`` (change of the global parameters, ``None``
        in the first round), ``log_loss`` (pooled training log-loss of the model the round
        evaluated), ``seconds``; for the exact strategy also ``accepted`` (``False`` for a
        line-search trial point that was rejected).
    stop_reason_ : {'tolerance', 'max_iter', 'line_search'} or None
        Why the analysis stopped (``None`` while it runs); ``'line_search'`` (exact only):
        no step lowers the objective at floating-point resolution.
    """

    def __init__(self, flame, **params):
        super().__init__(flame)
        self.params = params

    def aggregation_method(self, analysis_results):
        # Node order must not change the result: combine in the order of the node ids.
        updates = sorted(analysis_results, key=lambda update: update["node"])
        if self.num_iterations == 0:
            try:
                self._setup(updates)
            except (ConfigError, DataError) as err:
                _fail(self.flame, err)
                raise
        if self.params_.strategy == "fedavg":
            return self._fedavg_round(updates)
        return self._exact_round(updates)

    def has_converged(self, result, last_result):
        if self.stop_reason_ == "tolerance":
            message = (
                "Delta error is smaller than the tolerance threshold"  # the tutorial's words
                if self.params_.strategy == "fedavg"
                else "The solver step is smaller than the tolerance: converged"
            )
            self.flame.flame_log(message, log_type="info")
        elif self.stop_reason_ == "max_iter":
            self.flame.flame_log(
                f"Maximum number of {self.params_.max_iter} iterations reached. "
                "Returning current results.",
                log_type="info",
            )
        elif self.stop_reason_ == "line_search":
            self.flame.flame_log(
                "The line search cannot lower the objective any further (floating-point "
                "resolution): returning the best point found.",
                log_type="warn",
            )
        return self.stop_reason_ is not None

    # ------------------------------------------------------------------ first round
    def _setup(self, updates) -> None:
        self.params_ = p = resolve_params(**self.params)
        self.history_ = []
        self.stop_reason_ = None
        self._clock = time.perf_counter()
        self._previous = None  # the last global parameter vector
        for update in updates:
            theirs = update["params"]
            for name in SHARED_PARAMS:
                if theirs[name] != getattr(p, name):
                    raise ConfigError(
                        f"hospital {update['node']!r} runs with {name}={theirs[name]!r} but "
                        f"the aggregator with {name}={getattr(p, name)!r}; pass the same "
                        f"value in analyzer_kwargs and aggregator_kwargs."
                    )
        check_same_columns(
            {update["node"]: tuple(update["columns"]) for update in updates}, file=p.dataset
        )
        columns = updates[0]["columns"]
        self._feature_names = list(columns[:-1])
        self._label_name = columns[-1]
        self._n_samples = {update["node"]: update["n"] for update in updates}
        self._n_total = sum(self._n_samples.values())
        self._n_pos = sum(update["n_pos"] for update in updates)
        if p.strategy == "exact":
            self._solver = FederatedSolver(
                len(self._feature_names) + p.fit_intercept,
                fit_intercept=p.fit_intercept,
                C=p.C,
                tol=p.tol,
                max_rounds=p.max_iter + 1,
                method=p.solver,
            )
            if self._solver.method == "lbfgs" and self.params.get("max_iter") is None:
                # many features: the gradient-only solver needs more (cheaper) rounds
                self.params_ = p = replace(p, max_iter=LBFGS_MAX_ITER)
                self._solver.max_rounds = p.max_iter + 1
            self._scaler = None

    def _record(self, delta, loss_sum, **extra) -> None:
        """Close the round: one history entry and one log line."""
        now = time.perf_counter()
        entry = {
            "round": self.num_iterations,
            "delta": delta,
            "log_loss": None if loss_sum is None else loss_sum / self._n_total,
            "seconds": now - self._clock,
            **extra,
        }
        self._clock = now
        self.history_.append(entry)
        change = "n/a" if delta is None else f"{delta:.3e}"
        loss = "n/a" if entry["log_loss"] is None else f"{entry['log_loss']:.6f}"
        self.flame.flame_log(
            f"round {entry['round']}: change {change}, log-loss {loss} ({entry['seconds']:.3f} s)",
            log_type="info",
        )

    # ------------------------------------------------------------------ FedAvg
    def _fedavg_round(self, updates):
        p = self.params_
        weights = [update["n"] for update in updates] if p.weighted else None
        coef = federated_mean([update["coef"] for update in updates], weights)
        intercept = None
        if p.fit_intercept:
            intercept = federated_mean([update["intercept"] for update in updates], weights)
        current = coef if intercept is None else np.hstack([coef, intercept[:, None]])
        delta = None if self._previous is None else l2_change(current, self._previous)
        self._previous = current
        self._record(delta, sum(update["loss"] for update in updates))
        self.stop_reason_ = stop_reason(delta, self.num_iterations, max_iter=p.max_iter, tol=p.tol)
        if p.output == "coef":
            return coef  # the tutorial's result, and its broadcast
        if self.stop_reason_ is None:
            return {"coef": coef, "intercept": intercept}  # hospitals get the model only
        return self._model(coef, intercept)

    # ------------------------------------------------------------------ exact
    def _exact_round(self, updates):
        p = self.params_
        if p.standardize and self._scaler is None:
            n, mean, var = combine_moments([update["moments"] for update in updates])
            self._scaler = {"mean": mean, "scale": scale_from_var(var, mean, n)}
            self._record(None, None)
            return self._broadcast(self._solver.initial_theta(), self._solver.curvature)
        total = aggregate_terms([update["terms"] for update in updates])
        theta = self._solver.pending
        step = self._solver.update(theta, total["loss"], total["grad"], total["hess"])
        self._step = step
        delta = None if self._previous is None else float(np.linalg.norm(theta - self._previous))
        self._previous = theta
        # a rejected trial point (line search) is evaluated but not taken
        self._record(delta, total["loss"], accepted=step.accepted)
        if step.converged:
            self.stop_reason_ = "tolerance"
        elif step.status == "line_search_failed":
            self.stop_reason_ = "line_search"
        elif step.done or self.num_iterations > p.max_iter - 1:
            self.stop_reason_ = "max_iter"
        if self.stop_reason_ is None:
            return self._broadcast(step.next_theta, step.curvature)
        model = self._exact_model()
        return model if p.output == "model" else model["coef"]

    def _broadcast(self, theta, curvature) -> dict:
        """What the hospitals need for the next exact round (no patient-level content)."""
        return {"next_theta": theta, "curvature": curvature, "scaler": self._scaler}

    def _exact_model(self) -> dict:
        p = self.params_
        theta, info = self._step.best_theta, self._solver.hess_loglik
        d = len(self._feature_names)
        coef, intercept = theta[:d], (theta[d:] if p.fit_intercept else None)
        statistics = None
        if info is not None:
            statistics = glm_summary(
                theta,
                info,
                feature_names=self._feature_names,
                fit_intercept=p.fit_intercept,
                n=self._n_total,
                deviance=2.0 * self._step.best_loss,
                null_deviance=null_deviance(
                    self._n_total, self._n_pos, fit_intercept=p.fit_intercept
                ),
                C=p.C,
                penalty="l2",
                rounds=len(self.history_),
            )
        else:
            self.flame.flame_log(
                "no standard errors: the Hessian was not shared (gradient-only solver)",
                log_type="notice",
            )
        standardization = None
        if self._scaler is not None:
            standardization = {
                **self._scaler,
                "coef": coef.reshape(1, -1),
                "intercept": None if intercept is None else intercept.copy(),
            }
            raw_coef, raw_intercept = to_raw_space(coef, intercept, **self._scaler)
            coef, intercept = raw_coef, np.array([raw_intercept])
            if statistics is not None:
                statistics["note"] += (
                    " Coefficients refer to standardized features (per standard deviation)."
                )
        if statistics is not None and self.stop_reason_ != "tolerance":
            warning = (
                f"The fit stopped before converging ({self.stop_reason_}): standard errors "
                "and p-values are unreliable. Without a penalty (C=inf) this usually means "
                "the classes are (quasi-)separable; use a finite C."
            )
            statistics["note"] += " " + warning
            self.flame.flame_log(warning, log_type="warn")
        return self._model(coef, intercept, standardization, statistics)

    def _model(self, coef, intercept, standardization=None, statistics=None) -> dict:
        p = self.params_
        return results.make_model(
            strategy=p.strategy,
            coef=coef,
            intercept=intercept,
            feature_names=self._feature_names,
            label=self._label_name,
            params=p,
            history=self.history_,
            stop_reason=self.stop_reason_,
            n_samples=self._n_samples,
            standardization=standardization,
            statistics=statistics,
        )
