"""``StarModelTester``: whole local runs, in thread and in process isolation."""

from __future__ import annotations

import os
import pickle
import sys
import textwrap
import time

import _nodes
import pytest

from flame_offline import NodeFailedError, NodeTimeoutError, StarModelTester

SPLITS = [[{"v.csv": b"1,2,3"}], [{"v.csv": b"4,5"}], [{"v.csv": b"6"}]]


def run(splits=SPLITS, analyzer=_nodes.SumAnalyzer, aggregator=_nodes.MeanAggregator, **kw):
    """Run a tester quietly (logs collected, not printed)."""
    kw.setdefault("log_handler", lambda record: None)
    return StarModelTester(splits, analyzer, aggregator, "s3", **kw)


def test_simple_run_and_result(capsys):
    tester = run()
    assert tester.result == 3.5
    assert tester.results == [3.5]
    assert capsys.readouterr().out == "Final result: 3.5\n"


def test_deterministic_ids_and_participants():
    tester = run(analyzer=_nodes.IdentityAnalyzer, aggregator=_nodes.ListAggregator)
    assert tester.node_ids == ["node-1", "node-2", "node-3", "aggregator"]
    first = tester.result[0]
    assert first["id"] == first["get_id"] == "node-1"
    assert first["role"] == first["get_role"] == "default"
    assert first["aggregator_id"] == "aggregator"
    assert (
        first["participant_ids"] == first["partner_node_ids"] == ["node-2", "node-3", "aggregator"]
    )
    assert first["participants"][-1] == {"id": "aggregator", "role": "aggregator"}
    assert (first["analysis_id"], first["project_id"]) == ("analysis_id", "project_id")
    assert [r["id"] for r in tester.result] == ["node-1", "node-2", "node-3"]


def test_custom_node_ids():
    tester = run(
        node_ids=["uk-a", "uk-b", "uk-c"],
        analyzer=_nodes.IdentityAnalyzer,
        aggregator=_nodes.ListAggregator,
    )
    assert tester.node_ids == ["uk-a", "uk-b", "uk-c", "aggregator"]
    assert [r["id"] for r in tester.result] == ["uk-a", "uk-b", "uk-c"]


@pytest.mark.parametrize(
    ("node_ids", "match"),
    [
        (["a", "b"], "one id per data split"),
        (["a", "a", "b"], "must be unique"),
        (["a", "b", "aggregator"], "must be unique and must not be 'aggregator'"),
        (["a", "", "b"], "non-empty strings"),
    ],
)
def test_invalid_node_ids(node_ids, match):
    with pytest.raises(ValueError, match=match):
        run(node_ids=node_ids)


def test_results_come_in_participant_order(isolation):
    # answers arrive in reverse order (delays well above process start-up jitter): the
    # aggregator still gets them in participant order.
    tester = run(
        splits=SPLITS[:3],
        analyzer=_nodes.SleepyAnalyzer,
        aggregator=_nodes.ListAggregator,
        analyzer_kwargs={"delay": {"node-1": 2.0, "node-2": 1.0}},
        isolation=isolation,
    )
    assert tester.result == ["node-1", "node-2", "node-3"]


def test_iterative_rounds_follow_the_sdk_bookkeeping(isolation):
    tester = run(
        splits=SPLITS[:2],
        analyzer=_nodes.IterationAnalyzer,
        aggregator=_nodes.HistoryAggregator,
        aggregator_kwargs={"max_iter": 3},
        simple_analysis=False,
        isolation=isolation,
    )
    final = tester.result
    # num_iterations > max_iter - 1 stops after max_iter + 1 rounds.
    assert final["round"] == 3
    # has_converged is called every round, first with last_result None.
    assert final["calls"] == [(0, True), (1, False), (2, False), (3, False)]
    # the last round's analyzers saw num_iterations == 3 and the previous broadcast.
    (node, iteration, seen), _ = final["results"]
    assert (node, iteration) == ("node-1", 3)
    assert seen["round"] == 2
    assert [r[:2] for r in seen["results"]] == [("node-1", 2), ("node-2", 2)]


