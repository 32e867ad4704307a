"""The core object of a node (``self.flame``): ids, logs, progress, messages, data, results."""

from __future__ import annotations

import pickle
import threading

import pytest
from _cores import make_cores, node_kwargs

from flame_offline import LOG_TYPES, NodeTimeoutError
from flame_offline.core import FlameCore
from flame_offline.logs import LOG_LEVELS


def test_ids_participants_and_aggregator():
    cores, _ = make_cores(analysis_id="a-1", project_id="p-1")
    core = cores["node-2"]
    assert core.get_id() == "node-2"
    assert core.get_role() == "default"
    assert core.get_aggregator_id() == "aggregator"
    assert core.get_participants() == [
        {"id": "node-1", "role": "default"},
        {"id": "aggregator", "role": "aggregator"},
    ]
    assert core.get_participant_ids() == ["node-1", "aggregator"]
    assert core.get_analysis_id() == "a-1"
    assert core.get_project_id() == "p-1"
    assert cores["aggregator"].get_role() == "aggregator"
    assert core.config.finished is False


def test_missing_test_kwargs_are_refused():
    with pytest.raises(ValueError, match="must include 'node_id'"):
        FlameCore({"node_id": "x"})
    kwargs = node_kwargs("node-1")
    del kwargs["s3_data"]
    with pytest.raises(ValueError, match="either 's3_data' or 'fhir_data'"):
        FlameCore(kwargs)


def test_ready_check_answers_for_participants():
    cores, _ = make_cores()
    assert cores["aggregator"].ready_check() == {"node-1": True, "node-2": True}
    assert cores["node-1"].ready_check(["aggregator", "ghost"]) == {
        "aggregator": True,
        "ghost": False,
    }


@pytest.mark.parametrize("log_type", LOG_TYPES)
def test_every_log_type_is_accepted(log_type):
    cores, records = make_cores()
    cores["node-1"].flame_log("hello", log_type=log_type)
    [record] = records
    assert (record.node_id, record.role, record.log_type) == ("node-1", "default", log_type)
    assert record.message == "hello"
    assert record.level == LOG_LEVELS[log_type]


def test_log_types_and_levels():
    assert LOG_TYPES == (
        "normal",
        "info",
        "notice",
        "debug",
        "warning",
        "alert",
        "emergency",
        "error",
        "critical-error",
    )
    assert [LOG_LEVELS[t] for t in LOG_TYPES] == [20, 20, 20, 10, 30, 40, 50, 40, 50]


def test_unknown_log_type_is_refused_listing_the_valid_ones():
    cores, records = make_cores()
    with pytest.raises(ValueError, match=r"Invalid log type 'verbose'.*normal, info, notice"):
        cores["node-1"].flame_log("hello", log_type="verbose")
    assert records == []


def test_log_message_forms():
    cores, records = make_cores()
    core = cores["node-1"]
    core.flame_log(b"bytes \xff\x00msg")
    core.flame_log(["a", "b", "c"], sep="-")
    core.flame_log("no newline", end="!")
    core.flame_log("held ", end="", halt_submission=True)
    core.flame_log("then sent")
    assert [r.message for r in records] == [
        "bytes msg",
        "a-b-c",
        "no newline!",
        "held then sent",
    ]
    with pytest.raises(TypeError, match="flame_log accepts a str, bytes or an iterable"):
        core.flame_log(42)


def test_progress_only_grows():
    cores, records = make_cores()
    core = cores["node-1"]
    assert core.get_progress() == 0
    core.set_progress(40.7)
    assert core.get_progress() == 40
    core.set_progress(10)
    assert core.get_progress() == 40
    core.set_progress(101)
    core.set_progress("half")
    assert core.get_progress() == 40
    core.set_progress(100)
    assert core.get_progress() == 100
    warnings = [r for r in records if r.log_type == "warning"]
    assert len(warnings) == 3
    assert "needs to be higher" in warnings[0].message
    assert "Invalid progress: 101" in warnings[1].message


def test_messages_arrive_in_sender_order_and_fifo():
    cores, _ = make_cores()
    agg = cores["aggregator"]
    cores["node-2"].send_message(["aggregator"], "ping", {"n": 2, "k": 1})
    cores["node-1"].send_message(["aggregator"], "ping", {"n": 1, "k": 1})
    cores["node-1"].send_message(["aggregator"], "ping", {"n": 1, "k": 2})
    first = agg.await_messages(["node-1", "node-2"], "ping")
    assert list(first) == ["node-1", "node-2"]
    assert first == {"node-1": {"n": 1, "k": 1}, "node-2": {"n": 2, "k": 1}}
    assert agg.await_messages(["node-1"], "ping") == {"node-1": {"n": 1, "k": 2}}


def test_intermediate_data_is_a_copy_and_categories_are_separate():
    cores, _ = make_cores()
    payload = {"weights": [1.0, 2.0]}
    assert cores["node-1"].send_intermediate_data(["aggregator"], payload) == (
        ["aggregator"],
        [],
    )
    cores["node-1"].send_intermediate_data(["aggregator"], "other", message_category="extra")
    received = cores["aggregator"].await_intermediate_data(["node-1"])
    assert received == {"node-1": payload}
    assert received["node-1"] is not payload
    assert cores["aggregator"].await_intermediate_data(["node-1"], "extra") == {"node-1": "other"}


