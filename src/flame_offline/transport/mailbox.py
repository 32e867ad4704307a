"""A node's inbox: received control messages and the intermediate data addressed to it.

Guarantees (beyond the SDK's local mock, which polls every 10 ms):

* **No polling.** A waiting node blocks on the mailbox's :class:`threading.Condition` and is
  woken by the delivery it waits for, not before: an aggregator awaiting four hospitals
  sleeps through the first three arrivals.
* **Production's read/unread model.** Every received message stays in the mailbox (for
  ``get_messages``) until deleted; a wait returns, per sender, *every* unread message of the
  category and marks them read, as production's ``await_messages`` does.
* **End announcement.** While a node waits for anything else, an ``analysis_finished``
  message ends the wait: the wait answers ``None`` (the node is finished).
* **Stop on failure.** :meth:`Mailbox.stop` makes every current and later wait raise
  :class:`~flame_offline.errors.NodeStopped` at once.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from flame_offline.errors import NodeStopped
from flame_offline.messages import Message, created_at, decode_message
from flame_offline.transport.protocol import FINISHED_CATEGORY, Delivery, Payload

__all__ = ["Mailbox", "WaitExpired"]


class WaitExpired(Exception):
    """A wait ran out of time; carries what it consumed and who is missing."""

    def __init__(self, received: dict[str, list[Message]], missing: list[str]) -> None:
        super().__init__(missing)
        self.received = received
        self.missing = missing


class Mailbox:
    """The inbox of one node.

    Parameters
    ----------
    owner : str
        The node's id (it acknowledges received messages).
    """

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._cond = threading.Condition(threading.Lock())
        self._messages: list[Message] = []
        # unread messages per (category, sender), oldest first; entries read or deleted
        # meanwhile (Message.set_read, delete_messages) are skipped lazily
        self._unread: dict[tuple[str, str], deque[Message]] = {}
        self._data: dict[str, bytes] = {}
        # (category, senders) of each wait now blocked in take(): a delivery wakes the owner
        # only when it may complete one of them
        self._waits: list[tuple[str, list[str]]] = []
        self._finished = False
        self._stop_reason: str | None = None

    @property
    def stop_reason(self) -> str | None:
        """Why the mailbox was stopped, or ``None`` while the run goes on."""
        return self._stop_reason

    @property
    def finished(self) -> bool:
        """Whether the end of the analysis was announced to this node."""
        return self._finished

    def put(self, *deliveries: Delivery) -> None:
        """Store deliveries (in order) and wake the owner if it waits."""
        messages = [
            (d.key, d.sender, decode_message(d.payload, self.owner))
            for d in deliveries
            if d.kind is Payload.MESSAGE
        ]
        with self._cond:
            for delivery in deliveries:
                if delivery.kind is Payload.DATA:
                    self._data[delivery.key] = delivery.payload
            for category, sender, message in messages:
                self._messages.append(message)
                self._unread.setdefault((category, sender), deque()).append(message)
                if category == FINISHED_CATEGORY:
                    self._finished = True
            if messages and self._completes_a_wait():
                self._cond.notify_all()

    def _completes_a_wait(self) -> bool:
        """Whether a blocked wait may now be over (called with the lock held).

        A wait is over when the end was announced, or when every awaited sender has a queued
        message of the category (a necessary condition: ``take`` checks the rest, so a wake
        may still be spurious, but no completing delivery goes unnoticed).
        """
        for category, senders in self._waits:
            if self._finished and category != FINISHED_CATEGORY:
                return True
            if all(self._unread.get((category, sender)) for sender in senders):
                return True
        return False

    def stop(self, reason: str) -> None:
        """Stop the mailbox: current and later waits raise ``NodeStopped(reason)``."""
        with self._cond:
            if self._stop_reason is None:
                self._stop_reason = reason
            self._cond.notify_all()

    def data(self, storage_id: str) -> bytes | None:
        """Return the pickled intermediate data under ``storage_id`` for this node, if any."""
        with self._cond:
            return self._data.get(storage_id)

    def messages(self, status: str | None = None) -> list[Message]:
        """Received messages (not deleted), in arrival order; only ``status`` ones if given."""
        with self._cond:
            return [m for m in self._messages if status is None or m.meta["status"] == status]

    def delete(self, message_ids: set[str]) -> int:
        """Delete received messages by id; return how many were deleted."""
        return self._remove(lambda m: m.meta["id"] in message_ids)

    def clear(self, status: str, min_age: float | None) -> int:
        """Delete received messages of ``status`` (``'all'``: any) older than ``min_age`` s."""

        def old(message: Message) -> bool:
            if min_age is None:
                return True
            return time.time() - created_at(message) > min_age

        return self._remove(lambda m: (status == "all" or m.meta["status"] == status) and old(m))

    def _remove(self, doomed) -> int:
        with self._cond:
            keep = []
            for message in self._messages:
                if doomed(message):
                    message._deleted = True
                else:
                    keep.append(message)
            removed = len(self._messages) - len(keep)
            self._messages = keep
            return removed

    def take(
        self,
        senders: list[str],
        category: str,
        timeout: float | None,
        message_id: str | None = None,
    ) -> dict[str, list[Message]] | None:
        """Block until each sender has an unread message of ``category``; mark them read.

        Parameters
        ----------
        senders : list of str
            The awaited senders (duplicates count once).
        category : str
            The message category.
        timeout : float or None
            Longest wait in seconds.
        message_id : str, optional
            Only the message with this id counts.

        Returns
        -------
        dict or None
            Sender to its unread messages (oldest first), in the order of ``senders``;
            ``None`` when an end announcement arrived (and ``category`` is not the
            announcement's).

        Raises
        ------
        NodeStopped
            If the run was stopped.
        WaitExpired
            If ``timeout`` seconds passed first (what had arrived is consumed and carried).
        """
        senders = list(dict.fromkeys(senders))
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._stop_reason is not None:
                    raise NodeStopped(self._stop_reason)
                if self._finished and category != FINISHED_CATEGORY:
                    return None
                found = {s: self._pending(category, s, message_id) for s in senders}
                missing = [s for s, pending in found.items() if not pending]
                if not missing:
                    return {s: self._consume(category, s, found[s]) for s in senders}
                remaining = None
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        received = {
                            s: self._consume(category, s, pending)
                            for s, pending in found.items()
                            if pending
                        }
                        raise WaitExpired(received, missing)
                wait = (category, senders)
                self._waits.append(wait)
                try:
                    self._cond.wait(remaining)
                finally:
                    self._waits.remove(wait)

    def _pending(self, category: str, sender: str, message_id: str | None) -> list[Message]:
        queue = self._unread.get((category, sender))
        if not queue:
            return []
        while queue and (queue[0]._deleted or queue[0].meta["status"] != "unread"):
            queue.popleft()
        return [
            m
            for m in queue
            if not m._deleted
            and m.meta["status"] == "unread"
            and (message_id is None or m.meta["id"] == message_id)
        ]

    def _consume(self, category: str, sender: str, messages: list[Message]) -> list[Message]:
        for message in messages:
            message.set_read()
        queue = self._unread[category, sender]
        while queue and queue[0].meta["status"] != "unread":
            queue.popleft()
        return messages
