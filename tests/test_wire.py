"""pancreas_fl.wire: every message is checked where it is received; a damaged one names its sender.

Three kinds of tests: the damage the issue lists, one line each (both directions, both
strategies); a Hypothesis property over random damage to random fields of random rounds (the
honest result, a result that says it did not converge, or one line naming the sender); and
the bounds' soundness, a Hypothesis property over honest random data (an honest message never
trips a bound, with an intercept, standardization, either curvature, any point, FedAvg's
local steps and penalties).
"""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _damage import KINDS, Damage, run_damaged
from _helpers import SAMPLE, sample_splits
from pancreas_fl import wire
from pancreas_fl.errors import MessageError, PancreasFLError
from pancreas_fl.exact.firth import local_third_moments
from pancreas_fl.exact.standardize import combine_moments, local_moments, scale_from_var
from pancreas_fl.exact.sums import local_terms
from pancreas_fl.exact.wire import certify
from pancreas_fl.fedavg import FedAvgHospital
from pancreas_fl.params import resolve_params
from pancreas_fl.reader import HospitalData
from pancreas_fl.wire import AggregatorInbox, HospitalInbox, UpdateSpec

SPLITS = sample_splits()

CONFIGS = {
    "fedavg": {},
    "fedavg-intercept": {"fit_intercept": True, "weighted": True, "output": "model"},
    "exact-intercept": {"strategy": "exact", "fit_intercept": True},
    "exact-standardized": {"strategy": "exact", "standardize": True},
    "exact-lbfgs": {"strategy": "exact", "solver": "lbfgs", "fit_intercept": True},
    "exact-firth": {"strategy": "exact", "penalty": "firth", "fit_intercept": True},
    # L-BFGS with Böhning's bound: the Gram triangle's rows cross in model rounds 0 and 1
    "exact-bohning": {
        "strategy": "exact",
        "fit_intercept": True,
        "max_message_mb": 2e-4,
        "max_memory_mb": 4e-3,
    },
}
HONEST = {name: run_damaged(SPLITS, None, **params) for name, params in CONFIGS.items()}

STOPPED = "The analysis is stopped; no result is written."


def coefficients(result) -> np.ndarray:
    if isinstance(result, dict):
        intercept = result["intercept"]
        return np.hstack([result["coef"].ravel(), [] if intercept is None else intercept])
    return result.ravel()


def refused(name: str, damage: Damage) -> str:
    with pytest.raises(MessageError) as info:
        run_damaged(SPLITS, damage, **CONFIGS[name])
    return str(info.value)


# ----------------------------------------------------------------- the issue's damage kinds
@pytest.mark.parametrize(
    ("name", "path", "kind", "match"),
    [
        # the largest array times 1e300: exact + intercept (the Hessian), FedAvg (coef)
        ("exact-intercept", ("update", "terms", "hess"), "times_1e300", r"terms\.hess holds 1 "),
        ("exact-intercept", ("update", "terms", "grad"), "times_1e300", r"terms\.grad holds 1 "),
        ("fedavg", ("update", "coef"), "times_1e300", r"coef is longer than a local fit"),
        ("fedavg-intercept", ("update", "intercept"), "times_1e300", r"intercept is farther"),
        ("fedavg", ("update", "loss"), "times_1e300", r"loss is larger than n log 2"),
        ("fedavg", ("update", "coef"), "complex", r"coef is complex \(complex128\) instead"),
        ("fedavg", ("update", "coef"), "nan", r"coef holds 1 non-finite value"),
        ("exact-intercept", ("update", "terms", "grad"), "inf", r"terms\.grad holds 1 non-fin"),
        ("exact-lbfgs", ("update", "terms", "hess", "sx"), "nan", r"terms\.hess\.sx holds 1 n"),
        ("fedavg", ("update", "coef"), "wrong_shape", r"coef has shape \(1, 7\) instead of"),
        ("exact-intercept", ("update", "terms", "hess"), "wrong_shape", r"shape \(9, 8\)"),
        ("fedavg", ("update", "coef"), "none", r"coef is a NoneType instead of a float64 array"),
        ("exact-intercept", ("update", "terms"), "string", r"terms is a str instead of a dict"),
        ("fedavg", ("update", "coef"), "object", r"coef is of another type \(object\)"),
        ("exact-intercept", ("update", "terms", "n"), "negative", r"terms\.n is negative"),
        ("exact-intercept", ("update", "terms", "loss"), "negative", r"terms\.loss is negative"),
        ("exact-intercept", ("update", "n_extreme"), "missing_key", r"that lacks the key"),
        ("fedavg", ("update", "loss"), "extra_key", r"that holds the unexpected key\(s\) 'dam"),
    ],
)
def test_a_damaged_update_stops_the_run_naming_the_hospital(name, path, kind, match):
    text = refused(name, Damage("up", 2, 0, path, kind))
    assert text.startswith("hospital 'node-1' sent a round-2 ")
    assert text.endswith(f"its data or installation is faulty. {STOPPED}")
    assert "\n" not in text
    assert re.search(match, text), text


