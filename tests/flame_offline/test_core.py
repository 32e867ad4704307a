"""The core object of a node (``self.flame``): production's semantics, offline."""

from __future__ import annotations

import pickle
import threading

import pytest
from _cores import make_cores, node_kwargs

from flame_offline import LOG_LEVELS, LOG_TYPES, Message, NodeTimeoutError
from flame_offline.core import FlameCore


# ---------------------------------------------------------------------------- identity
def test_ids_and_participants_as_production_reports_them():
    cores, _ = make_cores(analysis_id="a-1", project_id="p-1")
    core = cores["node-2"]
    assert (core.get_id(), core.get_role()) == ("node-2", "default")
    assert core.get_participants() == [
        {"nodeId": "node-1", "nodeType": "default"},
        {"nodeId": "aggregator", "nodeType": "aggregator"},
    ]
    assert core.get_participant_ids() == ["node-1", "aggregator"]
    assert core.get_aggregator_id() == "aggregator"
    assert (core.get_analysis_id(), core.get_project_id()) == ("a-1", "p-1")
    assert core.config.finished is False


def test_the_aggregator_finds_no_aggregator_among_its_partners():
    # production's get_aggregator_id searches the *other* participants
    cores, _ = make_cores()
    assert cores["aggregator"].get_role() == "aggregator"
    assert cores["aggregator"].get_aggregator_id() is None


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


def test_analysis_finished_completes_the_progress():
    cores, _ = make_cores()
    assert cores["aggregator"].analysis_finished() is True
    assert cores["aggregator"].config.finished is True
    assert cores["aggregator"].get_progress() == 100


# ---------------------------------------------------------------------------- logs
def test_production_log_types_and_levels():
    assert LOG_TYPES == ("debug", "info", "notice", "warn", "alert", "emerg", "error", "crit")
    assert LOG_LEVELS == {
        "debug": 10,
        "info": 20,
        "notice": 25,
        "warn": 30,
        "alert": 33,
        "emerg": 36,
        "error": 40,
        "crit": 50,
    }


@pytest.mark.parametrize("log_type", LOG_TYPES)
def test_every_production_log_type_is_accepted(log_type):
    cores, records = make_cores()
    cores["node-1"].flame_log("hello", log_type=log_type)
    [record] = records
    assert (record.node_id, record.role, record.log_type) == ("node-1", "default", log_type)
    assert record.message == "hello"
    assert record.level == LOG_LEVELS[log_type]


@pytest.mark.parametrize(
    ("log_type", "spelling"),
    [
        ("warning", "'warn'"),
        ("emergency", "'emerg'"),
        ("critical-error", "'crit'"),
        ("critical", "'crit'"),
        ("normal", "'info'"),
        ("verbose", "one of 'debug', 'info', 'notice', 'warn'"),
        ("WARN", "one of 'debug'"),
        (None, "one of 'debug'"),
    ],
)
def test_other_log_types_fail_naming_the_production_spelling(log_type, spelling):
    cores, records = make_cores()
    with pytest.raises(
        ValueError,
        match=rf"log_type {log_type!r} is not a production FLAME log type; use {spelling}",
    ):
        cores["node-1"].flame_log("hello", log_type=log_type)
    assert records == []
    assert cores["node-1"].logged_error is None


def test_defaults_and_positional_order_are_productions():
    cores, records = make_cores()
    core = cores["node-1"]
    core.flame_log("plain")
    core.flame_log(["a", "b", "c"], "-", "!", "warn")
    core.flame_log(("x", "y"))
    assert [(r.message, r.log_type) for r in records] == [
        ("plain", "info"),
        ("a-b-c!", "warn"),
        ("xy", "info"),
    ]


def test_bytes_are_reduced_to_printable_text():
    cores, records = make_cores()
    cores["node-1"].flame_log(b"bytes \xff\x00msg", end=".")
    assert records[0].message == "bytes msg."


