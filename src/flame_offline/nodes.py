"""Node base classes of the star pattern: :class:`StarAnalyzer` and :class:`StarAggregator`.

They follow the FLAME SDK's ``flame.star`` bases exactly (see the contract): the same
attributes, the same bookkeeping in :meth:`StarAnalyzer.analyze` and
:meth:`StarAggregator.aggregate`, and, as in the SDK, ``@abstractmethod`` markers on a plain
class (no ``ABCMeta``), so a subclass that forgets a method is still instantiable and fails
only when the method is called.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

__all__ = ["Node", "StarAggregator", "StarAnalyzer"]


class Node:
    """State shared by analyzer and aggregator nodes.

    Parameters
    ----------
    flame : object
        The node's core object (``FlameCoreSDK`` in production, the engine's
        :class:`~flame_offline.core.FlameCore` locally).

    Attributes
    ----------
    flame : object
        The core object.
    id : str
        This node's id.
    role : str
        ``'default'`` (analyzer) or ``'aggregator'``.
    finished : bool
        Set by :meth:`node_finished`.
    latest_result : object
        The node's last result (an analyzer's last broadcast from the aggregator, once
        received).
    partner_node_ids : list of str
        The ids of every *other* participant.
    num_iterations : int
        Completed rounds.
    """

    def __init__(self, flame: Any) -> None:
        self.flame = flame
        self.id = flame.get_id()
        self.role = flame.get_role()
        self.finished = False
        self.latest_result: Any = None
        self.partner_node_ids: list[str] = flame.get_participant_ids()
        self.num_iterations = 0

    def node_finished(self) -> None:
        """Mark the node finished (ends its loop in :class:`~flame_offline.StarModel`)."""
        self.finished = True


class StarAnalyzer(Node):
    """Base class of an analyzer node (role ``'default'``): override :meth:`analysis_method`.

    Raises
    ------
    ValueError
        If the node's role is not ``'default'``.
    """

    def __init__(self, flame: Any) -> None:
        super().__init__(flame)
        if self.role != "default":
            raise ValueError(
                "Attempted to initialize analyzer node with mismatching configuration "
                f'(expected: node_role="default", received="{self.role}").'
            )

    def analyze(self, data: list[Any]) -> Any:
        """Run one round: ``analysis_method(data, latest_result)``, keep and return its result.

        ``num_iterations`` is incremented *after* the call (0 inside the first round).
        """
        result = self.analysis_method(data, self.latest_result)
        self.latest_result = result
        self.num_iterations += 1
        return self.latest_result

    @abstractmethod
    def analysis_method(self, data: list[Any], aggregator_results: Any) -> Any:
        """Analyze the node's data; to be overridden.

        Parameters
        ----------
        data : list of dict
            One dict per data source (s3: object key → ``bytes``; FHIR: query → bundle).
        aggregator_results : object
            ``None`` in the first round, then the aggregator's last broadcast result.

        Returns
        -------
        object
            The intermediate result sent to the aggregator (must survive pickle).
        """


class StarAggregator(Node):
    """Base class of the aggregator node.

    Override :meth:`aggregation_method` and :meth:`has_converged`.

    Attributes
    ----------
    delta_criteria : bool
        The value :meth:`has_converged` returned in the last round.

    Raises
    ------
    ValueError
        If the node's role is not ``'aggregator'``.
    """

    delta_criteria: bool = False

    def __init__(self, flame: Any) -> None:
        super().__init__(flame)
        if self.role != "aggregator":
            raise ValueError(
                "Attempted to initialize aggregator node with mismatching configuration "
                f'(expected: node_role="aggregator", received="{self.role}").'
            )

    def aggregate(self, node_results: list[Any], simple_analysis: bool = True) -> tuple[Any, bool]:
        """Run one round of aggregation.

        ``has_converged`` is always called (also in the first round, with
        ``last_result=None``, and when ``simple_analysis`` is true). The run converges when
        ``simple_analysis`` is true; otherwise when ``has_converged`` says so, except in the
        first round (``num_iterations == 0``), which never converges.

        Parameters
        ----------
        node_results : list
            One intermediate result per analyzer.
        simple_analysis : bool
            Whether the analysis has a single round.

        Returns
        -------
        tuple of (object, bool)
            The aggregated result and whether the run converged.
        """
        result = self.aggregation_method(node_results)
        self.delta_criteria = self.has_converged(result, self.latest_result)
        if simple_analysis:
            converged = True
        else:
            converged = self.delta_criteria if self.num_iterations != 0 else False
        self.latest_result = result
        self.num_iterations += 1
        return self.latest_result, converged

    @abstractmethod
    def aggregation_method(self, analysis_results: list[Any]) -> Any:
        """Aggregate the analyzers' results (a plain list, no node identity); to be overridden."""

    @abstractmethod
    def has_converged(self, result: Any, last_result: Any) -> bool:
        """Return whether ``result`` (vs the previous round's ``last_result``) has converged."""
