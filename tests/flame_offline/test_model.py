"""Node bases and ``StarModel`` / ``StarLocalDPModel`` run directly (no tester)."""

from __future__ import annotations

import threading
import uuid

import pytest
from _cores import make_cores, node_kwargs
from _nodes import ConstantAggregator, EchoAnalyzer, MeanAggregator, SumAnalyzer

from flame_offline import StarAggregator, StarAnalyzer, StarLocalDPModel, StarModel


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
        models = _run_nodes(StarModel, ids, data, simple_analysis=False, **kwargs)
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
