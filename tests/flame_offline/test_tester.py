"""``StarModelTester``: whole local runs (process-isolation specifics: ``test_processes.py``)."""

from __future__ import annotations

import os
import pickle
import threading
import time

import _nodes
import pytest

from flame_offline import LoggedError, NodeFailedError, NodeTimeoutError, StarModelTester

SPLITS = [[{"v.csv": b"1,2,3"}], [{"v.csv": b"4,5"}], [{"v.csv": b"6"}]]


def run(splits=SPLITS, analyzer=_nodes.SumAnalyzer, aggregator=_nodes.MeanAggregator, **kw):
    """Run a tester quietly (logs collected, not printed), fetching every object."""
    kw.setdefault("log_handler", lambda record: None)
    kw.setdefault("query", [])
    return StarModelTester(splits, analyzer, aggregator, "s3", **kw)


def test_simple_run_and_result(capsys):
    tester = run()
    assert tester.result == 3.5
    assert tester.results == [3.5]
    assert capsys.readouterr().out == "Final result: 3.5\n"


def test_positional_arguments_follow_release_0_6_4(tmp_path):
    target = tmp_path / "r.txt"
    tester = StarModelTester(
        SPLITS[:2],
        _nodes.SumAnalyzer,
        _nodes.MeanAggregator,
        "s3",
        ["default", "default"],
        "v.csv",
        True,
        "str",
        False,
        None,
        None,
        None,
        None,
        str(target),
        log_handler=lambda record: None,
    )
    assert tester.result == 3.0
    assert target.read_text() == "3.0"


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
    assert first["participants"][-1] == {"nodeId": "aggregator", "nodeType": "aggregator"}
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


@pytest.mark.parametrize("isolation", ["thread", pytest.param("process", marks=pytest.mark.slow)])
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


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (None, [None]),  # production: no query, no data
        ([], [[{"a.csv": b"1", "b.csv": b"2"}, {"a.csv": b"3"}]]),
        ("a.csv", [[{"a.csv": b"1"}, {"a.csv": b"3"}]]),
        (["b.csv"], [[{"b.csv": b"2"}, {}]]),
    ],
)
def test_the_query_selects_the_data(query, expected):
    splits = [[{"a.csv": b"1", "b.csv": b"2"}, {"a.csv": b"3"}]]
    tester = run(splits, _nodes.EchoAnalyzer, _nodes.ListAggregator, query=query)
    assert tester.result == expected
    assert not [r for r in tester.logs if r.level >= 30]  # a missing key is silent


def test_fhir_data():
    bundle = {"resourceType": "Bundle", "entry": [{"resource": {"id": "p1"}}]}
    tester = StarModelTester(
        [[{"Patient?": bundle}]],
        _nodes.EchoAnalyzer,
        _nodes.ConstantAggregator,
        "fhir",
        query="Patient?",
        log_handler=lambda record: None,
    )
    assert tester.result == [{"Patient?": bundle}]


def test_each_node_gets_its_own_unpickled_copy_of_its_data():
    bundle = {"resourceType": "Bundle", "entry": []}
    splits = [[{"Patient?": bundle}], [{"Patient?": bundle}]]
    tester = StarModelTester(
        splits,
        _nodes.EchoAnalyzer,
        _nodes.ListAggregator,
        "fhir",
        query=["Patient?"],
        log_handler=lambda record: None,
    )
    assert tester.result == [[{"Patient?": bundle}]] * 2
    assert splits == [[{"Patient?": bundle}], [{"Patient?": bundle}]]


def test_logs_are_records_delivered_to_the_handler(isolation):
    received = []
    tester = run(
        splits=SPLITS[:2],
        analyzer=_nodes.LoggingAnalyzer,
        aggregator=_nodes.ConstantAggregator,
        analyzer_kwargs={"log_types": ["debug", "warn"]},
        log_handler=received.append,
        isolation=isolation,
    )
    assert received == tester.logs
    messages = {(r.node_id, r.role, r.log_type, r.message) for r in received}
    assert ("node-2", "default", "warn", "warn from node-2") in messages
    assert ("node-1", "default", "debug", "debug from node-1") in messages
    assert ("aggregator", "aggregator", "info", "Aggregator started") in messages
    assert all(abs(r.created - time.time()) < 60 for r in received)


