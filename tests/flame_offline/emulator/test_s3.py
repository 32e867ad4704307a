"""A hospital's data store: the hub adapter's list, the bucket listing and its objects."""

from __future__ import annotations

import json
import re

import pytest
from _services import make_spec, sdk_request

from flame_offline.emulator.s3 import DataStores


@pytest.fixture
def setup(tmp_path):
    files = {"pancreasData.csv": b"a,b\n1,0\n", "x&<y>.csv": b"\x00\x01", ".hidden": b"h"}
    spec = make_spec(tmp_path, {"node1": files, "node2": {"only.csv": b"z"}})
    (tmp_path / "node1" / "sub").mkdir()
    return spec, DataStores(spec)


def kong(spec, node, path, apikey=None):
    return sdk_request(
        node, "GET", path, apikey=node.data_source_token if apikey is None else apikey
    )


def test_datastore_list_names_the_project_store(setup):
    spec, stores = setup
    node1 = spec.node("node1")
    response = stores.handle_hub_adapter(
        node1, sdk_request(node1, "GET", f"/kong/datastore/{spec.project_id}")
    )
    [service] = json.loads(response.body)["data"]
    assert service["name"] == f"{spec.project_id}-s3"
    assert spec.project_id in service["tags"]


def test_aggregator_has_no_data_store(setup):
    spec, stores = setup
    agg = spec.aggregator
    response = stores.handle_hub_adapter(
        agg, sdk_request(agg, "GET", f"/kong/datastore/{spec.project_id}")
    )
    assert json.loads(response.body)["data"] == []


def test_listing_as_the_sdk_reads_it(setup):
    spec, stores = setup
    node1 = spec.node("node1")
    response = stores.handle_kong(node1, kong(spec, node1, f"/{stores.store_name}/s3"))
    assert response.status == 200
    assert response.content_type == "application/xml"
    # the SDK extracts keys with this regex (and does not unescape them)
    keys = re.findall(r"<Key>(.*?)</Key>", response.body.decode())
    assert keys == ["pancreasData.csv", "x&amp;&lt;y&gt;.csv"]


def test_object_bytes_and_missing_key(setup):
    spec, stores = setup
    node1 = spec.node("node1")
    ok = stores.handle_kong(node1, kong(spec, node1, f"/{stores.store_name}/s3/pancreasData.csv"))
    assert (ok.status, ok.body) == (200, b"a,b\n1,0\n")
    escaped = stores.handle_kong(
        node1, kong(spec, node1, f"/{stores.store_name}/s3/x%26%3Cy%3E.csv")
    )
    assert escaped.body == b"\x00\x01"
    missing = stores.handle_kong(node1, kong(spec, node1, f"/{stores.store_name}/s3/only.csv"))
    assert missing.status == 404
    assert b"<Code>NoSuchKey</Code>" in missing.body


@pytest.mark.parametrize(
    ("apikey", "status", "message"),
    [
        ("", 401, "Invalid authentication credentials"),
        ("wrong", 401, "Invalid authentication credentials"),
    ],
)
def test_kong_key_auth(setup, apikey, status, message):
    spec, stores = setup
    node1 = spec.node("node1")
    response = stores.handle_kong(
        node1, kong(spec, node1, f"/{stores.store_name}/s3", apikey=apikey)
    )
    assert (response.status, json.loads(response.body)["message"]) == (status, message)


def test_kong_without_key_and_other_nodes_key(setup):
    spec, stores = setup
    node1, node2 = spec.node("node1"), spec.node("node2")
    no_key = sdk_request(node1, "GET", f"/{stores.store_name}/s3")
    assert json.loads(stores.handle_kong(node1, no_key).body) == {
        "message": "No API key found in request"
    }
    borrowed = kong(spec, node1, f"/{stores.store_name}/s3", apikey=node2.data_source_token)
    assert stores.handle_kong(node1, borrowed).status == 401


def test_unknown_route(setup):
    spec, stores = setup
    node1 = spec.node("node1")
    assert stores.handle_kong(node1, kong(spec, node1, "/other-s3/s3")).status == 404
