"""Offline engine of the FLAME star pattern (``flame.star``), for local runs and tests.

It implements the contract of the FLAME SDK's ``StarModel``, ``StarAnalyzer``,
``StarAggregator`` and ``StarModelTester`` (see ``flame-star-contract.md``) with only the
standard library (numpy for local-DP noise), plus guarantees of its own: every message is
pickled, nothing is polled, node failures and timeouts raise, and nodes may run in separate
processes. Inside FLAME the real SDK is used instead.
"""

from flame_offline.errors import NodeFailedError, NodeTimeoutError
from flame_offline.logs import LOG_TYPES, LogRecord
from flame_offline.model import StarLocalDPModel, StarModel
from flame_offline.nodes import StarAggregator, StarAnalyzer
from flame_offline.tester import StarModelTester

__all__ = [
    "LOG_TYPES",
    "LogRecord",
    "NodeFailedError",
    "NodeTimeoutError",
    "StarAggregator",
    "StarAnalyzer",
    "StarLocalDPModel",
    "StarModel",
    "StarModelTester",
]