def test_halt_submission_holds_the_text_until_an_append():
    cores, records = make_cores()
    core = cores["node-1"]
    core.flame_log("Connecting...", halt_submission=True)
    assert records == []
    core.flame_log("unrelated")  # no append: sent alone, the held text stays held
    core.flame_log("success", append=True)
    core.flame_log("again", append=True)  # nothing held any more
    core.flame_log("first", halt_submission=True)
    core.flame_log("second", halt_submission=True)  # replaces the held text
    core.flame_log(" done", append=True, log_type="notice")
    assert [(r.message, r.log_type) for r in records] == [
        ("unrelated", "info"),
        ("Connecting...success", "info"),
        ("again", "info"),
        ("second done", "notice"),
    ]


@pytest.mark.parametrize(
    ("msg", "match"),
    [
        (42, "accepts a str, bytes or an iterable of str"),
        (["a", 1], "every element must be a str"),
    ],
)
def test_messages_that_cannot_be_rendered_are_refused(msg, match):
    cores, records = make_cores()
    with pytest.raises(TypeError, match=match):
        cores["node-1"].flame_log(msg)
    assert records == []


def test_an_error_log_marks_the_node_failed_and_ignores_the_formatting():
    cores, records = make_cores()
    core = cores["node-1"]
    core.flame_log("held", halt_submission=True)
    core.flame_log(["bad", "data"], sep="-", end="!", log_type="error", append=True)
    core.flame_log("later", log_type="error")
    assert [(r.message, r.log_type) for r in records] == [("baddata", "error"), ("later", "error")]
    assert core.logged_error == "baddata"  # the first one
    core.flame_log("then", append=True)
    assert records[-1].message == "heldthen"  # the held text survived the error log


def test_declare_log_types_is_not_in_production():
    cores, _ = make_cores()
    with pytest.raises(NotImplementedError, match="exists only in the FLAME SDK's local mock"):
        cores["node-1"].declare_log_types({"verbose": "info"})


def test_progress_only_grows():
    cores, records = make_cores()
    core = cores["node-1"]
    assert core.get_progress() == 0
    core.set_progress(40.7)
    assert core.get_progress() == 40
    core.set_progress(10)
    core.set_progress(101)
    assert core.get_progress() == 40
    core.set_progress(100)
    assert core.get_progress() == 100
    assert [(r.log_type, r.message[:20]) for r in records] == [
        ("warn", "Progress value needs"),
        ("warn", "Invalid progress: 10"),
    ]
    with pytest.raises(TypeError, match="set_progress needs an int or float"):
        core.set_progress("half")


# ---------------------------------------------------------------------------- messages
def test_messages_are_json_dicts_with_productions_meta():
    cores, _ = make_cores()
    body = {"step": 1, "values": (1.5, 2.5)}
    assert cores["node-1"].send_message(["aggregator"], "ping", body) == (["aggregator"], [])
    assert set(body["meta"]) >= {"id", "category", "sender", "status", "created_at"}
    assert body["meta"]["sender"] == "node-1"
    received = cores["aggregator"].await_messages(["node-1"], "ping")
    [message] = received["node-1"]
    assert isinstance(message, Message)
    assert message.body["values"] == [1.5, 2.5]  # JSON: a tuple arrives as a list
    assert message.body["step"] == 1
    meta = message.body["meta"]
    assert (meta["category"], meta["sender"], meta["status"]) == ("ping", "node-1", "read")
    assert (meta["type"], meta["akn_id"]) == ("incoming", "aggregator")
    assert message.recipients == ["node-1"]


def test_a_sent_dict_cannot_be_sent_again():
    cores, _ = make_cores()
    body = {"n": 1}
    cores["node-1"].send_message(["aggregator"], "ping", body)
    with pytest.raises(ValueError, match="Cannot use field 'meta' in message body"):
        cores["node-1"].send_message(["aggregator"], "ping", body)


