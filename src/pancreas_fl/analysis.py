"""The FLAME node classes: the three SDK hooks, each a short dispatch to the chosen strategy.

:class:`PancreasAnalyzer` runs at every hospital, :class:`FederatedLogisticRegression` at the
aggregator, as in the FLAME pancreas tutorial. They subclass the star-pattern bases chosen by
:mod:`pancreas_fl.sdk` (the real FLAME SDK when it is installed, else the offline engine) and
do what belongs to FLAME: validate the parameters, parse the hospital's CSV once, check what
the hospitals send in the first round, log, and report a user's error as the node's failure.
Each round they hand over to the strategy (:mod:`pancreas_fl.strategies`)::

    SDK hook             FedAvg (strategies/fedavg.py)            exact (strategies/exact.py)
    -------------------  ---------------------------------------  ----------------------------
    analysis_method      FedAvgHospital.update: one warm-started  ExactHospital.update: sums at
                         lbfgs step from the global model         the point asked for
    aggregation_method   FedAvgAggregator.aggregate: the mean of  ExactAggregator.aggregate: add
                         the hospitals' coefficients              the sums, step the solver
    has_converged        from its arguments: L2 change <= tol,    the solver's decision
                         or num_iterations > max_iter - 1

The messages are defined in :mod:`pancreas_fl.messages`. With default parameters the pair
reproduces the tutorial bit for bit: one warm-started lbfgs iteration per hospital and round,
the plain mean of the coefficient arrays, stop when the L2 change is at most 1e-8 or after 11
rounds, and a ``(1, n_features)`` array as the final result.
"""

from __future__ import annotations

from pancreas_fl.data import load_hospital_data
from pancreas_fl.errors import ConfigError, DataError, OutOfStepError
from pancreas_fl.messages import HospitalMessage, Introduction
from pancreas_fl.params import resolve_params
from pancreas_fl.privacy import check_disclosure
from pancreas_fl.sdk import StarAggregator, StarAnalyzer
from pancreas_fl.strategies import ExactAggregator, ExactHospital, FedAvgAggregator, FedAvgHospital
from pancreas_fl.strategies.common import introduce

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


def _check_round(messages: list[HospitalMessage], expected: int) -> None:
    """Refuse to combine a hospital's message that belongs to another round."""
    for message in messages:
        if message["round"] != expected:
            raise OutOfStepError(
                f"hospital {message['node']!r} sent its update for round {message['round']} "
                f"while the aggregator combines round {expected}: a message was delivered "
                "twice or out of order, and combining it would mix rounds. Start the "
                "analysis again."
            )


class PancreasAnalyzer(StarAnalyzer):
    """A hospital: parses its CSV once, then sends one update per round.

    Parameters
    ----------
    flame : FlameCoreSDK
        The node's core object, passed by ``StarModel``.
    **params
        The analysis parameters (``analyzer_kwargs``): ``strategy``, ``dataset``, ``label``,
        ``C``, ``fit_intercept``, ``local_steps``, ``standardize``, ``solver``,
        ``min_patients``, ``max_param_ratio`` and the aggregator's ones (accepted and ignored
        here, so one dict can serve both roles). See :class:`pancreas_fl.params.Params`.
        They are validated in the first round.

    Attributes
    ----------
    params_ : Params or None
        The validated parameters (from the first round on).
    data_ : HospitalData or None
        The parsed, validated data (from the first round on; never sent anywhere).
    strategy_ : FedAvgHospital, ExactHospital or None
        The hospital side of the strategy (from the first round on).
    """

    def __init__(self, flame, **params):
        super().__init__(flame)
        self.params = params
        self.params_ = None
        self.data_ = None
        self.strategy_ = None

    def analysis_method(self, data, aggregator_results) -> HospitalMessage:
        """Compute this hospital's message for the current round.

        The SDK calls this once per round on every hospital: in the first round with
        ``aggregator_results=None`` (``self.num_iterations == 0``), afterwards with the
        aggregator's last broadcast. Its return value is sent to the aggregator.

        Parameters
        ----------
        data : list of dict
            The hospital's s3 objects (object key -> bytes), the same every round.
        aggregator_results : FedAvgBroadcast, ExactBroadcast or None
            The aggregator's last broadcast (see :mod:`pancreas_fl.messages`).

        Returns
        -------
        HospitalMessage
            The node id, in the first round the introduction (counts, column names, shared
            parameters), and the strategy's update.

        Raises
        ------
        ConfigError, DataError
            Invalid parameters, or data that cannot be used (logged as this node's failure).
        """
        try:
            intro = self._start(data) if self.num_iterations == 0 else None
            update = self.strategy_.update(aggregator_results)
        except DataError as err:
            err = err.with_context(node=self.id)
            _fail(self.flame, err)
            raise err from None
        except ConfigError as err:
            _fail(self.flame, err)
            raise
        return {"node": self.id, "round": self.num_iterations, "intro": intro, "update": update}

    def _start(self, data) -> Introduction:
        """First round: validate, parse the CSV once, check disclosure, pick the strategy."""
        self.params_ = p = resolve_params(**self.params)
        Hospital = FedAvgHospital if p.strategy == "fedavg" else ExactHospital
        self.data_ = d = load_hospital_data(
            data,
            dataset=p.dataset,
            label=p.label,
            require_both_classes=Hospital.requires_both_classes,
        )
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
        self.strategy_ = Hospital(d, p)
        return {
            "n": d.n_samples,
            "n_pos": d.n_positive,
            "columns": list(d.columns),
            "params": p.shared(),
        }