def test_logs_are_printed_from_the_stream_log_level(capsys):
    StarModelTester(
        SPLITS[:1],
        _nodes.LoggingAnalyzer,
        _nodes.ConstantAggregator,
        "s3",
        analyzer_kwargs={"log_types": ["debug", "notice", "warn"]},
        stream_log_level=30,
    )
    assert capsys.readouterr().err == "[node-1] warn from node-1\n"
    StarModelTester(
        SPLITS[:1],
        _nodes.LoggingAnalyzer,
        _nodes.ConstantAggregator,
        "s3",
        analyzer_kwargs={"log_types": ["debug"]},
    )
    assert "debug from node-1" not in capsys.readouterr().err  # hidden by default
    StarModelTester(
        SPLITS[:1],
        _nodes.LoggingAnalyzer,
        _nodes.ConstantAggregator,
        "s3",
        analyzer_kwargs={"log_types": ["debug"]},
        stream_log_level=10,
    )
    assert "[node-1] debug from node-1\n" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("log_type", "match"),
    [
        ("warning", r"log_type 'warning' is not a production FLAME log type; use 'warn'"),
        ("critical-error", r"log_type 'critical-error' .*; use 'crit'"),
        ("normal", r"log_type 'normal' .*; use 'info'"),
        ("emergency", r"log_type 'emergency' .*; use 'emerg'"),
    ],
)
def test_a_non_production_log_type_fails_the_node(log_type, match):
    with pytest.raises(
        NodeFailedError, match=rf"node 'node-2' \(analyzer\) failed: ValueError: {match}"
    ):
        run(
            analyzer=_nodes.LoggingAnalyzer,
            aggregator=_nodes.ConstantAggregator,
            analyzer_kwargs={"log_types": [log_type], "only": "node-2"},
            print_failures=False,
        )


def test_an_error_log_fails_the_run_although_the_node_returns(isolation, tmp_path):
    target = tmp_path / "result.txt"
    with pytest.raises(
        NodeFailedError,
        match=r"node 'aggregator' \(aggregator\) failed: LoggedError: the node logged an error "
        r".*: the aggregate looks wrong",
    ) as info:
        run(
            aggregator=_nodes.ErrorLoggingAggregator,
            isolation=isolation,
            print_failures=False,
            result_filepath=str(target),
        )
    assert isinstance(info.value.error, LoggedError)
    assert info.value.error.logged == "the aggregate looks wrong"
    assert not target.exists()


def test_the_analyzers_error_comes_first_when_it_also_raises():
    with pytest.raises(NodeFailedError, match="ValueError: boom on node-2") as info:
        run(analyzer=_nodes.FailingAnalyzer, print_failures=False)
    assert isinstance(info.value.error, ValueError)


def test_data_content_is_never_logged(capsys):
    secret = b"age,ca19_9\n71,SECRET-VALUE-4711\n"
    tester = StarModelTester(
        [[{"pancreasData.csv": secret}]],
        _nodes.EchoAnalyzer,
        _nodes.ConstantAggregator,
        "s3",
        query=[],
        stream_log_level=10,
    )
    err = capsys.readouterr().err
    assert "SECRET" not in err
    assert all("SECRET" not in r.message for r in tester.logs)
    assert "[node-1] Data extracted: 1 source(s), 1 object(s)" in err


def test_without_a_query_the_log_says_why_there_is_no_data():
    tester = run(
        SPLITS[:1], _nodes.EchoAnalyzer, _nodes.ConstantAggregator, query=None, log_handler=None
    )
    messages = [r.message for r in tester.logs]
    assert "Data extracted: none (without a query a production node fetches no data)" in messages


