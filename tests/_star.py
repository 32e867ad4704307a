"""The star pattern by hand (test helper): the node classes without an engine.

``run_by_hand`` does what ``StarModel`` does, in the order of the tutorial's "Training Flow
Example": every hospital analyzes, every message crosses as a pickle (as in production), the
aggregator aggregates and says whether the analysis converged, and the broadcast crosses back.
It works with the offline engine's bases and the real SDK's alike.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import Any

from pancreas_fl.analysis import FederatedLogisticRegression, PancreasAnalyzer


class StubCore:
    """The core calls the node classes make (a subset of FLAME's ``FlameCoreSDK``)."""

    def __init__(self, node_id: str, role: str) -> None:
        self.node_id = node_id
        self.role = role
        self.logs: list[tuple[str, str]] = []

    def get_id(self) -> str:
        return self.node_id

    def get_role(self) -> str:
        return self.role

    def get_participant_ids(self) -> list[str]:
        return []

    def flame_log(self, msg, sep=" ", end="\n", log_type="info", **kwargs) -> None:
        self.logs.append((log_type, str(msg)))


@dataclass
class Run:
    """What crossed between the nodes, round by round, and the nodes themselves."""

    hospitals: list[PancreasAnalyzer]
    aggregator: FederatedLogisticRegression
    sent: list[list[Any]] = field(default_factory=list)  # per round: the hospitals' messages
    broadcasts: list[Any] = field(default_factory=list)  # per round but the last
    result: Any = None


def crossing(obj):
    """Return an object as the receiving node gets it: pickled and unpickled."""
    return pickle.loads(pickle.dumps(obj))


def run_by_hand(splits, max_rounds: int = 1000, **params) -> Run:
    """Run the analysis round by round on ``splits`` (one s3 data list per hospital)."""
    hospitals = [
        PancreasAnalyzer(StubCore(f"node-{i + 1}", "default"), **params) for i in range(len(splits))
    ]
    aggregator = FederatedLogisticRegression(StubCore("aggregator", "aggregator"), **params)
    run = Run(hospitals, aggregator)
    for _ in range(max_rounds):
        messages = [
            hospital.analyze(data) for hospital, data in zip(hospitals, splits, strict=True)
        ]
        run.sent.append(messages)
        result, converged = aggregator.aggregate(
            [crossing(message) for message in messages], simple_analysis=False
        )
        if converged:
            run.result = result
            return run
        run.broadcasts.append(result)
        for hospital in hospitals:
            hospital.latest_result = crossing(result)
    raise AssertionError(f"no convergence in {max_rounds} rounds")