@pytest.mark.parametrize(
    ("message", "match"),
    [
        ({"when": object()}, r"node 'node-1' \(analyzer\) sent a message of category 'ping' "),
        ({"x": float("nan")}, "not JSON"),
        ([1, 2], "a list, not a dict"),
    ],
)
def test_messages_that_are_not_json_objects_fail_in_the_sender(message, match):
    cores, _ = make_cores()
    with pytest.raises(TypeError, match=match):
        cores["node-1"].send_message(["aggregator"], "ping", message)


def test_await_returns_every_unread_message_and_marks_them_read():
    cores, _ = make_cores()
    agg = cores["aggregator"]
    cores["node-2"].send_message(["aggregator"], "ping", {"k": 1})
    cores["node-1"].send_message(["aggregator"], "ping", {"k": 1})
    cores["node-1"].send_message(["aggregator"], "ping", {"k": 2})
    cores["node-1"].send_message(["aggregator"], "other", {"k": 3})
    first = agg.await_messages(["node-1", "node-2"], "ping")
    assert list(first) == ["node-1", "node-2"]
    assert [m.body["k"] for m in first["node-1"]] == [1, 2]
    assert [m.body["k"] for m in first["node-2"]] == [1]
    assert [m.body["k"] for m in agg.get_messages("read")] == [1, 1, 2]
    assert [m.body["k"] for m in agg.get_messages()] == [3]
    assert agg.await_messages(["node-1"], "ping", timeout=0.01) == {"node-1": None}


def test_await_by_message_id():
    cores, _ = make_cores()
    cores["node-1"].send_message(["aggregator"], "ping", {"k": 1})
    wanted = {"k": 2}
    cores["node-1"].send_message(["aggregator"], "ping", wanted)
    got = cores["aggregator"].await_messages(["node-1"], "ping", wanted["meta"]["id"])
    assert [m.body["k"] for m in got["node-1"]] == [2]
    assert [m.body["k"] for m in cores["aggregator"].get_messages("unread")] == [1]


def test_a_message_set_read_by_the_analysis_is_not_returned_by_a_wait():
    cores, _ = make_cores()
    cores["node-1"].send_message(["aggregator"], "ping", {"k": 1})
    [message] = cores["aggregator"].get_messages()
    message.set_read()
    assert cores["aggregator"].await_messages(["node-1"], "ping", timeout=0.01) == {"node-1": None}


def test_delete_and_clear_messages():
    cores, records = make_cores()
    agg = cores["aggregator"]
    for k in range(3):
        cores["node-1"].send_message(["aggregator"], "ping", {"k": k})
    sent = {"k": "out"}
    agg.send_message(["node-1"], "pong", sent)
    agg.await_messages(["node-1"], "ping")  # all three read
    first = agg.get_messages("read")[0]
    assert agg.delete_messages([first.body["meta"]["id"], sent["meta"]["id"]]) == 2
    assert [m.body["k"] for m in agg.get_messages("read")] == [1, 2]
    assert agg.delete_messages(["no-such-id"]) == 0
    assert records[-1].log_type == "warn"
    assert "Could not find message with id=no-such-id" in records[-1].message
    cores["node-2"].send_message(["aggregator"], "ping", {"k": "new"})
    assert agg.clear_messages(min_age=3600) == 0  # nothing that old
    assert agg.clear_messages() == 2  # the read ones
    assert [m.body["k"] for m in agg.get_messages()] == ["new"]
    agg.send_message(["node-2"], "pong", {"k": "out"})
    assert agg.clear_messages("all") == 2  # the unread received one and the sent one
    assert agg.get_messages() == []


