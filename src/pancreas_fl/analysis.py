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

from typing import NamedTuple

import numpy as np

from pancreas_fl.data import read_hospital_data
from pancreas_fl.encoding import Encoding
from pancreas_fl.errors import ConfigError, DataError, MessageError, OutOfStepError
from pancreas_fl.messages import HospitalMessage, Introduction, SetupBroadcast
from pancreas_fl.params import resolve_params
from pancreas_fl.privacy import check_disclosure
from pancreas_fl.problems import as_problem
from pancreas_fl.sdk import StarAggregator, StarAnalyzer
from pancreas_fl.strategies import ExactAggregator, ExactHospital, FedAvgAggregator, FedAvgHospital
from pancreas_fl.strategies.common import introduce
from pancreas_fl.table import prepare_table, resolve_key, uses_table_options
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


class _Reading(NamedTuple):
    """What a hospital read in the first round: its file, problems and counts."""

    file: str
    problems: list[DataError]
    n: int
    n_pos: int
    n_dropped: int
    columns: list[str]
    levels: dict[str, list[str]] | None


class PancreasAnalyzer(StarAnalyzer):
    """A hospital: parses its CSV once, then sends one update per round.

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
    table_ : PreparedTable or None
        The table prepared with ``features``, ``categorical``, ``missing`` or ``fill``
        (first round; see :mod:`pancreas_fl.table`); ``None`` without them.
    data_ : HospitalData or None
        The parsed, validated (and encoded) data the strategy uses (from the first model
        round on; never sent anywhere).
    strategy_ : FedAvgHospital, ExactHospital or None
        The hospital side of the strategy (from the first model round on).
    """

    def __init__(self, flame, **params):
        super().__init__(flame)
        self.params = params
        self.params_ = None
        self.table_ = None
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
            intro, update = None, None
            received = None
            if self.num_iterations > 0:  # the broadcast is checked before anything uses it
                d = None if self.data_ is None else self.data_.n_features
                received = self.inbox_.receive(aggregator_results, self.num_iterations, d)
            if self.num_iterations == 0:
                intro = self._start(data)
                if self.strategy_ is not None:  # no problems and no setup round
                    update = self.strategy_.update(None)
            elif self.strategy_ is None:  # the first model round after the setup round
                self._encode(aggregator_results)
                update = self.strategy_.update(None)
            else:
                # A broadcast of the right form but altered on its way can overflow here: the
                # aggregator names it from the digest this message echoes, without warnings.
                with np.errstate(all="ignore"):
                    update = self.strategy_.update(aggregator_results)
        except DataError as err:
            err = err.with_context(node=self.id)
            _fail(self.flame, err)
            raise err from None
        except (ConfigError, MessageError) as err:
            _fail(self.flame, err)
            raise
        k = self.num_iterations
        return {"node": self.id, "round": k, "intro": intro, "update": update, "received": received}

    def _start(self, data) -> Introduction:
        """First round: validate, read the table once, collect its problems, pick the strategy.

        Problems with the data (counts and column names only) go into the introduction
        instead of failing this hospital alone, so that the aggregator reports every problem
        of every hospital in one run. With ``categorical`` columns the strategy starts only
        once the levels are agreed (:meth:`_encode`, next round).
        """
        self.params_ = p = resolve_params(**self.params)
        Hospital = FedAvgHospital if p.strategy == "fedavg" else ExactHospital
        read = self._read_prepared if uses_table_options(p) else self._read_plain
        reading = read(data, Hospital.requires_both_classes)
        self.inbox_ = HospitalInbox(
            p.strategy,
            p.fit_intercept,
            p.standardize,
            p.output,
            solver=p.solver,
            levels=reading.levels,
        )
        self._log_reading(reading)
        if self.data_ is not None and not reading.problems:
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

    def _read_prepared(self, data, require_both_classes: bool) -> _Reading:
        """Prepare the table with the column options (:func:`~pancreas_fl.table.prepare_table`).

        Without categorical columns the data are encoded at once; with them, the levels held
        here are what the introduction sends.
        """
        p = self.params_
        self.table_ = table = prepare_table(data, p, require_both_classes=require_both_classes)
        levels = None
        if p.categorical and not table.problems:
            levels = table.levels
        elif not table.problems:
            self.data_ = table.hospital_data(Encoding(table.features, fill=p.fill or {}))
        columns = [*table.features, table.label]
        return _Reading(
            table.file,
            table.problems,
            table.n_used,
            table.n_positive,
            table.n_dropped,
            columns,
            levels,
        )

    def _read_plain(self, data, require_both_classes: bool) -> _Reading:
        """Read the CSV as the tutorial does and check the disclosure guards."""
        p = self.params_
        file = p.dataset
        try:
            file = resolve_key(data, p.dataset)
        except DataError as err:
            return _Reading(file, [err], 0, 0, 0, [], None)
        self.data_, problems = read_hospital_data(
            data, dataset=file, label=p.label, require_both_classes=require_both_classes
        )
        if self.data_ is not None:
            try:
                self._check_disclosure(file)
            except DataError as err:
                problems = [err]
        d = self.data_
        if d is None:
            return _Reading(file, problems, 0, 0, 0, [], None)
        return _Reading(file, problems, d.n_samples, d.n_positive, 0, list(d.columns), None)

    def _log_reading(self, reading: _Reading) -> None:
        """Log what was read: the counts, or how many problems go to the aggregator."""
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
        if self.data_ is not None:
            count = f"{self.data_.n_features} features"
        self.flame.flame_log(
            f"{reading.file}: {reading.n} patients ({reading.n_pos} with label 1), "
            f"{count}{dropped}",
            log_type="info",
        )

    def _encode(self, setup: SetupBroadcast) -> None:
        """Encode with the agreed levels, check disclosure again and start the strategy.

        Runs after the setup round: the number of parameters is known only now.
        """
        p, table = self.params_, self.table_
        levels = {column: tuple(names) for column, names in setup["levels"].items()}
        encoding = Encoding(table.features, levels=levels, fill=p.fill or {}, missing=p.missing)
        self.data_ = table.hospital_data(encoding)
        self._check_disclosure(table.file)
        Hospital = FedAvgHospital if p.strategy == "fedavg" else ExactHospital
        self.strategy_ = Hospital(self.data_, p)

    def _check_disclosure(self, file: str) -> None:
        p, d = self.params_, self.data_
        check_disclosure(
            d.n_samples,
            d.n_features + p.fit_intercept,
            n_positive=d.n_positive,
            min_patients=p.min_patients,
            max_param_ratio=p.max_param_ratio,
            file=file,
        )


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
        The hospitals' column names and counts, and the agreed encoding (from the first
        round on).
    setup_rounds_ : int or None
        Rounds before the first model round: 1 with ``categorical`` (the levels are agreed
        first), else 0. The strategies count their rounds (and ``max_iter``) from the first
        model round.
    strategy_ : FedAvgAggregator, ExactAggregator or None
        The aggregator side of the strategy (from the first round on). Its ``rounds.history``
        has one entry per round, its ``stop_reason_`` says why the analysis stopped.
    """

    def __init__(self, flame, **params):
        super().__init__(flame)
        self.params = params
        self.params_ = None
        self.cohort_ = None
        self.setup_rounds_ = None
        self.strategy_ = None
        self.inbox_: AggregatorInbox | None = None

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
        k = self.num_iterations
        if k == 0:
            self.inbox_ = AggregatorInbox(frozenset(self.partner_node_ids or ()))
        try:  # every message is checked before anything uses it (pancreas_fl.wire)
            messages = self.inbox_.open(analysis_results, k)
            _check_round(messages, k)
            if k == 0:
                self._start(messages)
            setup = k < self._setup_rounds()
            self.inbox_.check_updates(
                messages, k, UpdateSpec("none") if setup else self.strategy_.update_spec()
            )
        except (ConfigError, DataError, OutOfStepError, MessageError) as err:
            _fail(self.flame, err)
            raise
        if self.num_iterations < self._setup_rounds():
            levels = self.cohort_.encoding.levels
            self.flame.flame_log(
                "setup round: categorical levels agreed ("
                + ", ".join(f"{column}: {len(names)}" for column, names in levels.items())
                + "); the model rounds start next",
                log_type="info",
            )
            setup = SetupBroadcast(levels={c: list(names) for c, names in levels.items()})
            self.inbox_.sent(setup)
            return setup
        updates = {message["node"]: message["update"] for message in messages}
        result = self.strategy_.aggregate(updates, self.num_iterations - self._setup_rounds())
        if self.strategy_.stop_reason_ is None:
            self.inbox_.sent(result)  # a broadcast: the hospitals echo its digest next round
            return result
        try:  # the final result, before it is submitted
            d = len(self.cohort_.feature_names)
            check_final_result(result, k, d, self.params_.fit_intercept)
        except MessageError as err:
            _fail(self.flame, err)
            raise
        return result

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
        setup = self._setup_rounds()
        if self.num_iterations < setup:
            return False  # the setup round (categorical levels) never stops the analysis
        if self.num_iterations == setup:
            last_result = None  # the setup broadcast is no model
        model_round = self.num_iterations - setup
        reason = self.strategy_.stop_reason(result, last_result, model_round)
        if reason is not None:
            message, log_type = self.strategy_.stop_message(reason)
            self.flame.flame_log(message, log_type=log_type)
        return reason is not None

    def _setup_rounds(self) -> int:
        return self.setup_rounds_ or 0

    def _start(self, messages: list[HospitalMessage]) -> None:
        """First round: validate, check that the hospitals agree, pick the strategy."""
        p = resolve_params(**self.params)
        self.cohort_ = introduce({message["node"]: message["intro"] for message in messages}, p)
        self.setup_rounds_ = 1 if p.categorical else 0
        log = self.flame.flame_log
        if p.strategy == "fedavg":
            self.strategy_ = FedAvgAggregator(p, self.cohort_, log)
        else:
            max_iter_given = self.params.get("max_iter") is not None
            self.strategy_ = ExactAggregator(p, self.cohort_, log, max_iter_given=max_iter_given)
        self.params_ = self.strategy_.params
