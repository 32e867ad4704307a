"""The message broker: its routes, recipients, webhook delivery, retries and faults."""

from __future__ import annotations

import json
import threading

import pytest
from _services import make_spec, sdk_request

from flame_offline.emulator import broker as broker_module
from flame_offline.emulator.broker import Fault, MessageBroker, category_of
from flame_offline.emulator.timeline import Timeline


class Recorder:
    """Stands in for the nodes' webhooks: records (node, url, message) and answers ``status``."""

    def __init__(self, statuses=()):
        self.calls = []
        self.statuses = list(statuses)
        self.done = threading.Condition()

    def __call__(self, node, url, payload):
        with self.done:
            self.calls.append((node.name, url, json.loads(payload)))
            self.done.notify_all()
        if self.statuses:
            status = self.statuses.pop(0)
            if isinstance(status, Exception):
                raise status
            return status
        return 200

    def wait_for(self, count):
        with self.done:
            assert self.done.wait_for(lambda: len(self.calls) >= count, timeout=10)
        return self.calls


@pytest.fixture
def spec(tmp_path):
    return make_spec(tmp_path)


def make_broker(spec, recorder, faults=()):
    return MessageBroker(spec, Timeline(), recorder, faults)


def base(spec):
    return f"/analyses/{spec.analysis_id}"


def subscribe(broker, spec, node):
    url = f"http://{spec.nginx_host}/analysis/webhook"
    return broker.handle(
        node, sdk_request(node, "POST", f"{base(spec)}/messages/subscriptions", {"webhookUrl": url})
    )


def post(broker, spec, sender, recipients, sent):
    """POST ``sent`` from ``sender`` to ``recipients`` (node ids) as the SDK does."""
    body = {"recipients": recipients, "message": sent}
    return broker.handle(sender, sdk_request(sender, "POST", f"{base(spec)}/messages", body))


def message(sender, category, number=0, akn_id=None):
    return {
        "meta": {
            "category": category,
            "id": f"{sender.node_id}-{number}",
            "akn_id": akn_id,
            "sender": sender.node_id,
        }
    }


def test_participants_and_self(spec):
    broker = make_broker(spec, Recorder())
    node1 = spec.node("node1")
    everyone = json.loads(
        broker.handle(node1, sdk_request(node1, "GET", f"{base(spec)}/participants")).body
    )
    assert everyone == [{"nodeId": n.node_id, "nodeType": n.role} for n in spec.nodes]
    assert {p["nodeType"] for p in everyone} == {"default", "aggregator"}
    me = json.loads(
        broker.handle(node1, sdk_request(node1, "GET", f"{base(spec)}/participants/self")).body
    )
    assert me == {"nodeId": node1.node_id, "nodeType": "default"}
    broker.close()


def test_subscription_is_created_and_listed(spec):
    broker = make_broker(spec, Recorder())
    node1 = spec.node("node1")
    response = subscribe(broker, spec, node1)
    assert response.status == 201
    created = json.loads(response.body)
    assert created["webhookUrl"] == f"http://{spec.nginx_host}/analysis/webhook"
    assert response.headers["Location"].endswith(created["subscriptionId"])
    listed = broker.handle(node1, sdk_request(node1, "GET", f"{base(spec)}/messages/subscriptions"))
    assert json.loads(listed.body) == [created]
    broker.close()


@pytest.mark.parametrize(
    ("request_", "status"),
    [
        (
            lambda n, s: sdk_request(
                n, "GET", f"/analyses/{s.analysis_id}/participants", authorization="Bearer x"
            ),
            401,
        ),
        (lambda n, s: sdk_request(n, "GET", "/analyses/other/participants"), 502),
        (lambda n, s: sdk_request(n, "GET", f"/analyses/{s.analysis_id}/unknown"), 404),
        (
            lambda n, s: sdk_request(
                n,
                "POST",
                f"/analyses/{s.analysis_id}/messages/subscriptions",
                {"webhookUrl": "nope"},
            ),
            400,
        ),
    ],
)
def test_refused_requests(spec, request_, status):
    broker = make_broker(spec, Recorder())
    node1 = spec.node("node1")
    assert broker.handle(node1, request_(node1, spec)).status == status
    broker.close()


@pytest.mark.parametrize("recipients", [[], "x", ["not-a-node"], "self"])
def test_recipients_must_be_other_nodes(spec, recipients):
    broker = make_broker(spec, Recorder())
    node1 = spec.node("node1")
    if recipients == "self":
        recipients = [node1.node_id]
    response = post(broker, spec, node1, recipients, message(node1, "ready_check"))
    assert response.status == 400
    broker.close()


def test_message_is_delivered_unchanged_to_each_recipient_webhook(spec):
    recorder = Recorder()
    broker = make_broker(spec, recorder)
    node1, node2, agg = spec.node("node1"), spec.node("node2"), spec.aggregator
    for node in spec.nodes:
        subscribe(broker, spec, node)
    sent = message(agg, "intermediate_data")
    response = post(broker, spec, agg, [node1.node_id, node2.node_id], sent)
    assert response.status == 202
    calls = recorder.wait_for(2)
    assert sorted(call[0] for call in calls) == ["node1", "node2"]
    assert all(call[2] == sent for call in calls)
    assert all(call[1] == f"http://{spec.nginx_host}/analysis/webhook" for call in calls)
    broker.close()