def test_send_message_and_wait_for_responses():
    cores, _ = make_cores()
    cores["node-1"].send_message(["aggregator"], "vote", {"yes": True})
    answers = cores["aggregator"].send_message_and_wait_for_responses(
        ["node-1", "node-2"], "vote", {"question": 1}, timeout=1
    )
    [answer] = answers["node-1"]
    assert answer.body["yes"] is True
    assert answers["node-2"] is None
    assert (
        cores["node-2"].await_messages(["aggregator"], "vote")["aggregator"][0].body["question"]
        == 1
    )
    with pytest.raises(TypeError, match="needs a timeout in seconds"):
        cores["aggregator"].send_message_and_wait_for_responses(["node-1"], "vote", {})


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
    cores["aggregator"].analysis_finished()
    analyzer = cores["node-1"]
    assert analyzer.await_intermediate_data(["aggregator"]) == {"aggregator": None}
    assert analyzer.config.finished is True
    assert analyzer.get_progress() == 100
    [announcement] = analyzer.get_messages()
    assert announcement.body["meta"]["category"] == "analysis_finished"


# ---------------------------------------------------------------------------- intermediate data
def test_intermediate_data_travels_as_productions_pair_of_storage_and_message():
    cores, _ = make_cores()
    payload = {"weights": [1.0, 2.0]}
    assert cores["node-1"].send_intermediate_data(["aggregator"], payload) == (["aggregator"], [])
    [message] = cores["aggregator"].get_messages()
    storage_id = message.body["result_id"]["aggregator"]
    received = cores["aggregator"].await_intermediate_data(["node-1"])
    assert received == {"node-1": payload}
    assert received["node-1"] is not payload
    again = cores["aggregator"].get_intermediate_data("global", storage_id, sender_node_id="node-1")
    assert again == payload


def test_await_intermediate_data_takes_the_newest_unread_one():
    cores, _ = make_cores()
    cores["node-1"].send_intermediate_data(["aggregator"], "old")
    cores["node-1"].send_intermediate_data(["aggregator"], "new")
    cores["node-1"].send_intermediate_data(["aggregator"], "other", message_category="extra")
    assert cores["aggregator"].await_intermediate_data(["node-1"]) == {"node-1": "new"}
    assert cores["aggregator"].await_intermediate_data(["node-1"], "extra") == {"node-1": "other"}


def test_a_message_without_storage_id_is_not_intermediate_data():
    cores, _ = make_cores()
    cores["node-1"].send_message(["aggregator"], "intermediate_data", {"value": 1})
    with pytest.raises(ValueError, match=r"names no intermediate data for it \(no 'result_id'\)"):
        cores["aggregator"].await_intermediate_data(["node-1"])


def test_global_data_saved_for_a_node_is_read_by_that_node():
    cores, _ = make_cores()
    saved = cores["node-1"].save_intermediate_data([1, 2], "global", ["node-2", "aggregator"])
    assert set(saved) == {"node-2", "aggregator"}
    storage_id = saved["node-2"]["id"]
    assert saved["node-2"]["status"] == "success"
    assert saved["node-2"]["url"].endswith(storage_id)
    assert cores["node-2"].get_intermediate_data("global", storage_id, sender_node_id="node-1") == [
        1,
        2,
    ]
    with pytest.raises(ValueError, match="has received no intermediate data with id"):
        cores["node-1"].get_intermediate_data("global", storage_id, sender_node_id="node-2")


