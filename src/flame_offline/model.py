"""``StarModel`` and ``StarLocalDPModel``: one node's run of the star pattern.

The flow is the SDK's (see the contract): the analyzer analyzes its data, sends the result
to the aggregator and, in iterative runs, waits for the aggregator's broadcast until the
end announcement; the aggregator waits for one result per analyzer, aggregates, and either
submits the final result and announces the end, or broadcasts the aggregate.

Differences from the SDK, on purpose:

* ``test_mode=False`` raises ``RuntimeError``: the offline engine cannot run as a production
  FLAME node (there, the real SDK is used).
* The aggregator passes the analyzers' results to ``aggregate`` in **participant order**
  (deterministic), not in arrival order.
* The analyzer logs only the *shape* of its data (numbers of sources and objects), never its
  content (the SDK logs the first 100 characters of ``str(data)``).
* ``data_type`` is validated (``ValueError`` unless ``'s3'`` or ``'fhir'``).
* A node that logged with ``log_type='error'`` raises
  :class:`~flame_offline.errors.LoggedError` when it returns: production marks it failed.
* The class check accepts subclasses of this engine's bases and, when ``flame.star`` is
  importable, of the real SDK's bases.
"""

from __future__ import annotations

import functools
from typing import Any

from flame_offline.core import FlameCore
from flame_offline.errors import LoggedError
from flame_offline.nodes import StarAggregator, StarAnalyzer

__all__ = ["StarLocalDPModel", "StarModel"]

_INCORRECT_CLASS = (
    "The object/class given is incorrect, e.g. is not correctly implementing/inheriting the "
    "intended template class."
)
_NOT_IN_TEST_MODE = (
    "The offline engine cannot run as a production FLAME node (test_mode=False): inside "
    "FLAME, import StarModel from the real SDK (flame.star). To run locally, use "
    "StarModelTester (or StarModel(test_mode=True, test_kwargs=...))."
)


@functools.lru_cache(maxsize=1)
def _sdk_bases() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """Return the real SDK's (analyzer, aggregator) bases.

    Empty ones when ``flame.star`` is not installed or fails to import.
    """
    try:
        from flame.star import StarAggregator as SdkAggregator
        from flame.star import StarAnalyzer as SdkAnalyzer
    except Exception:  # not installed, or an installation that fails to import
        return (), ()
    return (SdkAnalyzer,), (SdkAggregator,)


def _is_node_class(cls: Any, base: type, sdk_bases: tuple[type, ...]) -> bool:
    return isinstance(cls, type) and issubclass(cls, (base, *sdk_bases))


def _describe_data(data: Any) -> str:
    if data is None:
        return "none (without a query a production node fetches no data)"
    if isinstance(data, list):
        objects = sum(len(d) for d in data if isinstance(d, dict))
        return f"{len(data)} source(s), {objects} object(s)"
    return f"1 object of type {type(data).__name__} (not a list of data sources)"