def test_the_issues_example_line():
    text = refused("exact-intercept", Damage("up", 3, 0, ("update", "terms", "grad"), "nan"))
    assert text == (
        "hospital 'node-1' sent a round-3 update whose terms.grad holds 1 non-finite value(s); "
        f"its data or installation is faulty. {STOPPED}"
    )


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize(("kind", "type_name"), [("none", "NoneType"), ("string", "str")])
def test_an_update_that_is_none_or_a_string_names_the_hospital(name, kind, type_name):
    text = refused(name, Damage("up", 2, 1, ("update",), kind))
    assert text.startswith(f"hospital 'node-2' sent a round-2 update that is a {type_name} ")


@pytest.mark.parametrize(
    ("name", "path", "kind", "match"),
    [
        ("fedavg", (), "nan", r"broadcast that holds 1 non-finite value"),
        ("fedavg", (), "complex", r"broadcast that is complex"),
        ("fedavg", (), "none", r"broadcast that is a NoneType instead of a float64 array"),
        ("fedavg-intercept", ("intercept",), "inf", r"intercept holds 1 non-finite"),
        ("exact-intercept", ("next_theta",), "wrong_shape", r"next_theta has shape \(8,\)"),
        ("exact-intercept", ("curvature",), "string", r"curvature is not the solver's 'full'"),
        ("exact-standardized", ("scaler", "scale"), "negative", r"scaler\.scale holds values"),
        ("exact-standardized", ("scaler", "mean"), "times_1e300", r"scaler differs from the"),
        ("exact-lbfgs", ("scaler",), "string", r"scaler is a str, not None"),
    ],
)
def test_a_damaged_broadcast_stops_the_hospital_naming_the_aggregator(name, path, kind, match):
    text = refused(name, Damage("down", 2, 1, path, kind))
    assert text.startswith("the aggregator sent a round-2 broadcast ")
    assert text.endswith(f"its installation is faulty. {STOPPED}")
    assert re.search(match, text), text


def test_a_message_naming_no_hospital_of_the_analysis_is_refused():
    text = refused("fedavg", Damage("up", 2, 0, ("node",), "string"))
    assert text.startswith("the round-2 message that arrived 1st names 'damaged' as its sender")
    assert "so its sender is unknown" in text


