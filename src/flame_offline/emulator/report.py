"""The run's summary: per-node outcome, messages, storage, rounds and times.

Everything is derived from the :class:`~flame_offline.emulator.timeline.Timeline`.

Rounds follow the aggregator: a round ends when the aggregator sends its aggregate to the
hospitals (an ``intermediate_data`` message from the aggregator) or submits the final result.
The first round starts when the last ready check is acknowledged (every node has contacted
its partners; the hospitals then fetch their data and compute).
"""

from __future__ import annotations

import statistics
from collections import Counter

from flame_offline.emulator.broker import ACKNOWLEDGEMENT
from flame_offline.emulator.spec import AGGREGATOR
from flame_offline.emulator.timeline import Timeline

__all__ = ["describe", "round_boundaries", "summarize"]


def round_boundaries(timeline: Timeline) -> tuple[float | None, list[float]]:
    """``(start, ends)``: when round 1 started, and when each round ended (seconds)."""
    ready = [
        e.seconds
        for e in timeline.events("delivery")
        if e.data["category"] == ACKNOWLEDGEMENT
        and e.data["subject"] == "ready_check"
        and e.data["ok"]
    ]
    ends = [
        e.seconds
        for e in timeline.events("message")
        if e.node == AGGREGATOR and e.data["category"] == "intermediate_data"
    ]
    ends += [
        e.seconds
        for e in timeline.events("stored")
        if e.node == AGGREGATOR and e.data["where"] == "final"
    ][:1]
    if not ready:
        return None, []  # the nodes never all contacted each other: no round ran
    start = max(ready)
    return start, [t for t in ends if t >= start]


def summarize(timeline, spec, pods, storage, *, outcome, wall_seconds, extra) -> dict:
    """Build the JSON summary of a run (see the README for the fields)."""
    messages = timeline.events("message")
    deliveries = timeline.events("delivery")
    stored = timeline.events("stored")
    largest_message = max(messages, key=lambda e: e.data["bytes"], default=None)
    largest_object = max(stored, key=lambda e: e.data["bytes"], default=None)
    start, ends = round_boundaries(timeline)
    rounds = []
    previous = start
    for number, end in enumerate(ends, start=1):
        rounds.append({"round": number, "seconds": round(end - previous, 3)})
        previous = end
    later = [r["seconds"] for r in rounds[1:]]
    errors = {}
    for event in timeline.events("log"):
        if event.data["log_type"] in ("error", "crit", "alert", "emerg"):
            errors.setdefault(event.node, event.data["text"])
    nodes = []
    for pod in pods:
        nodes.append(
            {
                "name": pod.node.name,
                "role": pod.node.role,
                "node_id": pod.node.node_id,
                "status": pod.status,
                "ended": pod.ended_by,
                "exit_code": pod.exit_code,
                "error": errors.get(pod.node.name),
                "logs": {
                    "stream": f"logs/{pod.node.name}.stream.log",
                    "stdout": f"logs/{pod.node.name}.stdout.log",
                    "stderr": f"logs/{pod.node.name}.stderr.log",
                },
            }
        )
    failure = None
    first_failed = [
        e for e in timeline.events("status") if e.data["status"] in ("failed", "stuck")
    ][:1]
    if first_failed:
        name = first_failed[0].node
        failure = {
            "node": name,
            "seconds": round(first_failed[0].seconds, 3),
            "error": errors.get(name) or first_failed[0].data["note"],
        }
    return {
        "outcome": outcome,
        "analysis_id": spec.analysis_id,
        "project_id": spec.project_id,
        **extra,
        "nodes": nodes,
        "failure": failure,
        "final_results": [
            {"node": r.node, "uploaded_as": r.filename, "bytes": len(r.content)}
            for r in storage.final_results
        ],
        "messages": {
            "sent": dict(sorted(Counter(e.data["category"] for e in messages).items())),
            "delivered": dict(
                sorted(Counter(e.data["category"] for e in deliveries if e.data["ok"]).items())
            ),
            "undeliverable": sum(1 for e in deliveries if not e.data["ok"]),
            "largest_bytes": largest_message.data["bytes"] if largest_message else 0,
            "largest": None
            if largest_message is None
            else {"category": largest_message.data["category"], "from": largest_message.node},
        },
        "storage": {
            "intermediate_objects": sum(1 for e in stored if e.data["where"] == "intermediate"),
            "largest_object_bytes": largest_object.data["bytes"] if largest_object else 0,
            "largest_object": None
            if largest_object is None
            else {"where": largest_object.data["where"], "from": largest_object.node},
        },
        "faults": [e.data["fault"] for e in timeline.events("fault")],
        "unanswered_requests": [
            f"{e.node}: {e.data['method']} {e.data['path']}" for e in timeline.events("request")
        ],
        "startup_seconds": None if start is None else round(start, 3),
        "rounds": rounds,
        "seconds_per_round": round(statistics.median(later), 3) if later else None,
        "wall_seconds": round(wall_seconds, 3),
    }


def describe(summary: dict, out_dir) -> str:
    """Describe the run in a few lines for the terminal."""
    lines = []
    rounds = summary["rounds"]
    head = f"flame-node: {summary['outcome']} in {summary['wall_seconds']:.1f} s"
    if rounds:
        per = summary["seconds_per_round"]
        head += (
            f" (start-up {summary['startup_seconds']:.1f} s, {len(rounds)} rounds"
            + (f", {per:.2f} s per round after the first" if per is not None else "")
            + ")"
        )
    lines.append(head)
    sdk = summary.get("sdk") or {}
    if sdk:
        lines.append(
            "  nodes ran "
            + ", ".join(f"{k} {v}" for k, v in sdk.items())
            + f" on {summary['python']}"
            + (f" in image {summary['image']}" if summary.get("image") else "")
        )
    for node in summary["nodes"]:
        role = "aggregator" if node["role"] == AGGREGATOR else "hospital"
        line = f"  {node['name']:<12} {role:<10} {node['status']:<9} {node['ended'] or ''}"
        lines.append(line.rstrip())
        if node["error"]:
            lines.append(f"      error: {node['error']}")
    m = summary["messages"]
    sent = ", ".join(f"{k} {v}" for k, v in m["sent"].items())
    lines.append(
        f"  messages: {sum(m['sent'].values())} sent ({sent}); largest {m['largest_bytes']} bytes"
        + (f"; {m['undeliverable']} undeliverable" if m["undeliverable"] else "")
    )
    s = summary["storage"]
    lines.append(
        f"  storage: {s['intermediate_objects']} intermediate objects; largest object "
        f"{s['largest_object_bytes']} bytes"
    )
    if summary.get("warning"):
        lines.append(f"  warning: {summary['warning']}")
    for fault in summary["faults"]:
        lines.append(f"  fault injected: {fault}")
    for request in summary["unanswered_requests"]:
        lines.append(f"  not emulated: {request}")
    if summary["final_results"]:
        sizes = ", ".join(str(r["bytes"]) for r in summary["final_results"])
        lines.append(f"  final result: {out_dir}/final_result ({sizes} bytes)")
    else:
        lines.append("  no final result was submitted")
    lines.append(f"  summary: {out_dir}/summary.json; logs: {out_dir}/logs/")
    return "\n".join(lines)
