"""A node's inbox: a wait is woken by the delivery that can complete it, not by every one."""

from __future__ import annotations

import threading

import pytest

from flame_offline.messages import encode_message, outgoing_meta
from flame_offline.transport import FINISHED_CATEGORY, Delivery, Mailbox, Payload


def message(sender: str, category: str, number: int = 0) -> Delivery:
    body = {"meta": outgoing_meta(sender, category, number, f"id-{sender}-{number}")}
    return Delivery(Payload.MESSAGE, sender, category, encode_message(body))


class CountingMailbox(Mailbox):
    """A mailbox that counts how often its owner is woken."""

    def __init__(self, owner: str) -> None:
        super().__init__(owner)
        self.wakes = 0
        notify_all = self._cond.notify_all

        def counted() -> None:
            self.wakes += 1
            notify_all()

        self._cond.notify_all = counted


def waiting(box: Mailbox, senders: list[str], category: str) -> tuple[threading.Thread, dict]:
    """Start a thread blocked in ``box.take``; wait until it blocks; return it and its result."""
    got: dict = {}
    thread = threading.Thread(target=lambda: got.update(r=box.take(senders, category, 5.0)))
    thread.start()
    blocked(box, thread)
    return thread, got


def blocked(box: Mailbox, thread: threading.Thread) -> None:
    """Return once ``thread`` blocks in a wait of ``box`` (fail after 5 s)."""
    for _ in range(5000):
        if box._waits:
            return
        thread.join(0.001)
    pytest.fail("the wait never blocked")


def test_a_wait_for_four_senders_is_woken_once():
    box = CountingMailbox("aggregator")
    senders = [f"node-{i}" for i in range(1, 5)]
    thread, got = waiting(box, senders, "intermediate_data")
    for sender in senders[:3]:
        box.put(message(sender, "intermediate_data"))
    box.put(message("node-4", "other"))
    assert box.wakes == 0
    assert thread.is_alive()
    box.put(message("node-4", "intermediate_data"))
    thread.join(5)
    assert box.wakes == 1
    assert list(got["r"]) == senders
    assert box._waits == []


@pytest.mark.parametrize("arrived_first", [[], ["node-1"], ["node-1", "node-2"]])
def test_the_end_announcement_ends_any_wait(arrived_first):
    box = CountingMailbox("node-3")
    thread, got = waiting(box, ["node-1", "node-2"], "intermediate_data")
    for sender in arrived_first:
        box.put(message(sender, "other"))
    box.put(message("aggregator", FINISHED_CATEGORY))
    thread.join(5)
    assert got == {"r": None}


def test_messages_arrived_before_the_wait_complete_it_without_a_wake():
    box = CountingMailbox("aggregator")
    box.put(message("node-1", "ping"), message("node-2", "ping"))
    assert list(box.take(["node-1", "node-2"], "ping", 1.0)) == ["node-1", "node-2"]


def test_stop_wakes_a_wait_that_nothing_completes():
    box = Mailbox("aggregator")
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            box.take(["node-1"], "ping", 5.0)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=wait)
    thread.start()
    blocked(box, thread)
    box.stop("stopped because node 'node-2' (analyzer) failed")
    thread.join(5)
    assert [type(e).__name__ for e in errors] == ["NodeStopped"]