# ------------------------------------------------------------------------- the property
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    name=st.sampled_from(sorted(CONFIGS)),
    direction=st.sampled_from(["up", "down"]),
    round_=st.integers(0, 8),
    node=st.integers(0, 1),
    leaf=st.integers(0, 40),
    kind=st.sampled_from(KINDS),
)
def test_damage_ends_with_the_honest_result_or_one_line_naming_the_sender(
    name, direction, round_, node, leaf, kind
):
    honest = HONEST[name]
    rounds = len(honest.sent)
    if direction == "down":
        round_ = 1 + round_ % (rounds - 1)  # a broadcast is received from round 1 on
    else:
        round_ %= rounds
    damage = Damage(direction, round_, node, leaf, kind)
    try:
        run = run_damaged(SPLITS, damage, **CONFIGS[name])
    except PancreasFLError as err:
        text = str(err)
        assert "\n" not in text
        sender = f"hospital 'node-{node + 1}'" if direction == "up" else "the aggregator"
        assert sender in text or "so its sender is unknown" in text, text
        return
    got, want = coefficients(run.result), coefficients(honest.result)
    if name.startswith("fedavg"):
        assert np.array_equal(got, want), damage
    elif run.result["stop_reason"] == "tolerance":
        assert np.linalg.norm(got - want) <= 1e-6 * max(1.0, np.linalg.norm(want)), damage


# -------------------------------------------------- the bounds hold for every honest message
def honest_data(draw):
    n = draw(st.integers(2, 60))
    d = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    scale = 10.0 ** draw(st.integers(-140, 140))  # the reader refuses |x| > 1e150
    X = rng.normal(size=(n, d)) * scale * rng.uniform(0.1, 10, size=d)
    if draw(st.booleans()):
        X[:, 0] = np.round(X[:, 0] / scale)  # a 0/1 (dummy-like) column
    y = (rng.uniform(size=n) < 0.5).astype(float)
    y[0], y[1] = 0.0, 1.0
    return rng, X, y


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_no_honest_exact_message_breaks_a_bound(data):
    rng, X, y = honest_data(data.draw)
    n, d = X.shape
    fit_intercept = data.draw(st.booleans())
    curvature = data.draw(st.sampled_from(["full", "diag", "triangle", "triangle32"]))
    scaler = {}
    p = d + fit_intercept
    inbox = AggregatorInbox()
    inbox.counts["h"] = (n, int(y.sum()))
    if data.draw(st.booleans()):  # pooled with another hospital's moments, as the fit does
        moments = local_moments(X)
        other = X[:1] * rng.uniform(-3, 3) + rng.normal(size=(data.draw(st.integers(1, 50)), d))
        inbox.check_updates(
            [
                {
                    "node": "h",
                    "update": {"terms": None, "moments": moments, "n_extreme": None, "firth": None},
                }
            ],
            0,
            UpdateSpec("moments", d, fit_intercept),
        )
        total, mean, var = combine_moments([moments, local_moments(other)])
        scaler = {"mean": mean, "scale": scale_from_var(var, mean, total)}
    spread = 10.0 ** data.draw(st.integers(-3, 3))
    for point in range(4):
        theta = np.zeros(p) if point == 0 else rng.normal(size=p) * spread * 10.0**point
        if point and not scaler:
            theta[:d] /= np.maximum(np.abs(X).max(axis=0), 1e-300)  # z of a sensible size
        asked = curvature
        if point and curvature in ("triangle", "triangle32") and data.draw(st.booleans()):
            asked = "none"  # a round on the kept Hessian (exact/reuse.py): the gradient alone
        hessian = None if asked == "none" else asked
        terms = local_terms(X, y, theta, fit_intercept=fit_intercept, hessian=hessian, **scaler)
        third = None
        cubes_finite = bool(scaler) or float(np.abs(X).max()) < 1e90  # else Firth overflows
        if curvature == "full" and cubes_finite and data.draw(st.booleans()):  # Firth's sum
            third = local_third_moments(X, theta, fit_intercept=fit_intercept, **scaler)
        spec = UpdateSpec(
            "terms",
            d,
            fit_intercept,
            asked,
            at_zero=point == 0,
            scaler=scaler or None,
            firth_third=third is not None,
        )
        update = {"terms": terms, "moments": None, "n_extreme": 0, "firth": third}
        update = pickle.loads(pickle.dumps(update))
        inbox.check_updates([{"node": "h", "update": update}], point, spec)
    if curvature == "triangle32":  # the statistics round at the last point: the residual
        terms = local_terms(
            X, y, theta, fit_intercept=fit_intercept, hessian="residual32", **scaler
        )
        spec = UpdateSpec("terms", d, fit_intercept, "residual32", scaler=scaler or None)
        update = {"terms": terms, "moments": None, "n_extreme": 0, "firth": None}
        inbox.check_updates([{"node": "h", "update": update}], 4, spec)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_no_honest_fedavg_update_breaks_a_bound(data):
    rng, X, y = honest_data(data.draw)
    n, d = X.shape
    X /= max(float(np.abs(X).max()), 1e-300)  # numbers the local fit handles
    X *= 10.0 ** data.draw(st.integers(-2, 3))
    fit_intercept = data.draw(st.booleans())
    C = data.draw(st.sampled_from([1e-4, 0.01, 1.0, 100.0, 1e6]))
    steps = data.draw(st.integers(1, 4))
    hospital = FedAvgHospital(
        HospitalData(X, y.astype(int), tuple(f"f{j}" for j in range(d)), "y"),
        resolve_params(C=C, fit_intercept=fit_intercept, local_steps=steps, output="model"),
    )
    inbox = AggregatorInbox()
    inbox.counts["h"] = (n, int(y.sum()))
    model = None
    for k in range(4):
        update = hospital.update(model)
        start = None if model is None else model["coef"]
        b0 = None if model is None or not fit_intercept else float(model["intercept"][0])
        spec = UpdateSpec("fedavg", d, fit_intercept, C=C, start=start, start_intercept=b0)
        inbox.check_updates([{"node": "h", "update": update}], k, spec)
        # the next global model: this one moved by another hospital's (random) fit
        coef = update["coef"] * rng.uniform(0.5, 1.5)
        intercept = None if not fit_intercept else update["intercept"] * rng.uniform(0.5, 1.5)
        model = {"coef": coef, "intercept": intercept}


