"""Node bases and ``StarModel`` / ``StarLocalDPModel`` run directly (no tester)."""

from __future__ import annotations

import inspect
import threading
import uuid

import pytest
from _cores import make_cores, node_kwargs
from _nodes import (
    ConstantAggregator,
    EchoAnalyzer,
    ErrorLoggingAggregator,
    MeanAggregator,
    SumAnalyzer,
)

from flame_offline import (
    LoggedError,
    StarAggregator,
    StarAnalyzer,
    StarLocalDPModel,
    StarModel,
    StarModelTester,
)
from flame_offline.core import FlameCore


class Bare(StarAnalyzer):
    """Overrides nothing: instantiable, as in the SDK (no ABCMeta)."""


class BareAggregator(StarAggregator):
    """Overrides nothing."""


class Scripted(StarAggregator):
    """``has_converged`` answers from a script and records what it saw."""

    def __init__(self, flame, answers):
        super().__init__(flame)
        self.answers = list(answers)
        self.seen = []

    def aggregation_method(self, analysis_results):
        return sum(analysis_results)

    def has_converged(self, result, last_result):
        self.seen.append((result, last_result, self.num_iterations))
        return self.answers.pop(0)


def test_node_attributes():
    cores, _ = make_cores()
    node = Bare(cores["node-1"])
    assert node.flame is cores["node-1"]
    assert (node.id, node.role) == ("node-1", "default")
    assert node.finished is False
    assert node.latest_result is None
    assert node.partner_node_ids == ["node-2", "aggregator"]
    assert node.num_iterations == 0
    node.node_finished()
    assert node.finished is True
    aggregator = BareAggregator(cores["aggregator"])
    assert aggregator.partner_node_ids == ["node-1", "node-2"]
    assert aggregator.delta_criteria is False


def test_abstract_methods_do_not_block_instantiation_as_in_the_sdk():
    cores, _ = make_cores()
    assert Bare(cores["node-1"]).analysis_method([], None) is None


def test_wrong_roles_raise_value_error():
    cores, _ = make_cores()
    with pytest.raises(ValueError, match=r'analyzer node with mismatching.*received="aggregator"'):
        Bare(cores["aggregator"])
    with pytest.raises(ValueError, match=r'aggregator node with mismatching.*received="default"'):
        BareAggregator(cores["node-1"])


def test_analyze_bookkeeping():
    cores, _ = make_cores()
    seen = []

    class Recorder(StarAnalyzer):
        def analysis_method(self, data, aggregator_results):
            seen.append((data, aggregator_results, self.num_iterations))
            return self.num_iterations * 10

    node = Recorder(cores["node-1"])
    assert node.analyze(["d"]) == 0
    node.latest_result = "broadcast"
    assert node.analyze(["d"]) == 10
    assert seen == [(["d"], None, 0), (["d"], "broadcast", 1)]
    assert (node.latest_result, node.num_iterations) == (10, 2)


@pytest.mark.parametrize("simple", [True, False])
def test_aggregate_always_calls_has_converged(simple):
    cores, _ = make_cores()
    node = Scripted(cores["aggregator"], answers=[True, False, True])
    assert node.aggregate([1, 2], simple) == (3, simple)
    assert node.delta_criteria is True
    assert node.aggregate([2, 2], simple) == (4, simple)
    assert node.aggregate([3, 2], simple) == (5, True)
    assert node.seen == [(3, None, 0), (4, 3, 1), (5, 4, 2)]
    assert (node.latest_result, node.num_iterations) == (5, 3)


def _model_kwargs(node_id, ids, **extra):
    return {
        "analyzer": SumAnalyzer,
        "aggregator": MeanAggregator,
        "data_type": "s3",
        "test_mode": True,
        "test_kwargs": node_kwargs(node_id, ids, **extra),
    }


def test_test_mode_false_is_refused():
    with pytest.raises(
        RuntimeError, match=r"cannot run as a production FLAME node.*StarModelTester"
    ):
        StarModel(SumAnalyzer, MeanAggregator, "s3")


def test_invalid_data_type_is_refused():
    kwargs = _model_kwargs("node-1", ("node-1", "aggregator"))
    kwargs["data_type"] = "csv"
    with pytest.raises(ValueError, match="data_type must be 's3' or 'fhir'"):
        StarModel(**kwargs)


def test_unknown_role_is_refused():
    kwargs = _model_kwargs("node-1", ("node-1", "aggregator"), role="observer")
    with pytest.raises(BrokenPipeError, match="Has to be either analyzer or aggregator"):
        StarModel(**kwargs)


