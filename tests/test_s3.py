"""pancreas_fl.s3: which objects a node asks for, and which one the analysis reads."""

from __future__ import annotations

import pytest

from pancreas_fl.errors import DataError
from pancreas_fl.s3 import find_object, s3_query


def test_no_data_because_no_query_names_the_fix():
    with pytest.raises(DataError, match=r"received no data \(data=None\)") as info:
        find_object(None, "pancreasData.csv")
    assert info.value.hint.startswith("Start the analysis with query=['pancreasData.csv']")
    assert "query=[] for every object" in info.value.hint
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ([], r"data is an empty list"),
        ("pancreasData.csv", r"data must be a list of dicts, got str"),
        ([{"other.csv": b"a,b\n1,0\n"}], r"object key 'pancreasData.csv' not found .* 'other.csv'"),
        ([{"pancreasData.csv": "a,b"}], r"the object is str, not bytes"),
        ([{"pancreasData.csv": b" \n "}], r"the file is empty"),
    ],
    ids=["empty", "not-a-list", "no-such-key", "not-bytes", "blank"],
)
def test_what_is_not_an_s3_object_is_one_line(data, match):
    with pytest.raises(DataError, match=match):
        find_object(data, "pancreasData.csv")


def test_the_object_found_is_the_bytes_themselves():
    raw = b"a,b\n1,0\n"
    assert find_object([{"x": b""}, {"pancreasData.csv": raw}], "pancreasData.csv") is raw


@pytest.mark.parametrize(
    ("dataset", "query"),
    [("pancreasData.csv", ["pancreasData.csv"]), ("site*.csv", []), ("a[12].csv", []), (None, [])],
)
def test_the_query_is_the_key_or_every_object_for_a_pattern(dataset, query):
    assert s3_query(dataset) == query