def test_broadcast_reaches_every_other_node(spec):
    recorder = Recorder()
    broker = make_broker(spec, recorder)
    for node in spec.nodes:
        subscribe(broker, spec, node)
    node1 = spec.node("node1")
    body = {"message": message(node1, "hello")}
    assert (
        broker.handle(
            node1, sdk_request(node1, "POST", f"{base(spec)}/messages/broadcast", body)
        ).status
        == 202
    )
    assert sorted(c[0] for c in recorder.wait_for(2)) == ["aggregator", "node2"]
    broker.close()


def test_deliveries_to_one_recipient_keep_their_order(spec):
    recorder = Recorder()
    broker = make_broker(spec, recorder)
    subscribe(broker, spec, spec.aggregator)
    node1 = spec.node("node1")
    for number in range(5):
        sent = message(node1, "intermediate_data", number)
        post(broker, spec, node1, [spec.aggregator.node_id], sent)
    calls = recorder.wait_for(5)
    assert [c[2]["meta"]["id"] for c in calls] == [f"{node1.node_id}-{i}" for i in range(5)]
    broker.close()


def test_undeliverable_messages_are_dropped_not_retried(spec):
    recorder = Recorder([ConnectionRefusedError("refused")])
    broker = make_broker(spec, recorder)
    subscribe(broker, spec, spec.aggregator)
    node1 = spec.node("node1")
    post(broker, spec, node1, [spec.aggregator.node_id], message(node1, "ready_check"))
    recorder.wait_for(1)
    broker.close()
    [delivery] = broker.timeline.events("delivery")
    assert not delivery.data["ok"]
    assert delivery.data["error"] == "refused"
    assert len(recorder.calls) == 1


def test_server_errors_are_retried(spec, monkeypatch):
    monkeypatch.setattr(broker_module, "RETRY_DELAY", 0.001)
    recorder = Recorder([503, 500, 200])
    broker = make_broker(spec, recorder)
    subscribe(broker, spec, spec.aggregator)
    node1 = spec.node("node1")
    post(broker, spec, node1, [spec.aggregator.node_id], message(node1, "ready_check"))
    recorder.wait_for(3)
    broker.close()
    [delivery] = broker.timeline.events("delivery")
    assert (delivery.data["ok"], delivery.data["attempts"]) == (True, 3)


def test_message_without_subscription_is_dropped(spec):
    broker = make_broker(spec, Recorder())
    node1 = spec.node("node1")
    post(broker, spec, node1, [spec.aggregator.node_id], message(node1, "ready_check"))
    broker.close()
    deliveries = broker.timeline.events("delivery")
    assert [d.data["error"] for d in deliveries] in ([], ["no subscription"])


def test_duplicate_fault_delivers_the_nth_matching_message_twice(spec):
    recorder = Recorder()
    fault = Fault.parse("duplicate", "category=intermediate_data,from=node1,nth=2")
    broker = make_broker(spec, recorder, [fault])
    subscribe(broker, spec, spec.aggregator)
    node1 = spec.node("node1")
    for number in range(3):
        sent = message(node1, "intermediate_data", number)
        post(broker, spec, node1, [spec.aggregator.node_id], sent)
    calls = recorder.wait_for(4)
    broker.close()
    numbers = [c[2]["meta"]["id"].rsplit("-", 1)[1] for c in calls]
    assert numbers == ["0", "1", "1", "2"]
    [event] = broker.timeline.events("fault")
    assert event.data["fault"] == "intermediate_data message #2 from node1: delivered twice"


def test_delay_fault_lets_later_messages_overtake(spec):
    recorder = Recorder()
    fault = Fault.parse("delay", "category=intermediate_data,nth=1,seconds=0.3")
    broker = make_broker(spec, recorder, [fault])
    subscribe(broker, spec, spec.aggregator)
    node1 = spec.node("node1")
    for number in range(2):
        sent = message(node1, "intermediate_data", number)
        post(broker, spec, node1, [spec.aggregator.node_id], sent)
    calls = recorder.wait_for(2)
    broker.close()
    assert [c[2]["meta"]["id"][-1] for c in calls] == ["1", "0"]


def test_category_of_acknowledgements():
    assert category_of({"meta": {"category": "ready_check", "akn_id": None}}) == (
        "ready_check",
        "ready_check",
    )
    assert category_of({"meta": {"category": "ready_check", "akn_id": "n"}}) == (
        "acknowledgement",
        "ready_check",
    )
    assert category_of({"no": "meta"}) == ("unknown", "unknown")


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        ("duplicate", "category=ready_check", Fault("duplicate", "ready_check")),
        (
            "delay",
            "category=x, from=node1 ,to=aggregator,nth=3,seconds=1.5",
            Fault("delay", "x", "node1", "aggregator", 3, 1.5),
        ),
    ],
)
def test_fault_parse(kind, text, expected):
    assert Fault.parse(kind, text) == expected


@pytest.mark.parametrize(
    ("kind", "text", "match"),
    [
        ("duplicate", "from=node1", "'category' is required"),
        ("duplicate", "category=x,seconds=1", "keys category, from, nth, to; got 'seconds=1'"),
        ("duplicate", "category=x,nth=0", "'nth' must be 1 or more"),
        ("duplicate", "category=x,nth=two", "'nth' must be a whole number"),
        ("delay", "category=x", r"'seconds' must be in \(0, 600\]"),
        ("delay", "category", "key=value pairs"),
    ],
)
def test_fault_parse_errors(kind, text, match):
    with pytest.raises(ValueError, match=match):
        Fault.parse(kind, text)
