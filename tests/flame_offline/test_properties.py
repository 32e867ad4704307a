"""Property tests: what nodes send arrives unchanged; node order does not change a mean."""

from __future__ import annotations

import _nodes
from _cores import make_cores
from hypothesis import given, settings
from hypothesis import strategies as st

from flame_offline import StarModelTester

plain_data = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda children: (
        st.lists(children) | st.tuples(children, children) | st.dictionaries(st.text(), children)
    ),
    max_leaves=20,
)


json_data = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(data=plain_data)
@settings(max_examples=60, deadline=None)
def test_intermediate_data_round_trips_through_pickle(data):
    cores, _ = make_cores()
    cores["node-1"].send_intermediate_data(["aggregator"], data)
    assert cores["aggregator"].await_intermediate_data(["node-1"]) == {"node-1": data}


@given(value=json_data)
@settings(max_examples=60, deadline=None)
def test_control_messages_round_trip_through_json(value):
    cores, _ = make_cores()
    cores["node-2"].send_message(["aggregator"], "control", {"value": value})
    [message] = cores["aggregator"].await_messages(["node-2"], "control")["node-2"]
    assert message.body["value"] == value


splits_strategy = st.lists(
    st.lists(st.integers(-(10**12), 10**12), min_size=1, max_size=8), min_size=1, max_size=4
)


def _mean(splits, analyzer, aggregator):
    encoded = [[{"v.csv": ",".join(map(str, values)).encode()}] for values in splits]
    return StarModelTester(
        encoded, analyzer, aggregator, "s3", query=[], log_handler=lambda record: None
    ).result


@given(data=st.data(), splits=splits_strategy)
@settings(max_examples=25, deadline=None)
def test_permuting_data_splits_keeps_the_pooled_mean(data, splits):
    permuted = data.draw(st.permutations(splits))
    # Integer sums are exact, so the pooled mean is bit-for-bit order-independent.
    expected = sum(map(sum, splits)) / sum(map(len, splits))
    assert _mean(splits, _nodes.SumAnalyzer, _nodes.MeanAggregator) == expected
    assert _mean(permuted, _nodes.SumAnalyzer, _nodes.MeanAggregator) == expected


@given(data=st.data(), splits=splits_strategy)
@settings(max_examples=25, deadline=None)
def test_permuting_data_splits_keeps_the_fsum_mean_of_means(data, splits):
    permuted = data.draw(st.permutations(splits))
    # math.fsum is exactly rounded, so the float mean of means does not depend on order.
    original = _mean(splits, _nodes.FloatMeanAnalyzer, _nodes.FsumMeanAggregator)
    assert _mean(permuted, _nodes.FloatMeanAnalyzer, _nodes.FsumMeanAggregator) == original