def test_the_certificate_holds_for_every_converged_honest_fit_here():
    for name, honest in HONEST.items():
        if name.startswith("exact"):
            assert honest.result["stop_reason"] == "tolerance", name


def test_the_certificate_refuses_a_gradient_far_from_zero():
    theta = np.ones(3)
    assert certify(np.zeros(3), theta, C=1.0, trace0=10.0, n_penalized=3, tol=1e-8, n_total=50)
    assert not certify(
        np.full(3, 1e-3), theta, C=1.0, trace0=10.0, n_penalized=3, tol=1e-8, n_total=50
    )


def test_a_hospital_checks_the_setup_broadcast_against_its_own_levels():
    inbox = HospitalInbox("fedavg", False, False, "coef", levels={"site": ["a", "b"]})
    inbox.receive({"levels": {"site": ["a", "b", "c"]}}, 1, None)
    with pytest.raises(MessageError, match=r"levels\['site'\] lacks levels this hospital sent"):
        inbox.receive({"levels": {"site": ["a", "c"]}}, 1, None)
    with pytest.raises(MessageError, match=r"whose levels lacks the key\(s\) 'site'"):
        inbox.receive({"levels": {}}, 1, None)


def test_the_command_reports_a_damaged_message_as_a_data_error(tmp_path, capsys, monkeypatch):
    from pancreas_fl.analysis import PancreasAnalyzer
    from pancreas_fl_tools.cli import main

    honest = PancreasAnalyzer.analysis_method

    def damaging(self, data, aggregator_results):
        message = honest(self, data, aggregator_results)
        if self.id == "node1" and self.num_iterations == 2:
            message["update"]["coef"] = np.full_like(message["update"]["coef"], np.nan)
        return message

    monkeypatch.setattr(PancreasAnalyzer, "analysis_method", damaging)
    folders = [str(SAMPLE / "node1"), str(SAMPLE / "node2")]
    out = tmp_path / "m.pkl"
    code = main(["simulate", *folders, "--isolation", "thread", "--out", str(out), "--quiet"])
    _, err = capsys.readouterr()
    assert code == 2
    assert err == (
        "pancreas-fl: error: hospital 'node1' sent a round-2 update whose coef holds 8 "
        "non-finite value(s); its data or installation is faulty. The analysis is stopped; no "
        "result is written.\n"
    )
    assert not out.exists()