def test_first_round_never_converges_unless_simple():
    iterative = run(
        splits=SPLITS[:1],
        analyzer=_nodes.IterationAnalyzer,
        aggregator=_nodes.HistoryAggregator,
        aggregator_kwargs={"always": True},
        simple_analysis=False,
    )
    assert iterative.result["calls"] == [(0, True), (1, False)]
    assert iterative.result["results"][0][1:] == (1, iterative.result["results"][0][2])
    assert iterative.result["results"][0][2]["round"] == 0
    simple = run(
        splits=SPLITS[:1],
        analyzer=_nodes.IterationAnalyzer,
        aggregator=_nodes.HistoryAggregator,
        aggregator_kwargs={"always": False},
    )
    assert simple.result["calls"] == [(0, True)]
    assert simple.result["results"] == [("node-1", 0, None)]


def test_str_query_is_wrapped_and_selects_keys():
    splits = [[{"a.csv": b"1", "b.csv": b"2"}, {"a.csv": b"3"}]]
    tester = run(splits, _nodes.EchoAnalyzer, _nodes.ConstantAggregator, query="a.csv")
    assert tester.result == [{"a.csv": b"1"}, {"a.csv": b"3"}]
    listed = run(splits, _nodes.EchoAnalyzer, _nodes.ConstantAggregator, query=["b.csv"])
    assert listed.result == [{"b.csv": b"2"}, {}]
    assert any("'b.csv' not found in data source 2" in r.message for r in listed.logs)


def test_fhir_data():
    bundle = {"resourceType": "Bundle", "entry": [{"resource": {"id": "p1"}}]}
    tester = StarModelTester(
        [[{"Patient?": bundle}]],
        _nodes.EchoAnalyzer,
        _nodes.ConstantAggregator,
        "fhir",
        log_handler=lambda record: None,
    )
    assert tester.result == [{"Patient?": bundle}]


def test_logs_are_records_delivered_to_the_handler(isolation):
    received = []
    tester = run(
        splits=SPLITS[:2],
        analyzer=_nodes.LoggingAnalyzer,
        aggregator=_nodes.ConstantAggregator,
        analyzer_kwargs={"log_types": ["debug", "warning"]},
        log_handler=received.append,
        isolation=isolation,
    )
    assert received == tester.logs
    messages = {(r.node_id, r.role, r.log_type, r.message) for r in received}
    assert ("node-2", "default", "warning", "warning from node-2") in messages
    assert ("node-1", "default", "debug", "debug from node-1") in messages
    assert ("aggregator", "aggregator", "info", "Aggregator started") in messages
    assert all(abs(r.created - time.time()) < 60 for r in received)


def test_logs_are_printed_from_the_stream_log_level(capsys):
    StarModelTester(
        SPLITS[:1],
        _nodes.LoggingAnalyzer,
        _nodes.ConstantAggregator,
        "s3",
        analyzer_kwargs={"log_types": ["debug", "warning"]},
        stream_log_level=30,
    )
    assert capsys.readouterr().err == "[node-1] warning from node-1\n"
    StarModelTester(
        SPLITS[:1],
        _nodes.LoggingAnalyzer,
        _nodes.ConstantAggregator,
        "s3",
        analyzer_kwargs={"log_types": ["debug"]},
        stream_log_level=10,
    )
    assert "[node-1] debug from node-1\n" in capsys.readouterr().err


def test_data_content_is_never_logged(capsys):
    secret = b"age,ca19_9\n71,SECRET-VALUE-4711\n"
    tester = StarModelTester(
        [[{"pancreasData.csv": secret}]],
        _nodes.EchoAnalyzer,
        _nodes.ConstantAggregator,
        "s3",
        stream_log_level=10,
    )
    err = capsys.readouterr().err
    assert "SECRET" not in err
    assert all("SECRET" not in r.message for r in tester.logs)
    assert "[node-1] Data extracted: 1 source(s), 1 object(s)" in err