@pytest.mark.parametrize(
    ("node_id", "field", "wrong"),
    [("node-1", "analyzer", MeanAggregator), ("aggregator", "aggregator", SumAnalyzer)],
)
def test_wrong_class_raises_broken_pipe(node_id, field, wrong):
    kwargs = _model_kwargs(node_id, ("node-1", "aggregator"))
    kwargs[field] = wrong
    with pytest.raises(BrokenPipeError, match="The object/class given is incorrect"):
        StarModel(**kwargs)
    kwargs[field] = "not a class"
    with pytest.raises(BrokenPipeError, match="The object/class given is incorrect"):
        StarModel(**kwargs)


def _run_nodes(model_cls, ids, data, **model_kwargs):
    """Run one model per id in the user's own threads on the default bus."""
    models, errors = {}, []

    def run(node_id):
        try:
            models[node_id] = model_cls(
                test_mode=True,
                test_kwargs=node_kwargs(node_id, ids, s3_data=data.get(node_id)),
                **model_kwargs,
            )
        except Exception as exc:  # re-raised in the test's thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    if errors:
        raise errors[0]
    return models


def test_star_model_from_user_threads_uses_the_default_bus(capsys):
    suffix = uuid.uuid4().hex[:8]
    ids = (f"a-{suffix}", f"b-{suffix}", "aggregator")
    data = {ids[0]: [{"v.csv": b"1,2"}], ids[1]: [{"v.csv": b"3"}]}
    models = _run_nodes(
        StarModel,
        ids,
        data,
        analyzer=SumAnalyzer,
        aggregator=MeanAggregator,
        data_type="s3",
        query="v.csv",
    )
    assert models["aggregator"].flame.final_results_storage == 2.0
    assert models[ids[0]].data == data[ids[0]]
    assert f"[{ids[0]}] Analyzer {ids[0]} started" in capsys.readouterr().err


def test_the_default_bus_serves_a_second_run_with_the_same_node_ids():
    # the SDK's mock keeps the first run's "finished" state; a second run must not hang
    suffix = uuid.uuid4().hex[:8]
    ids = (f"a-{suffix}", f"b-{suffix}", "aggregator")
    data = {ids[0]: [{"v.csv": b"1,2"}], ids[1]: [{"v.csv": b"3"}]}
    kwargs = {"analyzer": SumAnalyzer, "aggregator": MeanAggregator, "data_type": "s3"}
    for _ in range(2):
        models = _run_nodes(StarModel, ids, data, query=[], simple_analysis=False, **kwargs)
        assert set(models) == set(ids)  # every node finished (none still waiting)
        assert models["aggregator"].flame.final_results_storage == 2.0


def test_local_dp_model_adds_seeded_laplace_noise():
    suffix = uuid.uuid4().hex[:8]
    ids = (f"a-{suffix}", "aggregator")
    results = []
    for _ in range(2):
        models = _run_nodes(
            StarLocalDPModel,
            ids,
            {ids[0]: [{"v.csv": b"1"}]},
            analyzer=EchoAnalyzer,
            aggregator=ConstantAggregator,
            aggregator_kwargs={"value": 10},
            data_type="s3",
            query=[],
            epsilon=1.0,
            sensitivity=1.0,
        )
        results.append(models["aggregator"].flame.final_results_storage)
    assert all(isinstance(r, float) and r != 10 for r in results)
    assert results[0] != results[1]  # fresh entropy without a seed


def test_real_sdk_bases_are_accepted_when_importable(monkeypatch):
    import sys
    import types

    class SdkAnalyzer:
        def __init__(self, flame):
            self.flame = flame
            self.finished = False
            self.num_iterations = 0
            self.latest_result = None

        def analyze(self, data):
            return 5

        def node_finished(self):
            self.finished = True

    class MyAnalyzer(SdkAnalyzer):
        pass

    flame_pkg = types.ModuleType("flame")
    star = types.ModuleType("flame.star")
    star.StarAnalyzer = SdkAnalyzer
    star.StarAggregator = type("SdkAggregator", (), {})
    flame_pkg.star = star
    monkeypatch.setitem(sys.modules, "flame", flame_pkg)
    monkeypatch.setitem(sys.modules, "flame.star", star)
    from flame_offline import model

    model._sdk_bases.cache_clear()
    try:
        cores, _ = make_cores(ids=("node-1", "aggregator"), s3_data=[{}])
        star_model = StarModel.__new__(StarModel)
        star_model.flame = cores["node-1"]
        star_model._start_analyzer(MyAnalyzer, "s3", None, True, None)
        assert cores["aggregator"].await_intermediate_data(["node-1"]) == {"node-1": 5}
    finally:
        model._sdk_bases.cache_clear()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (None, None),  # production: get_s3_data(None) is None
        ([], [{"a.csv": b"1", "b.csv": b"2"}]),
        ("b.csv", [{"b.csv": b"2"}]),  # a str query is wrapped in a list
        (["a.csv"], [{"a.csv": b"1"}]),
    ],
)
def test_the_query_decides_what_the_analyzer_gets(query, expected):
    suffix = uuid.uuid4().hex[:8]
    ids = (f"a-{suffix}", "aggregator")
    models = _run_nodes(
        StarModel,
        ids,
        {ids[0]: [{"a.csv": b"1", "b.csv": b"2"}]},
        analyzer=EchoAnalyzer,
        aggregator=ConstantAggregator,
        data_type="s3",
        query=query,
    )
    assert models[ids[0]].data == expected
    assert models["aggregator"].flame.final_results_storage == expected