class StarModel:
    """Run one node of a star-pattern analysis (the engine's ``flame.star.StarModel``).

    Parameters
    ----------
    analyzer : type
        A subclass of :class:`~flame_offline.StarAnalyzer` (or of the SDK's).
    aggregator : type
        A subclass of :class:`~flame_offline.StarAggregator` (or of the SDK's).
    data_type : {'s3', 'fhir'}
        Which data the analyzers read.
    query : str or list of str, optional
        s3 object keys or FHIR queries; a ``str`` is wrapped in a list. ``None`` (the
        default) fetches no data, as in production: the analyzer gets ``data=None``;
        ``[]`` fetches every s3 object.
    simple_analysis : bool
        Single round (``True``) or iterate until ``has_converged``.
    output_type : {'str', 'bytes', 'pickle'} or list of them
        How the final result is written.
    multiple_results : bool
        Split a list/tuple final result into one result per element.
    analyzer_kwargs, aggregator_kwargs : dict, optional
        Extra keyword arguments of the node classes.
    test_mode : bool
        Must be ``True`` (the engine only runs locally).
    test_kwargs : dict, optional
        The node's configuration, see :class:`~flame_offline.core.FlameCore`.

    Attributes
    ----------
    flame : FlameCore
        The node's core object.
    data : list of dict or None
        The analyzer's data.
    test_mode : bool
        Always ``True``.

    Raises
    ------
    RuntimeError
        If ``test_mode`` is false.
    ValueError
        For an invalid ``data_type``.
    BrokenPipeError
        If the role is neither analyzer nor aggregator, or the node class has the wrong base.
    LoggedError
        If the node logged with ``log_type='error'`` (raised when it is done).
    """

    data: Any = None

    def __init__(
        self,
        analyzer: type,
        aggregator: type,
        data_type: str,
        query: str | list[str] | None = None,
        simple_analysis: bool = True,
        output_type: str | list[str] = "str",
        multiple_results: bool = False,
        analyzer_kwargs: dict | None = None,
        aggregator_kwargs: dict | None = None,
        test_mode: bool = False,
        test_kwargs: dict | None = None,
    ) -> None:
        if not test_mode:
            raise RuntimeError(_NOT_IN_TEST_MODE)
        if data_type not in ("s3", "fhir"):
            raise ValueError(f"data_type must be 's3' or 'fhir'. Got {data_type!r} instead.")
        self.test_mode = True
        self.test_kwargs = test_kwargs
        self.flame = FlameCore(test_kwargs or {})
        role = self.flame.get_role()
        if role == "default":
            self.flame.flame_log(f"Analyzer {self.flame.get_id()} started", log_type="info")
            self._start_analyzer(analyzer, data_type, query, simple_analysis, analyzer_kwargs)
        elif role == "aggregator":
            self.flame.flame_log("Aggregator started", log_type="info")
            self._start_aggregator(
                aggregator, simple_analysis, output_type, multiple_results, aggregator_kwargs
            )
        else:
            raise BrokenPipeError("Has to be either analyzer or aggregator")
        if self.flame.logged_error is not None:
            raise LoggedError(self.flame.logged_error)
        self.flame.flame_log("Analysis finished!", log_type="info")

    def _start_analyzer(
        self,
        analyzer: type,
        data_type: str,
        query: str | list[str] | None,
        simple_analysis: bool,
        analyzer_kwargs: dict | None,
    ) -> None:
        if not _is_node_class(analyzer, StarAnalyzer, _sdk_bases()[0]):
            raise BrokenPipeError(_INCORRECT_CLASS)
        node = analyzer(flame=self.flame, **(analyzer_kwargs or {}))
        aggregator_id = self.flame.get_aggregator_id()
        if not self.flame.ready_check([aggregator_id])[aggregator_id]:
            raise BrokenPipeError("Could not contact aggregator")
        if isinstance(query, str):
            query = [query]
        if data_type == "fhir":
            self.data = self.flame.get_fhir_data(query)
        else:
            self.data = self.flame.get_s3_data(query)
        self.flame.flame_log(f"Data extracted: {_describe_data(self.data)}", log_type="info")
        while not node.finished:
            result = node.analyze(data=self.data)
            self.flame.send_intermediate_data([aggregator_id], result)
            if simple_analysis:
                node.node_finished()
            else:
                reply = self.flame.await_intermediate_data([aggregator_id])
                node.latest_result = reply[aggregator_id]
                if self.flame.config.finished:
                    node.node_finished()

    def _start_aggregator(
        self,
        aggregator: type,
        simple_analysis: bool,
        output_type: str | list[str],
        multiple_results: bool,
        aggregator_kwargs: dict | None,
    ) -> None:
        if not _is_node_class(aggregator, StarAggregator, _sdk_bases()[1]):
            raise BrokenPipeError(_INCORRECT_CLASS)
        node = aggregator(flame=self.flame, **(aggregator_kwargs or {}))
        if not all(self.flame.ready_check(self.flame.get_participant_ids()).values()):
            raise BrokenPipeError("Could not contact all analyzers")
        analyzers = node.partner_node_ids
        while not node.finished:
            results = self.flame.await_intermediate_data(analyzers)
            aggregated, converged = node.aggregate(list(results.values()), simple_analysis)
            self._aggregated(aggregated)
            if converged:
                self.flame.submit_final_result(
                    aggregated, output_type, multiple_results, local_dp=self._local_dp(node)
                )
                self.flame.analysis_finished()
                node.node_finished()
            else:
                self.flame.send_intermediate_data(analyzers, aggregated)

    def _aggregated(self, aggregated: Any) -> None:
        """React to every round's aggregate (a hook: the plain model does nothing)."""

    def _local_dp(self, node: Any) -> dict[str, float] | None:
        """Local-DP parameters for the final result (none in the plain model)."""
        return None


class StarLocalDPModel(StarModel):
    """A :class:`StarModel` that adds Laplace noise to a numeric final result.

    When the aggregator's last ``has_converged`` was true (``delta_criteria``) and both
    ``epsilon`` and ``sensitivity`` are given, noise of scale ``sensitivity / epsilon`` is
    added to the final result, which must then be a finite int or float (production's
    storage client fails the node for anything else; the SDK's local mock skips the step
    with a warning). Every round's aggregate is logged (its first 100 characters), as the
    SDK's model does.

    Parameters
    ----------
    epsilon, sensitivity : float, optional
        The privacy budget and the result's sensitivity.
    **kwargs
        The other arguments of :class:`StarModel`.
    """

    def __init__(
        self,
        analyzer: type,
        aggregator: type,
        data_type: str,
        query: str | list[str] | None = None,
        simple_analysis: bool = True,
        output_type: str | list[str] = "str",
        multiple_results: bool = False,
        analyzer_kwargs: dict | None = None,
        aggregator_kwargs: dict | None = None,
        epsilon: float | None = None,
        sensitivity: float | None = None,
        test_mode: bool = False,
        test_kwargs: dict | None = None,
    ) -> None:
        self.epsilon = epsilon
        self.sensitivity = sensitivity
        super().__init__(
            analyzer,
            aggregator,
            data_type,
            query=query,
            simple_analysis=simple_analysis,
            output_type=output_type,
            multiple_results=multiple_results,
            analyzer_kwargs=analyzer_kwargs,
            aggregator_kwargs=aggregator_kwargs,
            test_mode=test_mode,
            test_kwargs=test_kwargs,
        )

    def _aggregated(self, aggregated: Any) -> None:
        # as the SDK's StarLocalDPModel does, every round (an aggregate, not patient data)
        self.flame.flame_log(f"Aggregated results: {str(aggregated)[:100]}")

    def _local_dp(self, node: Any) -> dict[str, float] | None:
        if node.delta_criteria and self.epsilon is not None and self.sensitivity is not None:
            self.flame.flame_log(
                f"Applying local DP with epsilon={self.epsilon} and sensitivity={self.sensitivity}",
                log_type="info",
            )
            return {"epsilon": self.epsilon, "sensitivity": self.sensitivity}
        return None
