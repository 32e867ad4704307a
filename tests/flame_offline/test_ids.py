"""Ids of messages and stored data: unique, shaped as production's, one draw of entropy."""

from __future__ import annotations

import re
import uuid

import pytest
from _cores import make_cores

from flame_offline.ids import UniqueIds


def test_ids_are_distinct_version_4_uuids():
    ids = UniqueIds()
    drawn = [ids() for _ in range(1000)]
    assert len(set(drawn)) == len(drawn)
    for value in drawn[:3] + drawn[-3:]:
        parsed = uuid.UUID(value)
        assert str(parsed) == value
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)


def test_sources_draw_their_own_entropy():
    first, second = UniqueIds(), UniqueIds()
    assert first()[:24] != second()[:24]


def test_the_counter_wraps_within_the_uuids_last_group():
    ids = UniqueIds()
    ids._count = iter([2**48 - 1, 2**48])
    assert ids().endswith("-ffffffffffff")
    assert ids().endswith("-000000000000")


@pytest.mark.parametrize("kind", ["message", "storage"])
def test_message_and_storage_ids_keep_productions_shape(kind):
    cores, _ = make_cores()
    body = {}
    cores["node-1"].send_message(["aggregator"], "ping", body)
    cores["node-1"].send_intermediate_data(["aggregator"], 1)
    if kind == "message":
        assert re.fullmatch(r"node-1-0-[0-9a-f-]{36}", body["meta"]["id"])
        uuid.UUID(body["meta"]["id"][len("node-1-0-") :])
    else:
        [message] = cores["aggregator"].await_messages(["node-1"], "intermediate_data")["node-1"]
        storage_id = message.body["result_id"]["aggregator"]
        assert uuid.UUID(storage_id).version == 4
        assert storage_id not in body["meta"]["id"]
