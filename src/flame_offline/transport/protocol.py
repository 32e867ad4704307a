"""The engine's wire protocol: what travels between a node and the tester, in one place.

A node talks to the rest of the run only through its :class:`Endpoint`. Two kinds of
:class:`Delivery` reach another node's mailbox, both as ``bytes``:

==================  =========================================================================
``Payload.MESSAGE``  A control message: the JSON text of its body (``{..., 'meta': {...}}``),
                     as production's message broker carries it (``send_message``).
``Payload.DATA``     Intermediate data addressed to the receiver: the pickled object under its
                     storage id, as production's storage service keeps it
                     (``save_intermediate_data(..., 'global', remote_node_ids)``).
==================  =========================================================================

``send_intermediate_data`` is production's pair: one ``DATA`` delivery, then one ``MESSAGE``
whose body carries the storage id (``{'result_id': {receiver: id}}``).

With ``isolation='thread'`` an endpoint calls the receivers' mailboxes and the tester's
:class:`~flame_offline.transport.run.RunState` directly. With ``isolation='process'`` each
node process has one duplex pipe to the tester; every frame is a tuple whose first item is
a :class:`Frame`:

=================  ==================  ==================================================
Frame              direction           items after the frame kind
=================  ==================  ==================================================
``Frame.POST``     node → tester       receivers (list of node ids), the pickled
                                       ``DELIVER`` frame to forward to each
``Frame.LOG``      node → tester       :class:`~flame_offline.logs.LogRecord`
``Frame.FINAL``    node → tester       :class:`FinalSubmission`
``Frame.REPORT``   node → tester       :class:`NodeReport` (the node's last frame)
``Frame.DELIVER``  tester → node       tuple of :class:`Delivery` (from a ``POST``)
``Frame.STOP``     tester → node       reason (str): another node failed, stop now
=================  ==================  ==================================================

A closed pipe means the other side is gone: the tester reports a node whose pipe closes
before its ``REPORT`` as failed; a node whose tester is gone exits at once, quietly.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from flame_offline.logs import LogRecord
    from flame_offline.transport.mailbox import Mailbox

__all__ = [
    "FINISHED_CATEGORY",
    "Delivery",
    "Endpoint",
    "FinalSubmission",
    "Frame",
    "NodeReport",
    "Payload",
]

#: Category of the end announcement sent by ``analysis_finished()``.
FINISHED_CATEGORY = "analysis_finished"


class Payload(enum.Enum):
    """What a :class:`Delivery` carries."""

    MESSAGE = "message"
    DATA = "data"


class Frame(enum.Enum):
    """The kind of a frame on a node process's pipe (first item of every frame)."""

    POST = "post"
    LOG = "log"
    FINAL = "final"
    REPORT = "report"
    DELIVER = "deliver"
    STOP = "stop"


@dataclass(frozen=True)
class Delivery:
    """One item for other nodes' mailboxes.

    Attributes
    ----------
    kind : Payload
        ``MESSAGE`` or ``DATA``.
    sender : str
        The sending node.
    key : str
        The message category (``MESSAGE``) or the storage id (``DATA``).
    payload : bytes
        JSON text (``MESSAGE``) or a pickle (``DATA``).
    """

    kind: Payload
    sender: str
    key: str
    payload: bytes = field(repr=False)


@dataclass(frozen=True)
class FinalSubmission:
    """The aggregator's final result, as it leaves the node.

    Attributes
    ----------
    payload : bytes
        The pickled result object (after local DP, if any).
    bodies : list of tuple of (str, bytes)
        ``(output_type, file content)`` per result file: one entry, or one per element
        when ``multiple`` is true.
    multiple : bool
        Whether the result was split into several results.
    """

    payload: bytes = field(repr=False)
    bodies: list[tuple[str, bytes]] = field(repr=False)
    multiple: bool


@dataclass(frozen=True)
class NodeReport:
    """How a node's run ended.

    Attributes
    ----------
    node_id, role : str
        The node.
    status : {'done', 'failed', 'stopped'}
        ``'stopped'``: ended because another node failed.
    error_type, message, traceback : str
        The failure (empty otherwise).
    error_payload : bytes or None
        The pickled exception, when it could be pickled.
    """

    node_id: str
    role: str
    status: str
    error_type: str = ""
    message: str = ""
    traceback: str = ""
    error_payload: bytes | None = field(default=None, repr=False)


class Endpoint(Protocol):
    """A node's connection to the run (the only way a node reaches other nodes or the tester).

    Attributes
    ----------
    node_id : str
        The node.
    timeout : float or None
        The tester's longest wait for messages (``None``: wait forever).
    mailbox : Mailbox
        The node's own inbox: deliveries from other nodes arrive here.
    """

    node_id: str
    timeout: float | None
    mailbox: Mailbox

    def post(self, receivers: list[str], deliveries: Sequence[Delivery]) -> None:
        """Put ``deliveries`` into each receiver's mailbox, in order (one transfer).

        Raises ``NodeStopped`` once the run is stopped.
        """

    def log(self, record: LogRecord) -> None:
        """Hand one log record to the tester (live)."""

    def submit(self, submission: FinalSubmission) -> None:
        """Hand the final result to the tester."""

    def report(self, report: NodeReport) -> None:
        """Tell the tester how the node ended; the first failure stops every other node."""