@pytest.mark.parametrize(
    ("splits", "match"),
    [
        ([[{"v.csv": b"1"}], [{"v.csv": threading.Lock()}]], r"data split 1 \(node 'node-2'\), "),
        (
            [[{"a": b"1"}, {"b": b"2", "bad": lambda: 1}]],
            r"data split 0 \(node 'node-1'\), data source 1, key 'bad' cannot be pickled",
        ),
        ([{"v.csv": threading.Lock()}], r"data split 0 \(node 'node-1'\), key 'v.csv'"),
        ([threading.Lock()], r"data split 0 \(node 'node-1'\) cannot be pickled"),
        # s3 bytes under threads are shared, their pickle only checked: a bad key still fails
        ([[{b"ok": b"1"}], [{(lambda: 1): b"2"}]], r"data split 1 \(node 'node-2'\) cannot be"),
    ],
)
def test_a_split_that_cannot_be_pickled_is_refused_before_any_node_starts(splits, match):
    records = []
    with pytest.raises(TypeError, match=match):
        run(splits, _nodes.EchoAnalyzer, _nodes.ListAggregator, log_handler=records.append)
    assert records == []


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
        result_filepath=str(target),
    )
    assert target.read_bytes() == expected
    assert tester.result_files == [str(target)]
    assert capsys.readouterr().out == f"Final result written to {target}\n"
    assert os.listdir(tmp_path) == ["result.out"]  # no temporary file left behind


@pytest.mark.parametrize(
    ("value", "expected", "warned"),
    [
        (b"\x00\x01", b"\x00\x01", False),
        (bytearray(b"ab"), b"ab", False),
        (3, b"\x00\x00\x00", False),  # production calls bytes(result)
        ("text", pickle.dumps("text"), True),  # bytes("text") fails: pickle instead
        ({"a": 1}, pickle.dumps({"a": 1}), True),
    ],
)
def test_bytes_output_is_productions_bytes_of_the_result(tmp_path, value, expected, warned):
    target = tmp_path / "raw.bin"
    tester = run(
        aggregator=_nodes.ConstantAggregator,
        aggregator_kwargs={"value": value},
        output_type="bytes",
        filename=str(target),
    )
    assert target.read_bytes() == expected
    warnings = [r.message for r in tester.logs if r.log_type == "warn"]
    assert bool(warnings) == warned
    if warned:
        assert warnings[0].startswith("Failed to translate result data to type=bytes: TypeError")
        assert warnings[1] == "Attempting 'pickle' instead..."


def test_multiple_results_one_file_per_element(tmp_path, capsys):
    tester = run(
        aggregator=_nodes.ConstantAggregator,
        aggregator_kwargs={"value": ("text", b"raw", [1, 2])},
        output_type=["str", "bytes", "pickle"],
        multiple_results=True,
        result_filepath=str(tmp_path / "res.txt"),
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


def test_result_files_are_written_all_or_nothing(tmp_path):
    names = [str(tmp_path / "x.txt"), str(tmp_path / "missing-folder" / "y.txt")]
    with pytest.raises(FileNotFoundError):
        run(
            aggregator=_nodes.ConstantAggregator,
            aggregator_kwargs={"value": ["a", "b"]},
            multiple_results=True,
            filename=names,
        )
    assert os.listdir(tmp_path) == []


def test_multiple_results_printed_without_filename(capsys):
    run(
        aggregator=_nodes.ConstantAggregator,
        aggregator_kwargs={"value": [1, 2]},
        multiple_results=True,
    )
    assert capsys.readouterr().out == "Final result_1: 1\nFinal result_2: 2\n"


def test_filename_is_an_alias_of_result_filepath(tmp_path):
    target = tmp_path / "r.txt"
    run(filename=str(target))
    assert target.read_text() == "3.5"
    with pytest.raises(TypeError, match="either result_filepath or filename"):
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
        ({"epsilon": 1.0}, "both epsilon and sensitivity .* silently runs without local DP"),
        ({"epsilon": 0.0, "sensitivity": 1.0}, "epsilon and sensitivity must be positive"),
        ({"filename": ["a", "b"]}, "needs multiple_results=True"),
        ({"result_filepath": []}, "must not be an empty list"),
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
            timeout=60.0,
        )
    # the other nodes were stopped: without the stop, the aggregator's wait for node-2 would
    # end in a NodeTimeoutError
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


