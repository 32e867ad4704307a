"""Message transport of the offline engine.

* :mod:`~flame_offline.transport.protocol`: the wire protocol in one place: what travels
  (:class:`~flame_offline.transport.protocol.Delivery`, its
  :class:`~flame_offline.transport.protocol.Payload` kinds, the pipe
  :class:`~flame_offline.transport.protocol.Frame` kinds) and the
  :class:`~flame_offline.transport.protocol.Endpoint` protocol every node talks through.
* :mod:`~flame_offline.transport.mailbox`: a node's inbox (blocking waits, no polling).
* :mod:`~flame_offline.transport.threads`: thread isolation (one in-memory bus).
* :mod:`~flame_offline.transport.processes`: process isolation (pipes and a router).
* :mod:`~flame_offline.transport.run`: what the tester learns about a run.

Everything that travels between nodes is ``bytes``: the core pickles intermediate data and
the final result, and encodes control messages as JSON, in both isolation modes.
"""

from flame_offline.transport.mailbox import Mailbox, WaitExpired
from flame_offline.transport.processes import ChildEndpoint, ProcessRouter
from flame_offline.transport.protocol import (
    FINISHED_CATEGORY,
    Delivery,
    Endpoint,
    FinalSubmission,
    Frame,
    NodeReport,
    Payload,
)
from flame_offline.transport.run import RunState
from flame_offline.transport.threads import ThreadBus, ThreadEndpoint, default_bus

__all__ = [
    "FINISHED_CATEGORY",
    "ChildEndpoint",
    "Delivery",
    "Endpoint",
    "FinalSubmission",
    "Frame",
    "Mailbox",
    "NodeReport",
    "Payload",
    "ProcessRouter",
    "RunState",
    "ThreadBus",
    "ThreadEndpoint",
    "WaitExpired",
    "default_bus",
]