class FederatedLogisticRegression(StarAggregator):
    """The aggregator: combines the hospitals' updates and decides when to stop.

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
    params_ : Params or None
        The validated parameters (from the first round on; for the exact strategy with the
        L-BFGS solver's default ``max_iter`` applied).
    cohort_ : Cohort or None
        The hospitals' column names and counts (from the first round on).
    strategy_ : FedAvgAggregator, ExactAggregator or None
        The aggregator side of the strategy (from the first round on). Its ``rounds.history``
        has one entry per round, its ``stop_reason_`` says why the analysis stopped.
    """

    def __init__(self, flame, **params):
        super().__init__(flame)
        self.params = params
        self.params_ = None
        self.cohort_ = None
        self.strategy_ = None

    def aggregation_method(self, analysis_results):
        """Combine the hospitals' messages of the current round into the global result.

        The SDK calls this once per round, when every hospital's message has arrived
        (``self.num_iterations`` is 0 in the first round). The SDK then calls
        :meth:`has_converged` with its return value: if that says stop, the return value is
        the final result, else it is broadcast to the hospitals.

        Parameters
        ----------
        analysis_results : list of HospitalMessage
            One per hospital, in arrival order; combined in the order of the node ids, so that
            the result does not depend on arrival.

        Returns
        -------
        object
            The strategy's result: FedAvg the global model (the tutorial's bare coefficient
            array by default), exact the next point to evaluate; in the last round the final
            result (see :class:`pancreas_fl.params.Params`, ``output``).
        """
        messages = sorted(analysis_results, key=lambda message: message["node"])
        try:
            _check_round(messages, self.num_iterations)
            if self.num_iterations == 0:
                self._start(messages)
        except (ConfigError, DataError, OutOfStepError) as err:
            _fail(self.flame, err)
            raise
        updates = {message["node"]: message["update"] for message in messages}
        return self.strategy_.aggregate(updates, self.num_iterations)

    def has_converged(self, result, last_result) -> bool:
        """Whether the analysis stops after this round; logs why when it does.

        The SDK calls this right after :meth:`aggregation_method`, every round, with its
        ``result`` and the previous round's (``last_result``, ``None`` in the first round,
        which never stops). FedAvg decides from these two, as the tutorial does: stop when the
        L2 change of the global parameters is at most ``tol``, or when ``num_iterations >
        max_iter - 1`` (11 rounds by default). The exact strategy reports the decision its
        solver made in :meth:`aggregation_method` (convergence at the best point is solver
        state, not a property of two results).

        Returns
        -------
        bool
            ``True`` ends the analysis with ``result`` as the final result.
        """
        reason = self.strategy_.stop_reason(result, last_result, self.num_iterations)
        if reason is not None:
            message, log_type = self.strategy_.stop_message(reason)
            self.flame.flame_log(message, log_type=log_type)
        return reason is not None

    def _start(self, messages: list[HospitalMessage]) -> None:
        """First round: validate, check that the hospitals agree, pick the strategy."""
        p = resolve_params(**self.params)
        self.cohort_ = introduce({message["node"]: message["intro"] for message in messages}, p)
        log = self.flame.flame_log
        if p.strategy == "fedavg":
            self.strategy_ = FedAvgAggregator(p, self.cohort_, log)
        else:
            max_iter_given = self.params.get("max_iter") is not None
            self.strategy_ = ExactAggregator(p, self.cohort_, log, max_iter_given=max_iter_given)
        self.params_ = self.strategy_.params