def test_local_data_with_tags():
    cores, records = make_cores()
    core = cores["node-1"]
    first = core.save_intermediate_data({"round": 1}, "local", tag="model-state")
    core.save_intermediate_data({"round": 2}, "local", tag="model-state")
    core.save_intermediate_data("x", "local", tag="other")
    assert core.get_intermediate_data("local", id=first["id"]) == {"round": 1}
    assert core.get_intermediate_data("local", tag="model-state") == [{"round": 1}, {"round": 2}]
    assert core.get_intermediate_data("local", tag="model-state", tag_option="last") == [
        {"round": 2}
    ]
    assert core.get_intermediate_data("local", tag="model-state", tag_option="first") == [
        {"round": 1}
    ]
    assert core.get_intermediate_data("local", tag="unknown") == []
    assert core.get_local_tags() == ["model-state", "other"]
    assert core.get_local_tags("state") == ["model-state"]
    assert cores["node-2"].get_local_tags() == []  # local means this node only
    # production reads tags from local storage even for 'global', with a warning
    assert core.get_intermediate_data("global", "some-id", tag="other", sender_node_id="x") == ["x"]
    assert records[-1].message == "Tag can only be used with local type (will be ignored)"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda c: c.save_intermediate_data(1, "global"), "remote_node_ids must be provided"),
        (lambda c: c.save_intermediate_data(1, "hub"), "location must be 'global' or 'local'"),
        (lambda c: c.save_intermediate_data(1, "local", tag="Bad Tag"), "Invalid tag format"),
        (lambda c: c.save_intermediate_data(1, "local", tag="-x"), "Invalid tag format"),
        (lambda c: c.get_intermediate_data("global"), "requires storage id specification"),
        (lambda c: c.get_intermediate_data("global", "i"), "requires sender_node_id"),
        (lambda c: c.get_intermediate_data("local"), "a tag or storage id has to be specified"),
        (lambda c: c.get_intermediate_data("local", "nope"), "no local intermediate data"),
    ],
)
def test_intermediate_data_misuse_fails_as_in_production(call, match):
    cores, _ = make_cores()
    with pytest.raises(ValueError, match=match):
        call(cores["node-1"])


def test_unpicklable_data_fails_naming_the_node():
    cores, _ = make_cores()
    with pytest.raises(
        pickle.PicklingError,
        match=r"node 'node-1' \(analyzer\) sent intermediate data that cannot be pickled.*"
        r"must survive pickle",
    ):
        cores["node-1"].send_intermediate_data(["aggregator"], lambda: 1)
    with pytest.raises(pickle.PicklingError, match="intermediate data that cannot be pickled"):
        cores["node-1"].save_intermediate_data(lambda: 1, "local")


# ---------------------------------------------------------------------------- final results
def test_submit_final_result_is_for_the_aggregator_only():
    cores, _ = make_cores()
    with pytest.raises(RuntimeError, match="Final results may only be submitted by the aggregator"):
        cores["node-1"].submit_final_result(1)
    assert cores["aggregator"].submit_final_result(3.5) == {"status": "success"}
    assert cores["aggregator"].final_results_storage == 3.5
    assert cores["aggregator"].submit_final_result([1, 2], "str", True) == [
        {"status": "success"},
        {"status": "success"},
    ]


@pytest.mark.parametrize("output_type", ["csv", ["str", "json"], [], None])
def test_invalid_output_type_is_refused(output_type):
    cores, _ = make_cores()
    with pytest.raises(ValueError, match="output_type must be one of 'str', 'bytes', 'pickle'"):
        cores["aggregator"].submit_final_result(1, output_type)


@pytest.mark.parametrize(
    ("result", "output_type", "multiple", "match"),
    [
        (1, ["str"], False, r"needs multiple_results=True .*production would pickle the result"),
        ([1, 2], ["str"], True, r"1 output types given for 2 results.*pickle every result"),
        ([1], ["str", "str"], True, "2 output types given for 1 results"),
    ],
)
def test_output_type_lists_must_match_the_results(result, output_type, multiple, match):
    cores, _ = make_cores()
    with pytest.raises(ValueError, match=match):
        cores["aggregator"].submit_final_result(result, output_type, multiple)


def test_unpicklable_final_result_fails_naming_the_node():
    cores, _ = make_cores()
    with pytest.raises(
        pickle.PicklingError, match=r"node 'aggregator' \(aggregator\) sent a final"
    ):
        cores["aggregator"].submit_final_result(lambda: 1)