def test_a_node_that_logged_an_error_fails_when_it_returns(capsys):
    suffix = uuid.uuid4().hex[:8]
    ids = (f"a-{suffix}", "aggregator")
    with pytest.raises(
        LoggedError,
        match=r"the node logged an error \(flame_log with log_type='error'\), which marks a "
        r"production node failed: the aggregate looks wrong",
    ):
        _run_nodes(
            StarModel,
            ids,
            {ids[0]: [{"v.csv": b"1"}]},
            analyzer=EchoAnalyzer,
            aggregator=ErrorLoggingAggregator,
            data_type="s3",
            query=[],
        )
    assert "[aggregator] the aggregate looks wrong" in capsys.readouterr().err


#: Positional parameters of the SDK's public API: flame 0.6.4 (StarModel, StarLocalDPModel,
#: StarModelTester) and flamesdk 0.5.0 (FlameCoreSDK).
SDK_SIGNATURES = {
    StarModel.__init__: "analyzer aggregator data_type query simple_analysis output_type "
    "multiple_results analyzer_kwargs aggregator_kwargs test_mode test_kwargs",
    StarLocalDPModel.__init__: "analyzer aggregator data_type query simple_analysis "
    "output_type multiple_results analyzer_kwargs aggregator_kwargs epsilon sensitivity "
    "test_mode test_kwargs",
    StarModelTester.__init__: "data_splits analyzer aggregator data_type node_roles query "
    "simple_analysis output_type multiple_results analyzer_kwargs aggregator_kwargs epsilon "
    "sensitivity result_filepath",
    FlameCore.ready_check: "nodes attempt_interval timeout",
    FlameCore.flame_log: "msg sep end log_type append halt_submission",
    FlameCore.set_progress: "progress",
    FlameCore.fhir_to_csv: "fhir_data col_key_seq value_key_seq input_resource row_key_seq "
    "row_id_filters col_id_filters row_col_name separator output_type",
    FlameCore.send_message: "receivers message_category message max_attempts timeout "
    "attempt_timeout",
    FlameCore.await_messages: "senders message_category message_id timeout",
    FlameCore.get_messages: "status",
    FlameCore.delete_messages: "message_ids",
    FlameCore.clear_messages: "status min_age",
    FlameCore.send_message_and_wait_for_responses: "receivers message_category message "
    "max_attempts timeout attempt_timeout",
    FlameCore.submit_final_result: "result output_type multiple_results local_dp",
    FlameCore.save_intermediate_data: "data location remote_node_ids tag",
    FlameCore.get_intermediate_data: "location id tag tag_option sender_node_id",
    FlameCore.send_intermediate_data: "receivers data message_category max_attempts timeout "
    "attempt_timeout",
    FlameCore.await_intermediate_data: "senders message_category timeout",
    FlameCore.get_local_tags: "filter",
    FlameCore.get_data_client: "data_id",
    FlameCore.get_fhir_data: "fhir_queries",
    FlameCore.get_s3_data: "s3_keys",
}


def _positional(function) -> list[str]:
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    parameters = inspect.signature(function).parameters.values()
    return [p.name for p in parameters if p.kind in kinds and p.name != "self"]


@pytest.mark.parametrize("function", list(SDK_SIGNATURES), ids=lambda f: f.__qualname__)
def test_positional_parameters_follow_the_sdk(function):
    assert _positional(function) == SDK_SIGNATURES[function].split()


def test_core_methods_match_the_installed_flamesdk_0_5():
    flamesdk = pytest.importorskip("flamesdk")
    from importlib.metadata import version

    if not version("flamesdk").startswith("0.5."):
        pytest.skip("the engine follows flamesdk 0.5's signatures")
    core = flamesdk.FlameCoreSDK
    public = [name for name in vars(core) if not name.startswith("_")]
    assert [name for name in public if not hasattr(FlameCore, name)] == []
    for name in public:
        assert _positional(getattr(FlameCore, name)) == _positional(getattr(core, name)), name


def test_star_classes_match_the_installed_flame_sdk():
    star = pytest.importorskip("flame.star")
    for ours, theirs in (
        (StarModel, star.StarModel),
        (StarLocalDPModel, star.StarLocalDPModel),
        (StarModelTester, star.StarModelTester),
    ):
        assert _positional(ours.__init__) == _positional(theirs.__init__)
