"""Where node threads run: one CPU for every node of a thread-isolated run (Linux)."""

from __future__ import annotations

import os

import _nodes
import pytest

from flame_offline import StarModelTester, runner

AFFINITY = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="threads choose their CPUs on Linux, and only with two or more to choose from",
)


@AFFINITY
def test_every_node_thread_runs_on_the_same_single_cpu():
    before = os.sched_getaffinity(0)
    tester = StarModelTester(
        [[{"v.csv": b"1"}]] * 3,
        _nodes.AffinityAnalyzer,
        _nodes.AffinityAggregator,
        "s3",
        query=[],
        log_handler=lambda record: None,
    )
    cpu = runner.node_thread_cpu()
    assert tester.result == [[cpu]] * 4  # three hospitals and the aggregator
    assert os.sched_getaffinity(0) == before  # the tester's own thread keeps its CPUs


@AFFINITY
def test_node_processes_keep_every_cpu():
    tester = StarModelTester(
        [[{"v.csv": b"1"}]] * 2,
        _nodes.AffinityAnalyzer,
        _nodes.AffinityAggregator,
        "s3",
        query=[],
        isolation="process",
        log_handler=lambda record: None,
    )
    assert tester.result == [sorted(os.sched_getaffinity(0))] * 3


@pytest.mark.parametrize(
    ("cpus", "pid", "expected"),
    [
        ({0, 1}, 10, 0),
        ({0, 1}, 11, 1),
        ({2, 5, 7}, 4, 5),  # the process's own CPUs, not 0..n-1
        ({3}, 8, None),  # one CPU: nothing to choose
    ],
)
def test_the_node_threads_cpu_is_one_of_the_process_picked_by_pid(monkeypatch, cpus, pid, expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: cpus, raising=False)
    monkeypatch.setattr(os, "getpid", lambda: pid)
    assert runner.node_thread_cpu() == expected


def test_without_cpu_affinity_node_threads_stay_where_they_are(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    assert runner.node_thread_cpu() is None


def test_a_cpu_that_cannot_be_had_leaves_the_node_running(monkeypatch):
    def refuse(pid, cpus):
        raise OSError(22, "Invalid argument")

    ran = []
    monkeypatch.setattr(os, "sched_setaffinity", refuse, raising=False)
    monkeypatch.setattr(runner, "run_node", lambda spec, endpoint: ran.append((spec, endpoint)))
    runner.run_node_thread("spec", "endpoint", 99)
    assert ran == [("spec", "endpoint")]
