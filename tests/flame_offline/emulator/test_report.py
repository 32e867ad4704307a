"""The summary: rounds, counts, sizes and the failing node, from a run's timeline."""

from __future__ import annotations

from types import SimpleNamespace

from _services import make_spec

from flame_offline.emulator.report import describe, round_boundaries, summarize
from flame_offline.emulator.storage import FinalResult
from flame_offline.emulator.timeline import Event, Timeline


def timeline_of(*events):
    timeline = Timeline()
    timeline._events = [Event(t, kind, node, data) for t, kind, node, data in events]
    return timeline


def ack(t, subject, ok=True):
    return (
        t,
        "delivery",
        "x",
        {"category": "acknowledgement", "subject": subject, "ok": ok, "bytes": 10},
    )


def msg(t, node, category, size=100):
    return (t, "message", node, {"category": category, "subject": category, "bytes": size})


def stored(t, node, where, size):
    return (t, "stored", node, {"where": where, "bytes": size})


RUN = timeline_of(
    msg(1.0, "aggregator", "ready_check"),
    ack(1.5, "ready_check"),
    ack(31.0, "ready_check"),
    ack(31.5, "intermediate_data"),
    msg(20.0, "node1", "intermediate_data", 300),  # sent before the last ready check: round 1
    msg(33.0, "aggregator", "intermediate_data", 200),
    msg(34.0, "node1", "intermediate_data", 300),
    msg(35.5, "aggregator", "intermediate_data", 200),
    stored(36.0, "node1", "intermediate", 700),
    stored(37.0, "aggregator", "final", 214),
    (36.5, "log", "node2", {"log_type": "warn", "text": "careful"}),
    (36.6, "log", "node2", {"log_type": "error", "text": "hospital 'x': bad"}),
    (36.7, "log", "node2", {"log_type": "error", "text": "second error"}),
    (37.5, "status", "node2", {"status": "failed", "note": "it reported 'failed'"}),
)


def test_rounds_run_from_the_last_ready_check_to_each_aggregate():
    start, ends = round_boundaries(RUN)
    assert start == 31.0
    assert ends == [33.0, 35.5, 37.0]


def test_summary_fields(tmp_path):
    spec = make_spec(tmp_path)
    pods = [
        SimpleNamespace(node=node, status=status, ended_by=None, exit_code=None)
        for node, status in zip(spec.nodes, ["stopped", "failed", "stopped"], strict=True)
    ]
    storage = SimpleNamespace(final_results=[FinalResult("aggregator", "r", b"x" * 214)])
    summary = summarize(RUN, spec, pods, storage, outcome="failed", wall_seconds=40.0, extra={})
    assert summary["rounds"] == [
        {"round": 1, "seconds": 2.0},
        {"round": 2, "seconds": 2.5},
        {"round": 3, "seconds": 1.5},
    ]
    assert summary["seconds_per_round"] == 2.0  # median of the rounds after the first
    assert summary["startup_seconds"] == 31.0
    assert summary["messages"]["sent"] == {"intermediate_data": 4, "ready_check": 1}
    assert summary["messages"]["largest_bytes"] == 300
    assert summary["storage"]["largest_object_bytes"] == 700
    assert summary["failure"] == {"node": "node2", "seconds": 37.5, "error": "hospital 'x': bad"}
    assert [n["error"] for n in summary["nodes"]] == [None, "hospital 'x': bad", None]
    text = describe(summary, tmp_path)
    assert "failed in 40.0 s" in text
    assert "error: hospital 'x': bad" in text


def test_no_rounds_without_ready_checks(tmp_path):
    assert round_boundaries(timeline_of(msg(1, "aggregator", "intermediate_data"))) == (None, [])
