"""Offline engine of the FLAME star pattern (``flame.star``), for local runs and tests.

It implements the contract of the FLAME SDK's ``StarModel``, ``StarAnalyzer``,
``StarAggregator`` and ``StarModelTester`` (see ``flame-star-contract.md``) with only the
standard library (numpy for local-DP noise). Its nodes behave like production FLAME nodes
(flamesdk 0.5/0.6) where production and the SDK's local mock differ, and it adds guarantees
of its own: everything between nodes travels as bytes, nothing is polled, node failures and
timeouts raise, and nodes may run in separate processes. Inside FLAME the real SDK is used
instead.
"""

from flame_offline.errors import LoggedError, NodeFailedError, NodeTimeoutError, ScriptGuardError
from flame_offline.logs import LOG_LEVELS, LOG_TYPES, LogRecord
from flame_offline.messages import Message
from flame_offline.model import StarLocalDPModel, StarModel
from flame_offline.nodes import StarAggregator, StarAnalyzer
from flame_offline.tester import StarModelTester

__all__ = [
    "LOG_LEVELS",
    "LOG_TYPES",
    "LogRecord",
    "LoggedError",
    "Message",
    "NodeFailedError",
    "NodeTimeoutError",
    "ScriptGuardError",
    "StarAggregator",
    "StarAnalyzer",
    "StarLocalDPModel",
    "StarModel",
    "StarModelTester",
]