@pytest.mark.slow
@pytest.mark.parametrize("isolation", ["thread", "process"])
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


def test_each_node_gets_its_own_copy_of_the_kwargs(isolation):
    shared = {"seen": []}
    tester = run(
        analyzer=_nodes.MutatingAnalyzer,
        aggregator=_nodes.ListAggregator,
        analyzer_kwargs=shared,
        isolation=isolation,
    )
    assert tester.result == [["node-1"], ["node-2"], ["node-3"]]
    assert shared == {"seen": []}


def test_local_dp_noise_is_seeded():
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


def test_local_dp_on_a_non_number_fails_the_aggregator_as_in_production(tmp_path):
    with pytest.raises(
        NodeFailedError,
        match=r"node 'aggregator' \(aggregator\) failed: ValueError: Local differential privacy "
        r"can only be applied on numeric values: the final result is a list",
    ):
        run(
            aggregator=_nodes.ConstantAggregator,
            aggregator_kwargs={"value": [1.0, 2.0]},
            epsilon=1.0,
            sensitivity=2.0,
            print_failures=False,
        )


def test_local_dp_writes_str_whatever_the_output_type(tmp_path):
    target = tmp_path / "dp.bin"
    tester = run(
        aggregator=_nodes.ConstantAggregator,
        aggregator_kwargs={"value": 10},
        epsilon=1.0,
        sensitivity=1.0,
        dp_seed=3,
        output_type="pickle",
        result_filepath=str(target),
    )
    assert target.read_text() == str(tester.result)
    assert any("`str` is enforced" in r.message for r in tester.logs if r.log_type == "warn")


@pytest.mark.parametrize(
    "error",
    [
        NodeFailedError("node-1", "default", "ValueError", "boom", "tb", ValueError("boom")),
        NodeTimeoutError("aggregator", "aggregator", "intermediate_data", ["node-2"], 5.0),
        LoggedError("bad"),
    ],
)
def test_engine_errors_survive_pickle(error):
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.__dict__.keys() == error.__dict__.keys()


class _SharingAnalyzer(_nodes.StarAnalyzer):
    """Report whether the node got the tester's bytes objects in containers of its own."""

    def analysis_method(self, data, aggregator_results):
        source = _SHARED[int(self.id.rsplit("-", 1)[1]) - 1][0]  # node-1, node-2
        got = data[0]
        got["scribble"] = b"x"  # the node's own dict: the tester's split stays as it was
        return int(got["v.csv"] is source["v.csv"]), int(got is not source)


class _PairAggregator(_nodes.StarAggregator):
    def aggregation_method(self, analysis_results):
        return sorted(analysis_results)

    def has_converged(self, result, last_result):
        return True


_SHARED = [[{"v.csv": b"1,2,3"}], [{"v.csv": b"4,5"}]]


@pytest.mark.parametrize(
    ("isolation", "shared"), [("thread", 1), pytest.param("process", 0, marks=pytest.mark.slow)]
)
def test_s3_bytes_are_held_once_under_threads_in_containers_of_each_node(isolation, shared):
    tester = run(_SHARED, _SharingAnalyzer, _PairAggregator, isolation=isolation)
    assert tester.result == [(shared, 1), (shared, 1)]
    assert _SHARED == [[{"v.csv": b"1,2,3"}], [{"v.csv": b"4,5"}]]