@pytest.mark.parametrize(
    ("result", "match"),
    [
        ([1.0, 2.0], "can only be applied on numeric values: the final result is a list"),
        (True, "the final result is a bool"),
        (float("inf"), "needs a finite result"),
    ],
)
def test_local_dp_needs_a_finite_number(result, match):
    cores, _ = make_cores()
    with pytest.raises(ValueError, match=match):
        cores["aggregator"].submit_final_result(result, local_dp={"epsilon": 1, "sensitivity": 1})


# ---------------------------------------------------------------------------- data
S3 = [{"a.csv": b"1", "b.csv": b"2", "c.csv": b"3"}, {"c.csv": b"4", "a.csv": b"5"}]


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (None, None),
        ((), S3),
        ([], S3),
        (["a.csv"], [{"a.csv": b"1"}, {"a.csv": b"5"}]),
        # each source in its own order; a key a source lacks is absent there
        (["c.csv", "b.csv"], [{"b.csv": b"2", "c.csv": b"3"}, {"c.csv": b"4"}]),
        (["z.csv"], [{}, {}]),
    ],
)
def test_s3_data_follows_production(keys, expected):
    cores, records = make_cores(s3_data=S3)
    data = cores["node-1"].get_s3_data(keys)
    assert data == expected
    if expected is not None:
        assert [list(source) for source in data] == [list(source) for source in expected]
    assert records == []  # a missing key is silent, as in production


def test_s3_data_by_default_is_every_object():
    cores, _ = make_cores(s3_data=S3)
    assert cores["node-1"].get_s3_data() == S3


def test_a_bare_string_is_not_a_list_of_keys():
    cores, _ = make_cores(s3_data=S3)
    with pytest.raises(TypeError, match="s3_keys must be a list of names"):
        cores["node-1"].get_s3_data("a.csv")


def test_fhir_data_follows_production():
    bundle = {"resourceType": "Bundle", "entry": []}
    cores, records = make_cores(fhir_data=[{"Patient?": bundle, "Observation?": bundle}])
    core = cores["node-1"]
    assert core.get_fhir_data(["Patient?"]) == [{"Patient?": bundle}]
    assert core.get_fhir_data() is None  # production answers None without queries
    assert core.get_fhir_data([]) is None
    assert core.get_fhir_data(None) is None
    with pytest.raises(ValueError, match="No S3 data provided"):
        core.get_s3_data()
    assert core.get_fhir_data(["Condition?", "Patient?"]) == [{"Patient?": bundle}]
    [warning] = records
    assert warning.log_type == "warn"
    assert warning.message.startswith("Failed to retrieve fhir data for query Condition?")


@pytest.mark.parametrize(
    ("call", "what"),
    [
        (lambda c: c.get_s3_data(["a.csv"]), "cannot retrieve S3 data"),
        (lambda c: c.get_fhir_data(["Patient?"]), "cannot retrieve FHIR data"),
        (lambda c: c.get_data_sources(), "cannot retrieve data sources"),
        (lambda c: c.get_data_client("source-1"), "cannot retrieve data client"),
        (lambda c: c.fhir_to_csv({}, "a", "b", "Observation"), "cannot convert FHIR to CSV"),
    ],
)
def test_the_aggregator_has_no_data_services(call, what):
    cores, records = make_cores(s3_data=S3)
    assert call(cores["aggregator"]) is None
    [warning] = records
    assert (warning.log_type, warning.message) == ("warn", f"Data API is not available, {what}")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda c: c.get_data_sources(), "asks production's hub adapter"),
        (lambda c: c.get_data_client("source-1"), "returns an httpx client"),
        (lambda c: c.fhir_to_csv({}, "a", "b", "Observation"), "needs production's FHIR data"),
    ],
)
def test_data_services_are_not_available_offline(call, match):
    cores, _ = make_cores(s3_data=S3)
    with pytest.raises(NotImplementedError, match=match):
        call(cores["node-1"])