def test_a_fooled_solver_ends_as_not_converged_not_as_a_converged_model(monkeypatch):
    """A solver that declares convergence too early (as a too large curvature would make it)."""
    from pancreas_fl.exact.solver import FederatedSolver

    def fooled(self, theta, g, step_norm, taken, precondition):
        if self.iteration >= 2:
            self.converged, self.done, self.status = True, True, "converged"

    monkeypatch.setattr(FederatedSolver, "check_convergence", fooled)
    run = run_damaged(SPLITS, None, **CONFIGS["exact-intercept"])
    assert run.result["stop_reason"] == "uncertified"
    assert ("warn", run.aggregator.strategy_.stop_message("uncertified")[0]) in (
        run.aggregator.flame.logs
    )
    assert "unreliable" in run.result["statistics"]["note"]


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (np.array([1.0, np.nan, 2.0, np.inf]), r"holds 2 non-finite value\(s\)"),
        (np.array([-np.inf, 1.0, 1.0, 1.0]), r"holds 1 non-finite value\(s\)"),
        (np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32), r"of another type \(float32\)"),
        (np.array([1.0, 2.0, 3.0, 4.0]) + 0j, r"complex \(complex128\)"),
        (np.array([1.0, 2.0, 3.0]), r"has shape \(3,\) instead of \(4,\)"),
        ([1.0, 2.0, 3.0, 4.0], "is a list instead of a float64 array"),
    ],
)
def test_an_array_field_is_real_finite_float64_of_its_shape(value, match):
    with pytest.raises(wire.Damage, match=match):
        wire.as_array(value, "terms.grad", (4,))


@pytest.mark.parametrize("length", [1, 4])  # an intercept is squared in Python, not by BLAS
@pytest.mark.parametrize("size", [1e155, 1e200, -1e300])
def test_finite_values_whose_squares_overflow_pass_and_sum_to_inf(size, length):
    value = np.full(length, size)
    assert wire.sum_of_squares(value, "coef", (length,)) == np.inf
    assert wire.as_array(value, "coef", (length,)) is value


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_one_value_array_that_is_not_finite_is_refused(bad):
    with pytest.raises(wire.Damage, match=r"holds 1 non-finite value\(s\)"):
        wire.as_array(np.array([bad]), "intercept", (1,))


@pytest.mark.parametrize("shape", [(1,), (1, 1), (2, 5)])
def test_the_sum_of_squares_is_that_of_the_values(shape):
    value = np.random.default_rng(3).normal(size=shape)
    assert wire.sum_of_squares(value, "coef", shape) == pytest.approx(float(np.sum(value**2)))


def test_a_digest_tells_apart_what_differs_and_only_that():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(2, 3))
    same = {"next_theta": a.copy(), "curvature": "full", "scaler": None}
    assert wire.digest(a) == wire.digest(a.copy()) == wire.digest(np.asfortranarray(a))
    assert wire.digest(same) == wire.digest({**same, "next_theta": a.copy()})
    changed = a.copy()
    changed[1, 2] = np.nextafter(changed[1, 2], np.inf)
    for other in (changed, a.reshape(3, 2), a.astype(np.float32), a.tolist()):
        assert wire.digest(other) != wire.digest(a)
    assert wire.digest({**same, "curvature": "diag"}) != wire.digest(same)
    assert wire.digest({**same, "scaler": "None"}) != wire.digest(same)
    assert wire.digest({1: a}) != wire.digest({"1": a}) != wire.digest({True: a})
