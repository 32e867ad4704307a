"""The message broker of every node, and the Hub relay between them.

Each FLAME node runs a message broker (PrivateAIM/node-message-broker). Its analysis container
reaches it as ``/message-broker`` through the node's nginx:

- ``POST /analyses/{id}/messages/subscriptions`` ``{"webhookUrl": ...}`` -> 201, the
  subscription (``subscriptionId``, ``analysisId``, ``webhookUrl``); ``GET`` lists them;
- ``GET /analyses/{id}/participants`` -> every node of the analysis, ``{"nodeId",
  "nodeType"}`` (the caller included); ``.../participants/self`` -> the caller;
- ``POST /analyses/{id}/messages`` ``{"recipients": [...], "message": {...}}`` -> 202; 400
  when a recipient is not another node of the analysis; ``.../messages/broadcast`` -> 202,
  to every other node;
- ``GET /healthz``.

A message travels through the Hub to each recipient's broker, which POSTs the ``message``
object, unchanged, to every webhook subscribed there (for an analysis: its nginx's
``/analysis/webhook``, i.e. the SDK's ``/webhook`` on port 8000). As in production, a delivery
answered with a 5xx is retried with exponential back-off (5 retries from 2 s); one that
cannot connect, or is answered otherwise, is dropped (the SDK's ready check re-sends). The
receiving SDK acknowledges by sending the message back to its sender with ``akn_id`` set.

Deliveries to one recipient go out one at a time, in the order the broker accepted them,
except where a :class:`Fault` says otherwise.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import threading
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from flame_offline.emulator.spec import AnalysisSpec, NodeSpec
from flame_offline.emulator.timeline import Timeline
from flame_offline.emulator.web import Request, Response

__all__ = ["ACKNOWLEDGEMENT", "Fault", "MessageBroker", "category_of"]

ACKNOWLEDGEMENT = "acknowledgement"
RETRIES = 5
RETRY_DELAY = 2.0
DELIVERY_TIMEOUT = 60.0


def category_of(message: dict) -> tuple[str, str]:
    """Return the ``(category, subject)`` of a message.

    The message is counted under ``category``: its ``meta.category``, or ``'acknowledgement'``
    for an SDK acknowledgement (``meta.akn_id`` set); ``subject`` is always ``meta.category``
    (for an acknowledgement: what it acknowledges).
    """
    meta = message.get("meta") if isinstance(message, dict) else None
    if not isinstance(meta, dict):
        return "unknown", "unknown"
    subject = str(meta.get("category", "unknown"))
    return (ACKNOWLEDGEMENT if meta.get("akn_id") is not None else subject), subject


@dataclass
class Fault:
    """A fault the broker injects into one delivery.

    Parameters
    ----------
    kind : {'duplicate', 'delay'}
        Deliver the message twice (back to back), or ``seconds`` late (later deliveries to
        the same recipient may overtake it).
    category : str
        The message category (``'acknowledgement'`` for acknowledgements).
    sender, recipient : str, optional
        Node names (hospital folder names or ``'aggregator'``); any when not given.
    nth : int
        Which matching delivery, counting from 1 in the order the broker accepts them.
    seconds : float
        The delay.
    """

    kind: str
    category: str
    sender: str | None = None
    recipient: str | None = None
    nth: int = 1
    seconds: float = 0.0
    matched: int = 0

    @classmethod
    def parse(cls, kind: str, text: str) -> Fault:
        """Parse ``category=C[,from=NODE][,to=NODE][,nth=N][,seconds=S]``.

        Raises
        ------
        ValueError
            With a one-line explanation.
        """
        allowed = {"category", "from", "to", "nth"} | ({"seconds"} if kind == "delay" else set())
        values: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or key not in allowed or not value.strip():
                raise ValueError(
                    f"--{kind} {text!r}: expected comma-separated key=value pairs with keys "
                    f"{', '.join(sorted(allowed))}; got {item!r}."
                )
            values[key] = value.strip()
        if "category" not in values:
            raise ValueError(f"--{kind} {text!r}: 'category' is required.")
        try:
            nth = int(values.get("nth", "1"))
            seconds = float(values.get("seconds", "0"))
        except ValueError:
            raise ValueError(
                f"--{kind} {text!r}: 'nth' must be a whole number and 'seconds' a number."
            ) from None
        if nth < 1:
            raise ValueError(f"--{kind} {text!r}: 'nth' must be 1 or more.")
        if kind == "delay" and not 0 < seconds <= 600:
            raise ValueError(f"--{kind} {text!r}: 'seconds' must be in (0, 600].")
        return cls(
            kind,
            values["category"],
            values.get("from"),
            values.get("to"),
            nth,
            seconds,
        )

    def matches(self, category: str, sender: str, recipient: str) -> bool:
        """Return whether this fault applies to a message (its category, sender and recipient)."""
        return (
            category == self.category
            and self.sender in (None, sender)
            and self.recipient in (None, recipient)
        )

    def describe(self) -> str:
        """Describe the fault in one line for the report."""
        where = "".join(
            f" {word} {name}"
            for word, name in (("from", self.sender), ("to", self.recipient))
            if name
        )
        what = "delivered twice" if self.kind == "duplicate" else f"delayed {self.seconds:g} s"
        return f"{self.category} message #{self.nth}{where}: {what}"


@dataclass(order=True)
class _Delivery:
    due: float
    order: int
    sender: str
    recipient: str
    category: str
    subject: str
    payload: bytes
    copy: int = 1


class MessageBroker:
    """Every node's broker plus the Hub relay, as one service.

    Parameters
    ----------
    spec : AnalysisSpec
    timeline : Timeline
    deliver : callable
        ``deliver(node, url, payload) -> int``: POST ``payload`` to the webhook ``url`` as
        seen from ``node``'s cluster (its nginx); returns the HTTP status, raises ``OSError``
        when it cannot connect.
    faults : list of Fault
    """

    def __init__(self, spec: AnalysisSpec, timeline: Timeline, deliver, faults=()) -> None:
        self.spec = spec
        self.timeline = timeline
        self._deliver = deliver
        self.faults = list(faults)
        self._subscriptions: dict[str, dict[str, str]] = {n.name: {} for n in spec.nodes}
        self._queues: dict[str, list[_Delivery]] = {n.name: [] for n in spec.nodes}
        self._cond = threading.Condition()
        self._order = itertools.count()
        self._closed = False
        self._workers = [
            threading.Thread(
                target=self._worker, args=(n.name,), daemon=True, name=f"broker-{n.name}"
            )
            for n in spec.nodes
        ]
        for worker in self._workers:
            worker.start()

    # ---------------------------------------------------------------- HTTP
    def handle(self, node: NodeSpec, request: Request) -> Response:
        """Answer a request from ``node``'s analysis (path without ``/message-broker``)."""
        if request.bearer() != node.keycloak_token:
            return Response.error(401, "invalid or missing access token")
        parts = request.path.rstrip("/").split("/")
        if request.path == "/healthz" and request.method == "GET":
            return Response.json(200, {"status": "ok"})
        if len(parts) < 4 or parts[1] != "analyses":
            return Response.error(404, "Not Found")
        analysis_id, rest = parts[2], parts[3:]
        if analysis_id != self.spec.analysis_id:
            return Response.error(
                502, f"could not look up analysis nodes for analysis `{analysis_id}`"
            )
        route = (request.method, tuple(rest))
        if route == ("GET", ("participants",)):
            return Response.json(200, [self._participant(n) for n in self.spec.nodes])
        if route == ("GET", ("participants", "self")):
            return Response.json(200, self._participant(node))
        if route == ("POST", ("messages", "subscriptions")):
            return self._subscribe(node, request)
        if route == ("GET", ("messages", "subscriptions")):
            return Response.json(
                200,
                [
                    {"subscriptionId": sid, "analysisId": analysis_id, "webhookUrl": url}
                    for sid, url in self._subscriptions[node.name].items()
                ],
            )
        if route == ("POST", ("messages",)):
            return self._send(node, request, broadcast=False)
        if route == ("POST", ("messages", "broadcast")):
            return self._send(node, request, broadcast=True)
        return Response.error(404, "Not Found")

    @staticmethod
    def _participant(node: NodeSpec) -> dict:
        return {"nodeId": node.node_id, "nodeType": node.role}

    def _subscribe(self, node: NodeSpec, request: Request) -> Response:
        try:
            url = request.json()["webhookUrl"]
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return Response.error(400, "'webhookUrl' must be an absolute http(s) URL")
        subscription_id = str(uuid.uuid4())
        with self._cond:
            self._subscriptions[node.name][subscription_id] = url
        body = {
            "subscriptionId": subscription_id,
            "analysisId": self.spec.analysis_id,
            "webhookUrl": url,
        }
        location = f"/analyses/{self.spec.analysis_id}/messages/subscriptions/{subscription_id}"
        response = Response.json(201, body)
        response.headers["Location"] = location
        return response

    def _send(self, node: NodeSpec, request: Request, *, broadcast: bool) -> Response:
        try:
            body = request.json()
            message = body["message"]
            recipients = (
                [n.node_id for n in self.spec.nodes if n is not node]
                if broadcast
                else body["recipients"]
            )
            if not isinstance(recipients, list) or not recipients:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return Response.error(400, "expected {'recipients': [node ids], 'message': {...}}")
        others = {n.node_id: n for n in self.spec.nodes if n is not node}
        if not all(isinstance(r, str) and r in others for r in recipients):
            return Response.error(
                400,
                "list of recipients contains at least one recipients that is not part of the "
                "analysis",
            )
        payload = json.dumps(message, separators=(",", ":")).encode("utf-8")
        category, subject = category_of(message)
        self.timeline.record(
            "message",
            node.name,
            category=category,
            subject=subject,
            recipients=[others[r].name for r in recipients],
            bytes=len(payload),
        )
        for recipient_id in recipients:
            self._enqueue(node.name, others[recipient_id].name, category, subject, payload)
        return Response(202)

    # ---------------------------------------------------------------- delivery
    def _enqueue(
        self, sender: str, recipient: str, category: str, subject: str, payload: bytes
    ) -> None:
        copies, delay = 1, 0.0
        with self._cond:
            for fault in self.faults:
                if fault.matched >= fault.nth or not fault.matches(category, sender, recipient):
                    continue
                fault.matched += 1
                if fault.matched == fault.nth:
                    if fault.kind == "duplicate":
                        copies = 2
                    else:
                        delay = max(delay, fault.seconds)
                    self.timeline.record(
                        "fault", recipient, fault=fault.describe(), sender=sender, category=category
                    )
            due = time.monotonic() + delay
            for copy in range(1, copies + 1):
                delivery = _Delivery(
                    due, next(self._order), sender, recipient, category, subject, payload, copy
                )
                heapq.heappush(self._queues[recipient], delivery)
            self._cond.notify_all()

    def _worker(self, recipient: str) -> None:
        queue = self._queues[recipient]
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    if queue and queue[0].due <= time.monotonic():
                        delivery = heapq.heappop(queue)
                        urls = list(self._subscriptions[recipient].values())
                        break
                    timeout = queue[0].due - time.monotonic() if queue else None
                    self._cond.wait(timeout)
            for url in urls:
                self._deliver_with_retries(delivery, url)
            if not urls:
                self._record_delivery(delivery, url=None, status=None, error="no subscription")

    def _deliver_with_retries(self, delivery: _Delivery, url: str) -> None:
        node = self.spec.node(delivery.recipient)
        for attempt in range(RETRIES + 1):
            try:
                status = self._deliver(node, url, delivery.payload)
            except OSError as exc:
                self._record_delivery(
                    delivery, url=url, status=None, error=str(exc) or type(exc).__name__
                )
                return  # not retried (production retries 5xx answers only)
            if status < 500 or attempt == RETRIES:
                self._record_delivery(delivery, url=url, status=status, attempts=attempt + 1)
                return
            # production: Retry.backoff(5, 2 s) with jitter 0.75
            base = RETRY_DELAY * 2**attempt
            if self._sleep(base * random.uniform(0.25, 1.75)):
                return

    def _sleep(self, seconds: float) -> bool:
        """Wait unless the broker closes meanwhile; True when it closed."""
        with self._cond:
            return self._cond.wait_for(lambda: self._closed, timeout=seconds)

    def _record_delivery(self, delivery: _Delivery, *, url, status, error=None, attempts=1) -> None:
        self.timeline.record(
            "delivery",
            delivery.recipient,
            sender=delivery.sender,
            category=delivery.category,
            subject=delivery.subject,
            bytes=len(delivery.payload),
            status=status,
            ok=status is not None and 200 <= status < 300,
            error=error,
            attempts=attempts,
            copy=delivery.copy,
        )

    def close(self) -> None:
        """Stop delivering (pending deliveries are dropped)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for worker in self._workers:  # a worker inside a delivery ends when its pod is gone
            worker.join(timeout=2.0)
