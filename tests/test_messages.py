"""The messages between the nodes: their shape, a pickle round trip, only aggregates.

Every message has the documented shape, survives a pickle round trip and carries only
aggregates, counts and names.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from _helpers import cohort_splits
from _star import run_by_hand
from pancreas_fl import fedavg, messages
from pancreas_fl.exact import messages as exact_messages
from pancreas_fl.wire import digest

# 3 hospitals of 170, 60 and 110 patients, 6 features: no aggregate has a patient dimension
SPLITS = {"n_nodes": 3, "rows": [170, 60, 110], "n_features": 6, "seed": 12}
N_PATIENTS = (170, 60, 110)

CONFIGS = {
    "fedavg": {},
    "fedavg-model": {"fit_intercept": True, "weighted": True, "output": "model"},
    "exact": {"strategy": "exact"},
    "exact-standardize": {"strategy": "exact", "standardize": True, "fit_intercept": True},
    "exact-lbfgs": {"strategy": "exact", "solver": "lbfgs", "fit_intercept": True},
    "exact-firth": {"strategy": "exact", "penalty": "firth", "fit_intercept": True},
    # Böhning's bound: Newton's 9 p x p exceed the memory budget, its Gram rows cross in two
    "exact-bohning": {
        "strategy": "exact",
        "fit_intercept": True,
        "max_message_mb": 1.5e-4,
        "max_memory_mb": 3e-3,
    },
}


def keys(typed_dict) -> set[str]:
    return set(typed_dict.__annotations__)


def documented(message: dict, typed_dict) -> bool:
    """Whether ``message`` has every required key of ``typed_dict`` and only its keys."""
    return set(typed_dict.__required_keys__) <= set(message) <= keys(typed_dict)


def leaves(obj):
    """Every non-container value inside ``obj`` (dict keys included)."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield key
            yield from leaves(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from leaves(value)
    else:
        yield obj


def same(a, b) -> bool:
    """Deep equality, arrays compared bit for bit."""
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.tobytes() == b.tobytes()
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@pytest.fixture(scope="module", params=list(CONFIGS))
def run(request):
    return run_by_hand(cohort_splits(**SPLITS), max_param_ratio=1.0, **CONFIGS[request.param])


def test_hospital_messages_have_the_documented_keys(run):
    strategy = run.hospitals[0].params_.strategy
    for k, sent in enumerate(run.sent):
        for message in sent:
            assert set(message) == keys(messages.HospitalMessage)
            if k == 0:
                assert set(message["intro"]) == keys(messages.Introduction)
            else:
                assert message["intro"] is None
            update = message["update"]
            if strategy == "fedavg":
                assert set(update) == keys(fedavg.FedAvgUpdate)
                continue
            assert documented(update, exact_messages.ExactUpdate)
            if update["terms"] is None:  # round 0 of a standardized fit
                assert set(update["moments"]) == keys(exact_messages.FeatureMoments)
                continue
            assert set(update["terms"]) == keys(exact_messages.LocalTerms)
            if isinstance(update["terms"]["hess"], dict):
                assert set(update["terms"]["hess"]) == keys(exact_messages.DiagMoments)


def test_broadcasts_have_the_documented_keys(run):
    p = run.aggregator.params_
    for broadcast in run.broadcasts:
        if p.strategy == "exact":
            assert documented(broadcast, exact_messages.ExactBroadcast)
            if p.standardize:
                assert set(broadcast["scaler"]) == keys(exact_messages.Scaler)
            if p.penalty == "firth":
                assert set(broadcast["firth"]) == keys(exact_messages.FirthRequest)
            else:
                assert broadcast["firth"] is None
        elif p.output == "coef":
            assert isinstance(broadcast, np.ndarray)
        else:
            assert set(broadcast) == keys(fedavg.GlobalModel)


def test_every_message_survives_a_pickle_round_trip(run):
    for message in [*(m for sent in run.sent for m in sent), *run.broadcasts, run.result]:
        assert same(pickle.loads(pickle.dumps(message)), message)


def test_messages_carry_only_aggregates_counts_and_names(run):
    assert tuple(hospital.data_.n_samples for hospital in run.hospitals) == N_PATIENTS
    columns = set(run.hospitals[0].data_.columns)
    names = {hospital.id for hospital in run.hospitals}
    settings = set(run.hospitals[0].params_.shared()) | {
        v for v in run.hospitals[0].params_.shared().values() if isinstance(v, str)
    }
    field_names = {
        name
        for module in (messages, exact_messages, fedavg)
        for cls in (getattr(module, n) for n in module.__all__)
        if isinstance(cls, type) and issubclass(cls, dict) and hasattr(cls, "__annotations__")
        for name in cls.__annotations__
    }
    echoes = {digest(broadcast) for broadcast in run.broadcasts}  # reveal nothing of the data
    curvatures = {"full", "diag", "none", "third"}
    allowed_text = columns | names | settings | field_names | curvatures | echoes
    for value in leaves([run.sent, run.broadcasts]):
        if isinstance(value, np.ndarray):
            assert value.dtype.kind == "f"
            assert not set(value.shape) & set(N_PATIENTS), value.shape  # no per-patient axis
        elif isinstance(value, str):
            assert value in allowed_text, value
        else:
            assert value is None or isinstance(value, (bool, int, float)), type(value)