@pytest.mark.parametrize(
    ("output_type", "expected"),
    [
        ("str", b"{'mean': 2.5}"),
        ("pickle", pickle.dumps({"mean": 2.5})),
    ],
)
def test_output_types_write_files(tmp_path, capsys, output_type, expected):
    target = tmp_path / "result.out"
    tester = run(
        aggregator=_nodes.ConstantAggregator,
        aggregator_kwargs={"value": {"mean": 2.5}},
        output_type=output_type,
        filename=str(target),
    )
    assert target.read_bytes() == expected
    assert tester.result_files == [str(target)]
    assert capsys.readouterr().out == f"Final result written to {target}\n"
    assert os.listdir(tmp_path) == ["result.out"]  # no temporary file left behind


def test_bytes_output_and_fallback_to_pickle(tmp_path):
    raw = tmp_path / "raw.bin"
    run(
        aggregator=_nodes.ConstantAggregator,
        aggregator_kwargs={"value": b"\x00\x01"},
        output_type="bytes",
        filename=str(raw),
    )
    assert raw.read_bytes() == b"\x00\x01"
    tester = run(
        aggregator=_nodes.ConstantAggregator,
        aggregator_kwargs={"value": 7},
        output_type="bytes",
        filename=str(raw),
    )
    assert pickle.loads(raw.read_bytes()) == 7
    assert any("written as pickle instead" in r.message for r in tester.logs)


def test_multiple_results_one_file_per_element(tmp_path, capsys):
    tester = run(
        aggregator=_nodes.ConstantAggregator,
        aggregator_kwargs={"value": ("text", b"raw", [1, 2])},
        output_type=["str", "bytes", "pickle"],
        multiple_results=True,
        filename=str(tmp_path / "res.txt"),
    )
    assert tester.results == ["text", b"raw", [1, 2]]
    assert (tmp_path / "res_1.txt").read_bytes() == b"text"
    assert (tmp_path / "res_2.txt").read_bytes() == b"raw"
    assert pickle.loads((tmp_path / "res_3.txt").read_bytes()) == [1, 2]
    out = capsys.readouterr().out
    assert f"Final result_3 written to {tmp_path / 'res_3.txt'}" in out
    names = [str(tmp_path / "x.txt"), str(tmp_path / "y.txt")]
    listed = run(
        aggregator=_nodes.ConstantAggregator,
        aggregator_kwargs={"value": ["a", "b"]},
        multiple_results=True,
        filename=names,
    )
    assert listed.result_files == names
    assert (tmp_path / "y.txt").read_text() == "b"


def test_multiple_results_printed_without_filename(capsys):
    run(
        aggregator=_nodes.ConstantAggregator,
        aggregator_kwargs={"value": [1, 2]},
        multiple_results=True,
    )
    assert capsys.readouterr().out == "Final result_1: 1\nFinal result_2: 2\n"


def test_result_filepath_is_an_alias_of_filename(tmp_path):
    target = tmp_path / "r.txt"
    run(result_filepath=str(target))
    assert target.read_text() == "3.5"
    with pytest.raises(TypeError, match="either filename or result_filepath"):
        run(result_filepath=str(target), filename=str(target))


