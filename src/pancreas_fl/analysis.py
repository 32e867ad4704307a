"""The FLAME node classes: the three SDK hooks, and the rounds they count.

:class:`PancreasAnalyzer` runs at every hospital, :class:`FederatedLogisticRegression` at the
aggregator, as in the FLAME pancreas tutorial. They subclass the star-pattern bases chosen by
:mod:`pancreas_fl.sdk` (the real FLAME SDK when it is installed, else the offline engine) and
do what belongs to FLAME: validate the parameters, read the hospital's data once, agree in the
first round, log, and report a user's error as the node's failure. Each round they hand over
to the strategy: FedAvg (:mod:`pancreas_fl.fedavg`, the tutorial's, the default) or exact
(:mod:`pancreas_fl.exact`, imported only when chosen)::

    SDK hook             FedAvg (fedavg.py)                       exact (exact/strategy.py)
    -------------------  ---------------------------------------  ----------------------------
    analysis_method      FedAvgHospital.update: one warm-started  ExactHospital.update: sums at
                         lbfgs step from the global model         the point asked for
    aggregation_method   FedAvgAggregator.aggregate: the mean of  ExactAggregator.aggregate: add
                         the hospitals' coefficients, and the     the sums, step the solver,
                         tutorial's stopping rule                 which decides when to stop
    has_converged        reports that round's decision            the same

What a hospital sends in round ``k`` (the SDK's ``num_iterations``, 0 in the first round)::

    round        hospital -> aggregator (HospitalMessage)      aggregator -> hospitals
    -----------  --------------------------------------------  -------------------------------
    k = 0        node, round, intro (counts, column names,     the strategy's broadcast
                 shared parameters, problems), update
    k > 0        node, round, update                           the same
    last         node, round, update                           nothing: the final result goes
                                                               to the analyst

With ``categorical`` columns round 0 is a *setup round*: the introduction also carries the
level names each hospital holds, the update is ``None``, and the aggregator answers with the
agreed levels (:class:`~pancreas_fl.messages.SetupBroadcast`); the model rounds follow,
counted from 0 again by the strategies (:meth:`FederatedLogisticRegression.model_round`, the
one place that offset is applied). A hospital that finds problems with its data sends them in
its introduction and no update; the aggregator then fails the run once, naming every problem
of every hospital. The messages are :mod:`pancreas_fl.messages` (both strategies),
:class:`pancreas_fl.fedavg.FedAvgUpdate` and :mod:`pancreas_fl.exact.messages`; they carry
aggregates, counts and column names, never a patient record.

Why the default result is the tutorial's, bit for bit, is in :mod:`pancreas_fl.fedavg`.
"""

from __future__ import annotations

import numpy as np

from pancreas_fl.errors import ConfigError, DataError, MessageError, OutOfStepError, as_problem
from pancreas_fl.fedavg import FedAvgAggregator, FedAvgHospital
from pancreas_fl.handshake import introduce
from pancreas_fl.messages import HospitalMessage, Introduction, SetupBroadcast
from pancreas_fl.params import resolve_params
from pancreas_fl.reader import Reading, read_hospital
from pancreas_fl.sdk import StarAggregator, StarAnalyzer
from pancreas_fl.wire import AggregatorInbox, HospitalInbox, UpdateSpec, check_final_result

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


def _hospital_side(strategy: str) -> type:
    """Return the strategy's hospital side; the exact strategy is imported only when chosen."""
    if strategy == "fedavg":
        return FedAvgHospital
    from pancreas_fl.exact import ExactHospital

    return ExactHospital


