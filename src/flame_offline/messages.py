"""Control messages as production's message broker client hands them to an analysis.

In production (flamesdk 0.5/0.6) ``send_message(receivers, category, message)`` takes a
``dict``, adds a ``'meta'`` field to it **in place** (so the same dict cannot be sent twice)
and posts it to the message broker as JSON; ``await_messages`` answers, per sender, a list of
message objects whose ``body`` is the received dict (with its ``'meta'``), or ``None``.
:class:`Message` is the engine's equivalent of that object.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

__all__ = ["Message", "created_at", "decode_message", "encode_message", "outgoing_meta"]


class Message:
    """One control message, sent or received.

    Parameters
    ----------
    body : dict
        The message dict, including its ``'meta'`` field.
    recipients : list of str
        The receivers (a received message lists its sender, as in production).

    Attributes
    ----------
    body : dict
        The message; ``body['meta']`` holds ``'id'``, ``'category'``, ``'sender'``,
        ``'status'`` (``'unread'`` or ``'read'``), ``'created_at'``, ``'arrived_at'``, ...
    recipients : list of str
        As given.
    """

    __slots__ = ("_deleted", "body", "recipients")

    def __init__(self, body: dict[str, Any], recipients: list[str]) -> None:
        self.body = body
        self.recipients = recipients
        self._deleted = False

    @property
    def meta(self) -> dict[str, Any]:
        """The message's ``'meta'`` field."""
        return self.body["meta"]

    def set_read(self) -> None:
        """Mark the message read (an ``await_messages`` does this for what it returns)."""
        self.body["meta"]["status"] = "read"

    def __repr__(self) -> str:
        """Show the message's id, category, sender and status, never its body."""
        meta = self.body.get("meta", {})
        return (
            f"Message(id={meta.get('id')!r}, category={meta.get('category')!r}, "
            f"sender={meta.get('sender')!r}, status={meta.get('status')!r})"
        )


#: One encoder and one decoder for every message (``json.dumps`` with an option builds an
#: encoder per call); both keep no state between calls.
_ENCODER = json.JSONEncoder(allow_nan=False)
_DECODER = json.JSONDecoder()


def outgoing_meta(sender: str, category: str, number: int, unique: str) -> dict[str, Any]:
    """Build the ``'meta'`` field production adds to an outgoing message.

    Its id is production's ``f"{sender}-{number}-{uuid4}"``, with ``unique`` (a UUID string,
    see :class:`~flame_offline.ids.UniqueIds`) as the last part.
    """
    return {
        "type": "outgoing",
        "category": category,
        "id": f"{sender}-{number}-{unique}",
        "akn_id": None,
        "status": "unread",
        "sender": sender,
        "created_at": str(datetime.datetime.now()),
        "arrived_at": None,
        "number": number,
    }


def encode_message(body: dict[str, Any]) -> bytes:
    """Encode ``body`` as JSON text (``TypeError``/``ValueError`` when it is not JSON)."""
    return _ENCODER.encode(body).encode("utf-8")


def decode_message(payload: bytes, receiver: str) -> Message:
    """Decode a received message: the body, marked incoming and acknowledged by ``receiver``."""
    body = _DECODER.decode(payload.decode("utf-8"))
    meta = body["meta"]
    meta["type"] = "incoming"
    if meta.get("akn_id") is None:
        meta["akn_id"] = receiver
        meta["arrived_at"] = str(datetime.datetime.now())
    return Message(body, [meta["sender"]])


def created_at(message: Message) -> float:
    """When ``message`` was sent, as a ``time.time()`` value (from its ``'meta'``)."""
    return datetime.datetime.fromisoformat(message.body["meta"]["created_at"]).timestamp()