def test_wait_wakes_when_the_message_arrives():
    cores, _ = make_cores()
    got = {}
    waiter = threading.Thread(
        target=lambda: got.update(cores["aggregator"].await_intermediate_data(["node-1"]))
    )
    waiter.start()
    cores["node-1"].send_intermediate_data(["aggregator"], 7)
    waiter.join(5)
    assert got == {"node-1": 7}


def test_senders_and_receivers_must_be_participants():
    cores, _ = make_cores()
    with pytest.raises(ValueError, match="Sender ghost is not a valid participant id"):
        cores["aggregator"].await_intermediate_data(["ghost"])
    with pytest.raises(ValueError, match="Senders should be provided as a list"):
        cores["aggregator"].await_intermediate_data("node-1")
    with pytest.raises(ValueError, match="Receiver ghost is not a valid participant id"):
        cores["node-1"].send_intermediate_data(["ghost"], 1)


def test_unpicklable_message_fails_naming_the_node():
    cores, _ = make_cores()
    with pytest.raises(
        pickle.PicklingError,
        match=r"node 'node-1' \(analyzer\) sent intermediate data that cannot be pickled.*"
        r"must survive pickle",
    ):
        cores["node-1"].send_intermediate_data(["aggregator"], lambda: 1)
    with open(__file__) as handle, pytest.raises(pickle.PicklingError, match="'ping'"):
        cores["node-1"].send_message(["aggregator"], "ping", {"file": handle})


def test_tester_timeout_raises_node_timeout_error():
    cores, _ = make_cores(timeout=0.05)
    cores["node-1"].send_intermediate_data(["aggregator"], 1)
    with pytest.raises(
        NodeTimeoutError,
        match=r"node 'aggregator' \(aggregator\) waited 0\.05 s for 'intermediate_data' "
        r"from 'node-2'",
    ) as info:
        cores["aggregator"].await_intermediate_data(["node-1", "node-2"])
    assert info.value.missing == ["node-2"]


def test_call_timeout_shorter_than_the_testers_maps_missing_senders_to_none():
    cores, _ = make_cores(timeout=5.0)
    cores["node-1"].send_intermediate_data(["aggregator"], 1)
    assert cores["aggregator"].await_intermediate_data(["node-1", "node-2"], timeout=0.01) == {
        "node-1": 1,
        "node-2": None,
    }


def test_end_announcement_ends_a_wait_with_none():
    cores, _ = make_cores()
    assert cores["aggregator"].analysis_finished() is True
    assert cores["aggregator"].config.finished is True
    analyzer = cores["node-1"]
    assert analyzer.await_intermediate_data(["aggregator"]) == {"aggregator": None}
    assert analyzer.config.finished is True


def test_submit_final_result_is_for_the_aggregator_only():
    cores, _ = make_cores()
    with pytest.raises(RuntimeError, match="Final results may only be submitted by the aggregator"):
        cores["node-1"].submit_final_result(1)
    assert cores["aggregator"].submit_final_result(3.5) == {"result": "submitted"}
    assert cores["aggregator"].final_results_storage == 3.5


@pytest.mark.parametrize("output_type", ["csv", ["str", "json"], [], None])
def test_invalid_output_type_is_refused(output_type):
    cores, _ = make_cores()
    with pytest.raises(ValueError, match="output_type must be one of 'str', 'bytes', 'pickle'"):
        cores["aggregator"].submit_final_result(1, output_type)


def test_unpicklable_final_result_fails_naming_the_node():
    cores, _ = make_cores()
    with pytest.raises(
        pickle.PicklingError, match=r"node 'aggregator' \(aggregator\) sent a final"
    ):
        cores["aggregator"].submit_final_result(lambda: 1)


def test_s3_data_and_key_selection():
    data = [{"a.csv": b"1", "b.csv": b"2"}, {"a.csv": b"3"}]
    cores, records = make_cores(s3_data=data)
    core = cores["node-1"]
    assert core.get_s3_data() == data
    assert core.get_s3_data(["a.csv"]) == [{"a.csv": b"1"}, {"a.csv": b"3"}]
    assert core.get_s3_data(["b.csv"]) == [{"b.csv": b"2"}, {}]
    assert [r.message for r in records] == ["s3 key 'b.csv' not found in data source 2: skipped."]
    with pytest.raises(ValueError, match="No FHIR data provided"):
        core.get_fhir_data()


def test_fhir_data_and_query_selection():
    bundle = {"resourceType": "Bundle", "entry": []}
    kwargs = node_kwargs("node-1", fhir_data=[{"Patient?": bundle, "Observation?": bundle}])
    del kwargs["s3_data"]
    core = FlameCore(kwargs)
    assert core.get_fhir_data(["Patient?"]) == [{"Patient?": bundle}]
    assert core.get_fhir_data() == kwargs["fhir_data"]
    with pytest.raises(ValueError, match="No S3 data provided"):
        core.get_s3_data()
