"""A local FLAME node: run an uploaded analysis as FLAME runs it, before submitting it.

``python -m flame_offline.emulator`` (``make flame-node``) starts one pod per node (each
hospital folder and the aggregator) in its own network, mount and PID namespaces, runs the
unmodified Hub entrypoint in it under the real FLAME SDK, with only a FLAME container's
environment, and serves every node service the SDK talks to over real HTTP: nginx, the message
broker (with webhook delivery and acknowledgements), the storage service, the hub adapter's data
store list, the s3 bucket behind Kong, the log stream and the pod orchestration's status loop.

Modules: :mod:`~.gateway` (nginx), :mod:`~.broker`, :mod:`~.storage`, :mod:`~.s3`,
:mod:`~.logs`, :mod:`~.orchestrator`, :mod:`~.netns` and :mod:`~.relay` (isolation),
:mod:`~.sandbox` (a pod's first process), :mod:`~.runner`, :mod:`~.report`, :mod:`~.cli`.
Standard library only; Linux and root only (network namespaces).
"""

from flame_offline.emulator.broker import Fault
from flame_offline.emulator.netns import NamespaceUnavailable
from flame_offline.emulator.runner import RunConfig, RunResult, UsageError, run

__all__ = ["Fault", "NamespaceUnavailable", "RunConfig", "RunResult", "UsageError", "run"]