def test_checkpoint_arguments_are_not_implemented():
    with pytest.raises(NotImplementedError, match="keeps no checkpoints"):
        run(load_checkpoint="ckpt.pkl")
    with pytest.raises(NotImplementedError, match="local_storage_dir"):
        run(local_storage_dir="/tmp")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"isolation": "docker"}, "isolation must be 'thread' or 'process'"),
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"output_type": "csv"}, "output_type must be one of"),
        ({"epsilon": 1.0}, "both epsilon and sensitivity"),
        ({"filename": ["a", "b"]}, "needs multiple_results=True"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        run(**kwargs)


def test_node_roles():
    with pytest.raises(
        ValueError, match=r"Length of node_roles \(2\) must be equal to length of data_splits \(3\)"
    ):
        run(node_roles=["default", "default"])
    with pytest.raises(
        NodeFailedError,
        match=r"node 'node-2' .*BrokenPipeError: Has to be either analyzer or aggregator",
    ):
        run(node_roles=["default", "observer", "default"], print_failures=False)


def test_malformed_split_warns_and_carries_on(capsys):
    tester = run(
        splits=[[{"v.csv": b"1"}], {"v.csv": b"2"}],
        analyzer=_nodes.EchoAnalyzer,
        aggregator=_nodes.ListAggregator,
    )
    err = capsys.readouterr().err
    assert "Data split 1 (node 'node-2') is not a list of dicts" in err
    assert "Data split 0" not in err
    assert tester.result[1] == {"v.csv": b"2"}


def test_wrong_class_fails_the_node():
    with pytest.raises(
        NodeFailedError, match=r"node 'node-1' \(analyzer\) failed: BrokenPipeError"
    ) as info:
        run(SPLITS[:1], analyzer=_nodes.MeanAggregator, print_failures=False)
    assert info.value.error_type == "BrokenPipeError"


def test_unpicklable_result_fails_naming_the_node(isolation):
    with pytest.raises(
        NodeFailedError,
        match=r"node 'node-1' \(analyzer\) failed: PicklingError: "
        r"node 'node-1' \(analyzer\) sent intermediate data that cannot be pickled",
    ) as info:
        run(
            splits=SPLITS[:1],
            analyzer=_nodes.LambdaAnalyzer,
            print_failures=False,
            isolation=isolation,
        )
    assert isinstance(info.value.error, pickle.PicklingError)


def test_failure_stops_every_node_quickly(isolation, capsys):
    records = []
    with pytest.raises(
        NodeFailedError, match=r"node 'node-2' \(analyzer\) failed: ValueError: boom on node-2"
    ) as info:
        run(
            splits=SPLITS[:2],
            analyzer=_nodes.FailingAnalyzer,
            aggregator=_nodes.CountingAggregator,
            simple_analysis=False,
            log_handler=records.append,
            isolation=isolation,
        )
    # node-2 failed right after logging its data; without the stop, the other nodes would
    # wait for the 300 s timeout.
    [last] = [r for r in records if r.node_id == "node-2" and r.message.startswith("Data")]
    assert time.time() - last.created < 2.0
    error = info.value
    assert (error.node_id, error.role, error.error_type) == ("node-2", "default", "ValueError")
    assert isinstance(error.error, ValueError)
    assert str(error.error) == "boom on node-2"
    assert "raise ValueError" in error.traceback
    err = capsys.readouterr().err
    assert "Node 'node-2' (analyzer) failed:\nTraceback" in err
    assert "Stopped because node 'node-2' failed: node-1, aggregator" in err


def test_print_failures_false_prints_nothing(capsys):
    with pytest.raises(NodeFailedError):
        run(analyzer=_nodes.FailingAnalyzer, print_failures=False)
    assert capsys.readouterr().err == ""


def test_unpicklable_exception_is_reported_without_the_object():
    with pytest.raises(NodeFailedError, match="LockError: cannot travel") as info:
        run(splits=SPLITS[:1], analyzer=_nodes.UnpicklableErrorAnalyzer, print_failures=False)
    assert info.value.error is None
    assert info.value.error_type == "LockError"


def test_timeout_raises_node_timeout_error(isolation):
    # node-2 is stuck; node-1 waits for the aggregator, which waits for node-2: the
    # aggregator's timeout names the stuck hospital (analyzers allow it extra grace).
    with pytest.raises(
        NodeTimeoutError,
        match=r"node 'aggregator' \(aggregator\) waited 2 s for 'intermediate_data' "
        r"from 'node-2'",
    ) as info:
        run(
            splits=SPLITS[:2],
            analyzer=_nodes.SleepyAnalyzer,
            aggregator=_nodes.ListAggregator,
            analyzer_kwargs={"delay": {"node-2": 6.0}},
            simple_analysis=False,
            timeout=2.0,
            print_failures=False,
            isolation=isolation,
        )
    assert info.value.missing == ["node-2"]


def test_child_process_dying_hard_is_a_failure():
    with pytest.raises(
        NodeFailedError,
        match=r"node 'node-1' \(analyzer\) failed: ChildProcessError: .*exit code 3",
    ) as info:
        run(
            splits=SPLITS[:1],
            analyzer=_nodes.HardExitAnalyzer,
            isolation="process",
            print_failures=False,
        )
    assert isinstance(info.value.error, ChildProcessError)


def test_global_state_leaks_between_thread_nodes_but_not_process_nodes():
    kwargs = {"analyzer": _nodes.GlobalCounterAnalyzer, "aggregator": _nodes.ListAggregator}
    threads = run(SPLITS[:2], **kwargs)
    processes = run(SPLITS[:2], **kwargs, isolation="process")
    assert len(set(threads.result)) == 2  # one shared counter: each node saw another value
    assert processes.result == [1, 1]  # one counter per node, as in production


def test_process_isolation_imports_classes_from_modules_loaded_by_path(tmp_path):
    source = textwrap.dedent(
        """
        from flame_offline import StarAnalyzer

        class PathAnalyzer(StarAnalyzer):
            def analysis_method(self, data, aggregator_results):
                return "loaded by path"
        """
    )
    path = tmp_path / "path_only_nodes.py"
    path.write_text(source)
    import importlib.util

    spec = importlib.util.spec_from_file_location("engine_test_path_only_nodes", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        tester = run(
            splits=SPLITS[:1],
            analyzer=module.PathAnalyzer,
            aggregator=_nodes.ListAggregator,
            isolation="process",
        )
    finally:
        del sys.modules[spec.name]
    assert tester.result == ["loaded by path"]


def test_local_classes_need_thread_isolation():
    class Local(_nodes.SumAnalyzer):
        pass

    assert run(analyzer=Local).result == 3.5
    with pytest.raises(TypeError, match="isolation='process' needs picklable node classes"):
        run(analyzer=Local, isolation="process")


def test_each_thread_node_gets_its_own_copy_of_the_kwargs():
    shared = {"delay": {}}
    run(analyzer=_nodes.SleepyAnalyzer, aggregator=_nodes.ListAggregator, analyzer_kwargs=shared)
    assert shared == {"delay": {}}


def test_local_dp_noise_is_seeded_and_skips_non_numbers():
    def dp(value, seed):
        return run(
            aggregator=_nodes.ConstantAggregator,
            aggregator_kwargs={"value": value},
            epsilon=1.0,
            sensitivity=2.0,
            dp_seed=seed,
        )

    first, again, other = dp(10, 1), dp(10, 1), dp(10, 2)
    assert first.result == again.result != other.result
    assert isinstance(first.result, float)
    assert first.result != 10
    skipped = dp([1.0, 2.0], 1)
    assert skipped.result == [1.0, 2.0]
    assert any("DP step will be skipped" in r.message for r in skipped.logs)


@pytest.mark.parametrize(
    "error",
    [
        NodeFailedError("node-1", "default", "ValueError", "boom", "tb", ValueError("boom")),
        NodeTimeoutError("aggregator", "aggregator", "intermediate_data", ["node-2"], 5.0),
    ],
)
def test_engine_errors_survive_pickle(error):
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.__dict__.keys() == error.__dict__.keys()
    assert copy.node_id == error.node_id