class PancreasAnalyzer(StarAnalyzer):
    """A hospital: reads its data once, then sends one update per round.

    Parameters
    ----------
    flame : FlameCoreSDK
        The node's core object, passed by ``StarModel``.
    **params
        The analysis parameters (``analyzer_kwargs``): ``strategy``, ``dataset``, ``label``,
        ``features``, ``categorical``, ``missing``, ``fill``, ``C``, ``fit_intercept``,
        ``local_steps``, ``standardize``, ``solver``, ``min_patients``, ``max_param_ratio``,
        ``min_cell`` and the aggregator's ones (accepted and ignored
        here, so one dict can serve both roles). See :class:`pancreas_fl.params.Params`.
        They are validated in the first round.

    Attributes
    ----------
    params_ : Params or None
        The validated parameters (from the first round on).
    reading_ : Reading or None
        What the hospital read in the first round: its data or its problems, and counts
        (:func:`pancreas_fl.reader.read_hospital`).
    data_ : HospitalData or None
        The validated (and encoded) data the strategy uses (from the first model round on;
        never sent anywhere).
    strategy_ : FedAvgHospital, ExactHospital or None
        The hospital side of the strategy (from the first model round on).
    """

    def __init__(self, flame, **params):
        super().__init__(flame)
        self.params = params
        self.params_ = None
        self.reading_ = None
        self.data_ = None
        self.strategy_ = None
        self.inbox_: HospitalInbox | None = None

    def analysis_method(self, data, aggregator_results) -> HospitalMessage:
        """Compute this hospital's message for the current round.

        The SDK calls this once per round on every hospital: in the first round with
        ``aggregator_results=None`` (``self.num_iterations == 0``), afterwards with the
        aggregator's last broadcast. Its return value is sent to the aggregator.

        Parameters
        ----------
        data : list of dict
            The hospital's s3 objects (object key -> bytes), the same every round.
        aggregator_results : FedAvgBroadcast, ExactBroadcast, SetupBroadcast or None
            The aggregator's last broadcast.

        Returns
        -------
        HospitalMessage
            The node id, the round, in the first round the introduction (counts, column
            names, shared parameters, problems), and the strategy's update.

        Raises
        ------
        ConfigError, DataError
            Invalid parameters, or data that cannot be used (logged as this node's failure).
        """
        k = self.num_iterations
        try:
            intro, update, received = None, None, None
            if k > 0:  # the broadcast is checked before anything uses it (pancreas_fl.wire)
                d = None if self.data_ is None else self.data_.n_features
                received = self.inbox_.receive(aggregator_results, k, d)
            if k == 0:
                intro = self._start(data)
            elif self.strategy_ is None:  # the first model round after the setup round
                self._encode(aggregator_results)
                aggregator_results = None  # the setup broadcast is no model
            if self.strategy_ is not None:
                # A broadcast of the right form but altered on its way can overflow here: the
                # aggregator names it from the digest this message echoes, without warnings.
                with np.errstate(all="ignore"):
                    update = self.strategy_.update(aggregator_results)
        except DataError as err:
            err = err.with_context(node=self.id)
            _fail(self.flame, err)
            raise err from None
        except (ConfigError, OutOfStepError, MessageError) as err:  # e.g. a damaged broadcast
            _fail(self.flame, err)
            raise
        return {"node": self.id, "round": k, "intro": intro, "update": update, "received": received}

    def _start(self, data) -> Introduction:
        """First round: validate, read the data once, collect its problems, pick the strategy.

        Problems with the data (counts and column names only) go into the introduction
        instead of failing this hospital alone, so that the aggregator reports every problem
        of every hospital in one run. With ``categorical`` columns the strategy starts only
        once the levels are agreed (:meth:`_encode`, next round).
        """
        self.params_ = p = resolve_params(**self.params)
        Hospital = _hospital_side(p.strategy)
        self.reading_ = reading = read_hospital(
            data, p, require_both_classes=Hospital.requires_both_classes
        )
        self._log(reading)
        self.inbox_ = HospitalInbox(
            p.strategy,
            p.fit_intercept,
            p.standardize,
            p.output,
            solver=p.solver,
            firth=p.penalty == "firth",
            levels=reading.levels,
            budgets=(p.max_message_mb, p.max_memory_mb),
            reuse=p.reuse_curvature,
        )
        if reading.data is not None:
            self.data_ = reading.data
            self.strategy_ = Hospital(self.data_, p)
        return {
            "n": reading.n,
            "n_pos": reading.n_pos,
            "n_dropped": reading.n_dropped,
            "columns": reading.columns,
            "params": p.shared(),
            "problems": [as_problem(problem) for problem in reading.problems],
            "levels": reading.levels,
        }

    def _log(self, reading: Reading) -> None:
        """Log how the file was read, then the counts, or each problem sent to the aggregator."""
        if reading.dialect is not None:  # separator, decimal mark, encoding: no value
            self.flame.flame_log(
                f"{reading.file}: read as {reading.dialect.describe()}", log_type="notice"
            )
        if reading.problems:
            # Each in the hospital's own log (for its data owner: names and counts only), as
            # a notice, not as this node's failure: the aggregator fails the run once, with
            # every hospital's problems (the error the analyst sees).
            for problem in reading.problems:
                self.flame.flame_log(
                    f"{problem.with_context(node=self.id)} (sent to the aggregator, which "
                    "reports every hospital's problems at once)",
                    log_type="notice",
                )
            return
        dropped = f"; {reading.n_dropped} incomplete row(s) dropped" if reading.n_dropped else ""
        count = f"{len(reading.columns) - 1} feature column(s)"
        if reading.data is not None:
            count = f"{reading.data.n_features} features"
        self.flame.flame_log(
            f"{reading.file}: {reading.n} patients ({reading.n_pos} with label 1), "
            f"{count}{dropped}",
            log_type="info",
        )

    def _encode(self, setup: SetupBroadcast) -> None:
        """Encode with the agreed levels, check disclosure again and start the strategy.

        Runs after the setup round: the number of parameters is known only now.
        """
        self.data_ = self.reading_.encode(setup["levels"])
        self.strategy_ = _hospital_side(self.params_.strategy)(self.data_, self.params_)


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
    agreement_ : Agreement or None
        The hospitals' column names and counts, and the agreed encoding (from the first
        round on).
    setup_rounds_ : int or None
        Rounds before the first model round: 1 with ``categorical`` (the levels are agreed
        first), else 0.
    strategy_ : FedAvgAggregator, ExactAggregator or None
        The aggregator side of the strategy (from the first round on). Its ``rounds.history``
        has one entry per model round, its ``stop_reason_`` says why the analysis stopped.
    """

    def __init__(self, flame, **params):
        super().__init__(flame)
        self.params = params
        self.params_ = None
        self.agreement_ = None
        self.setup_rounds_ = None
        self.strategy_ = None
        self.inbox_: AggregatorInbox | None = None

    def model_round(self) -> int | None:
        """Return the model round this is (0 in the first), or ``None`` in a setup round.

        The strategies count their rounds, and ``max_iter``, from the first model round; this
        is the one place the setup round's offset is applied.
        """
        model_round = self.num_iterations - (self.setup_rounds_ or 0)
        return model_round if model_round >= 0 else None

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
            result (see :class:`pancreas_fl.params.Params`, ``output``). In a setup round the
            agreed levels.
        """
        k = self.num_iterations
        if k == 0:
            self.inbox_ = AggregatorInbox(frozenset(self.partner_node_ids or ()))
        try:  # every message is checked before anything uses it (pancreas_fl.wire)
            messages = self.inbox_.open(analysis_results, k)
            _check_round(messages, k)
            if k == 0:
                self._start(messages)
            model_round = self.model_round()
            spec = UpdateSpec("none") if model_round is None else self.strategy_.update_spec()
            self.inbox_.check_updates(messages, k, spec)
        except (ConfigError, DataError, OutOfStepError, MessageError) as err:
            _fail(self.flame, err)
            raise
        if model_round is None:
            levels = self.agreement_.encoding.levels
            self.flame.flame_log(
                "setup round: categorical levels agreed ("
                + ", ".join(f"{column}: {len(names)}" for column, names in levels.items())
                + "); the model rounds start next",
                log_type="info",
            )
            broadcast = SetupBroadcast(levels={c: list(names) for c, names in levels.items()})
            self.inbox_.sent(broadcast)
            return broadcast
        updates = {message["node"]: message["update"] for message in messages}
        try:
            result = self.strategy_.aggregate(updates, model_round)
            if self.strategy_.stop_reason_ is None:
                self.inbox_.sent(result)  # a broadcast: the hospitals echo its digest
                return result
            # the final result, before it is submitted
            d = len(self.agreement_.feature_names)
            check_final_result(result, k, d, self.params_.fit_intercept)
            return result
        except (ConfigError, OutOfStepError, MessageError) as err:  # e.g. Firth, aliased
            _fail(self.flame, err)
            raise

    def has_converged(self, result, last_result) -> bool:
        """Whether the analysis stops after this round; logs why when it does.

        The SDK calls this right after :meth:`aggregation_method`, every round, with its
        ``result`` and the previous round's. The decision was made there, once, by the
        strategy, on the same models: FedAvg applies the tutorial's rule (stop when the L2
        change of the global model is at most ``tol``, or when the round counter exceeds
        ``max_iter - 1``; :func:`pancreas_fl.fedavg.stop_rule`), because its last round
        returns the final result; the exact strategy's solver decides. A setup round never
        stops the analysis.

        Returns
        -------
        bool
            ``True`` ends the analysis with ``result`` as the final result.
        """
        if self.model_round() is None:
            return False
        reason = self.strategy_.stop_reason_
        if reason is not None:
            message, log_type = self.strategy_.stop_message(reason)
            self.flame.flame_log(message, log_type=log_type)
        return reason is not None

    def _start(self, messages: list[HospitalMessage]) -> None:
        """First round: validate, check that the hospitals agree, pick the strategy."""
        p = resolve_params(**self.params)
        self.agreement_ = introduce({message["node"]: message["intro"] for message in messages}, p)
        self.setup_rounds_ = 1 if p.categorical else 0
        log = self.flame.flame_log
        if p.strategy == "fedavg":
            self.strategy_ = FedAvgAggregator(p, self.agreement_, log)
        else:
            from pancreas_fl.exact import ExactAggregator

            max_iter_given = self.params.get("max_iter") is not None
            self.strategy_ = ExactAggregator(p, self.agreement_, log, max_iter_given=max_iter_given)
        self.params_ = self.strategy_.params
