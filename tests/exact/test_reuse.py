"""Newton's Hessian kept across rounds while its steps converge fast (``exact/reuse.py``)."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest
from _federated import pooled_reference, rel_dist, run_federated, wide_hospitals

from _helpers import cohort_splits, run_analysis, sample_splits
from pancreas_fl.errors import MessageError
from pancreas_fl.exact import reuse as reuse_module
from pancreas_fl.exact.packed import PackedSymmetric
from pancreas_fl.exact.reuse import ChordRule, needs_curvature, reuses_curvature
from pancreas_fl.exact.solver import FederatedSolver, newton_direction
from pancreas_fl.exact.strategy import ExactAggregator, ExactHospital
from pancreas_fl.exact.sums import aggregate_terms, local_terms
from pancreas_fl.handshake import Agreement
from pancreas_fl.params import resolve_params
from pancreas_fl.reader import HospitalData
from pancreas_fl.wire import AggregatorInbox, HospitalInbox, UpdateSpec
from pancreas_fl_tools.sample import make_cohort

sm = pytest.importorskip("statsmodels.api")  # the `test` extra installs it

#: Budgets that force the packed triangles on 9 parameters (``test_curvature.py``).
TRIANGLE, TRIANGLE32 = 4e-4, 2e-4
#: A cohort (3 x 150 patients, 8 features) on which the rule keeps the Hessian for a round.
COHORT = {"n_nodes": 3, "rows": 150, "n_features": 8, "seed": 7}


# ------------------------------------------------------------------------------- the rule
@pytest.mark.parametrize(
    ("ratio", "step", "bound", "fresh", "asks"),
    [
        (0.2, 1e-2, 1e-7, True, True),  # 1. Newton not yet in its fast phase
        (math.inf, 1e-2, 1e-7, True, True),  # the previous step was zero
        (1e-3, 1e-2, 0.0, True, True),  # theta = 0: no relative tolerance to predict with
        (1e-2, 5e-4, 1e-7, True, True),  # 2. the next point is probably the estimate
        (0.05, 4e-5, 1e-7, False, True),  # 3. a chord step would land just inside tol
        (0.1, 1e-2, 1e-7, False, True),  # 4. the chord would take 4 rounds, Newton 2
        (0.03, 1e-2, 1e-7, True, False),  # one chord step lands deep inside tol: keep H
    ],
)
def test_fresh_curvature_unless_the_kept_hessian_costs_no_round(ratio, step, bound, fresh, asks):
    assert needs_curvature(ratio, step, bound, fresh=fresh) is asks


@pytest.mark.parametrize(
    ("p", "encoding", "setting", "firth", "reuses"),
    [
        (9, "full", "on", False, False),  # narrow data: never
        (362, "full", "on", False, False),
        (363, "triangle", "auto", False, False),  # where a Hessian costs less than a round
        (1999, "triangle", "auto", False, False),
        (2000, "triangle", "auto", False, True),
        (4500, "triangle32", "auto", False, True),
        (9, "triangle", "on", False, True),
        (4500, "triangle32", "off", False, False),
        (4500, "triangle32", "on", True, False),  # Firth needs the curvature every step
        (6000, "diag", "on", False, False),  # L-BFGS
    ],
)
def test_only_the_packed_triangles_are_kept(p, encoding, setting, firth, reuses):
    assert reuses_curvature(p, encoding, setting, firth=firth) is reuses


def test_the_kept_factor_gives_newton_s_direction():
    rng = np.random.default_rng(3)
    for n in (5, 64, 65, 300):  # block edges of the triangular solves
        A = rng.normal(size=(n, n))
        H = A @ A.T + np.diag(rng.uniform(0.1, 100.0, n))
        rule = ChordRule()
        for _ in range(2):  # factorized once, then kept
            g = rng.normal(size=n)
            d = rule.direction(g, lambda H=H: H.copy())  # a new matrix, scaled in place
            np.testing.assert_allclose(d, newton_direction(g, H), rtol=1e-10, atol=1e-14)


def test_a_singular_kept_hessian_is_ridged_as_newton_s():
    H = np.array([[1.0, 1.0], [1.0, 1.0]])  # rank 1
    d = ChordRule().direction(np.array([1.0, -1.0]), lambda: H)
    assert np.all(np.isfinite(d))


# ---------------------------------------------------------------------------- the solver
@pytest.mark.parametrize(("seed", "fit_intercept"), [(0, True), (0, False), (2, False)])
def test_reuse_reaches_newton_s_optimum_in_as_many_rounds(seed, fit_intercept):
    hospitals = wide_hospitals(seed, n=600, d=120)
    plain = run_federated(hospitals, fit_intercept=fit_intercept)
    kept = run_federated(hospitals, fit_intercept=fit_intercept, reuse=True)
    assert kept.step.converged
    gradient_only = sum(step.curvature is None for step in kept.steps[:-1])
    assert gradient_only >= 1
    assert kept.solver.reuse.hessian_rounds == kept.rounds - gradient_only
    assert kept.rounds <= plain.rounds
    assert rel_dist(kept.theta, plain.theta) <= 1e-8
    reference = pooled_reference(hospitals, fit_intercept=fit_intercept)
    assert rel_dist(kept.theta, reference) <= 1e-8


def kept_fit(keep_packed: bool):
    """Newton with reuse on hospitals sending triangles, summed packed or unpacked."""
    hospitals = wide_hospitals(0, n=600, d=120)
    solver = FederatedSolver(121, fit_intercept=True, reuse=True)
    theta, steps = solver.initial_theta(), []
    while True:
        hessian = None if solver.curvature is None else "triangle"
        terms = [
            local_terms(X, y, theta, fit_intercept=True, hessian=hessian) for X, y in hospitals
        ]
        total = aggregate_terms(terms, keep_packed=keep_packed)
        steps.append(solver.update(theta, total["loss"], total["grad"], total["hess"]))
        if steps[-1].done:
            return solver, steps
        theta = steps[-1].next_theta


def test_the_chord_steps_on_the_packed_sums_are_those_on_the_matrix_bit_for_bit():
    packed, packed_steps = kept_fit(True)
    dense, dense_steps = kept_fit(False)
    assert isinstance(packed.hess_loglik, PackedSymmetric)
    assert [s.curvature for s in packed_steps] == [s.curvature for s in dense_steps]
    assert None in [s.curvature for s in packed_steps[:-1]]  # rounds on the kept Hessian
    for ours, theirs in zip(packed_steps, dense_steps, strict=True):
        np.testing.assert_array_equal(ours.best_theta, theirs.best_theta)
        assert ours.step_norm == theirs.step_norm
    np.testing.assert_array_equal(packed.hess_loglik.unpack(), dense.hess_loglik)
    assert packed.reuse._factor is None  # done: the statistics hold no kept factor


def test_without_reuse_every_round_carries_curvature():
    hospitals = wide_hospitals(0, n=600, d=120)
    plain = run_federated(hospitals, fit_intercept=True)
    assert plain.solver.reuse is None
    assert all(step.curvature == "full" for step in plain.steps[:-1])


# -------------------------------------------------------------- the strategy, end to end
def frames_data(frames) -> list[HospitalData]:
    return [
        HospitalData(
            f.iloc[:, :-1].to_numpy(float), f.iloc[:, -1].to_numpy(), tuple(f.columns[:-1]), "y"
        )
        for f in frames
    ]


def run_sides(frames, **params):
    """Run both sides round by round; return the result and what each round's updates carried."""
    params = resolve_params(strategy="exact", fit_intercept=True, C=math.inf, **params)
    data = frames_data(frames)
    counts = {f"node{k}": len(d.y) for k, d in enumerate(data, 1)}
    agreement = Agreement(
        list(data[0].feature_names), "y", counts, int(sum(d.y.sum() for d in data))
    )
    sides = {node: ExactHospital(d, params) for node, d in zip(counts, data, strict=True)}
    aggregator = ExactAggregator(params, agreement, lambda *a, **k: None, max_iter_given=False)
    broadcast, k, carried = None, 0, []
    while True:
        updates = {node: side.update(broadcast) for node, side in sides.items()}
        hess = updates["node1"]["terms"]["hess"]
        carried.append(None if hess is None else hess["encoding"])
        result = aggregator.aggregate(updates, k)
        if aggregator.stop_reason_ is not None:
            return result, carried
        broadcast, k = result, k + 1


def statsmodels_fit(frames):
    pooled = pd.concat(frames)
    X = np.column_stack([pooled.iloc[:, :-1].to_numpy(float), np.ones(len(pooled))])
    model = sm.GLM(pooled.iloc[:, -1].to_numpy(), X, family=sm.families.Binomial())
    first = model.fit(tol=1e-14, maxiter=100)
    return model.fit(start_params=first.params, tol=1e-14, maxiter=100)


def assert_statsmodels(statistics, res):
    for ours, theirs in [
        ("coef", res.params),
        ("std_err", res.bse),
        ("p_value", res.pvalues),
        ("cov", res.cov_params()),
    ]:
        np.testing.assert_allclose(
            np.asarray(statistics[ours], float), np.asarray(theirs, float), rtol=1e-8
        )


@pytest.mark.parametrize(("budget", "stats_rounds"), [(TRIANGLE, []), (TRIANGLE32, ["residual32"])])
def test_a_kept_hessian_saves_curvature_not_rounds_nor_accuracy(budget, stats_rounds):
    frames = make_cohort(**COHORT)
    plain, plain_carried = run_sides(frames, max_message_mb=budget, reuse_curvature="off")
    kept, carried = run_sides(frames, max_message_mb=budget, reuse_curvature="on")
    assert None not in plain_carried
    assert carried.count(None) >= 1  # rounds that carried the gradient alone
    assert kept["rounds"] <= plain["rounds"]  # float32 without reuse: 12 (two trials rejected)
    assert carried[-1 - len(stats_rounds) :] == [carried[-1 - len(stats_rounds)], *stats_rounds]
    assert carried[-1 - len(stats_rounds)] is not None  # the estimate carried its Hessian
    np.testing.assert_allclose(kept["coef"], plain["coef"], rtol=1e-8)
    assert_statsmodels(kept["statistics"], statsmodels_fit(frames))


@pytest.mark.parametrize(
    ("budget", "stats_rounds"),
    [(TRIANGLE, ["triangle"]), (TRIANGLE32, ["triangle32", "residual32"])],
)
def test_an_estimate_without_its_hessian_gets_it_in_the_statistics_rounds(
    budget, stats_rounds, monkeypatch
):
    # every round after the first step on the start point's Hessian: the chord method alone
    monkeypatch.setattr(reuse_module, "needs_curvature", lambda *args, **kwargs: False)
    frames = make_cohort(**COHORT)
    result, carried = run_sides(frames, max_message_mb=budget, reuse_curvature="on", tol=1e-10)
    assert result["stop_reason"] == "tolerance"
    assert carried[2 : -len(stats_rounds)] == [None] * (len(carried) - 2 - len(stats_rounds))
    assert carried[-len(stats_rounds) :] == stats_rounds
    assert_statsmodels(result["statistics"], statsmodels_fit(frames))
    # the same rounds through the node classes: every message checked where it is received
    checked = run_analysis(
        cohort_splits(**COHORT),
        strategy="exact",
        fit_intercept=True,
        C=math.inf,
        max_message_mb=budget,
        reuse_curvature="on",
        tol=1e-10,
    ).result
    assert checked["rounds"] == result["rounds"] == len(carried)
    np.testing.assert_array_equal(checked["coef"], result["coef"])


@pytest.mark.parametrize("budget", [TRIANGLE, TRIANGLE32])
def test_the_node_classes_check_and_keep_the_reuse_rounds(budget):
    splits = cohort_splits(**COHORT)
    params = {"strategy": "exact", "fit_intercept": True, "C": math.inf}
    plain = run_analysis(splits, max_message_mb=budget, reuse_curvature="off", **params).result
    kept = run_analysis(splits, max_message_mb=budget, reuse_curvature="on", **params).result
    assert kept["rounds"] <= plain["rounds"]
    np.testing.assert_allclose(kept["coef"], plain["coef"], rtol=1e-8)
    frames = [pd.read_csv(io.BytesIO(s[0]["pancreasData.csv"])) for s in splits]
    assert_statsmodels(kept["statistics"], statsmodels_fit(frames))


def test_narrow_data_never_reuse_bit_for_bit():
    splits = sample_splits()
    params = {"strategy": "exact", "fit_intercept": True}
    plain = run_analysis(splits, reuse_curvature="off", **params).result
    kept = run_analysis(splits, reuse_curvature="on", **params).result
    assert kept["rounds"] == plain["rounds"]
    np.testing.assert_array_equal(kept["coef"], plain["coef"])
    np.testing.assert_array_equal(kept["intercept"], plain["intercept"])
    np.testing.assert_array_equal(kept["statistics"]["cov"], plain["statistics"]["cov"])


# ------------------------------------------------------------------------------ the wire
def hospital_rounds(budget=TRIANGLE):
    """One hospital's honest updates at zero (curvature) and at a point (the gradient alone)."""
    rng = np.random.default_rng(11)
    X = rng.normal(8.0, 2.0, size=(60, 8))
    y = (rng.random(60) < 0.4).astype(int)
    p = 9
    first = local_terms(X, y, np.zeros(p), fit_intercept=True, hessian="triangle")
    later = local_terms(X, y, rng.normal(0, 0.1, p), fit_intercept=True, hessian=None)
    inbox = AggregatorInbox()
    inbox.counts["h"] = (60, int(y.sum()))
    zero = UpdateSpec("terms", 8, True, "triangle", at_zero=True)
    inbox.check_updates([{"node": "h", "update": wrap(first)}], 1, zero)
    return inbox, first, later


def wrap(terms):
    return {"terms": terms, "moments": None, "n_extreme": 0, "firth": None}


GRADIENT_ONLY = UpdateSpec("terms", 8, True, "none")


def test_a_gradient_only_update_passes_where_none_was_asked():
    inbox, _, later = hospital_rounds()
    inbox.check_updates([{"node": "h", "update": wrap(later)}], 2, GRADIENT_ONLY)


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        ("curvature", r"terms\.hess is a dict, not None"),
        ("no_gradient", r"terms\.grad is a NoneType instead of a float64 array"),
        ("short_gradient", r"terms\.grad has shape \(8,\) instead of \(9,\)"),
        ("nan_gradient", r"terms\.grad holds 1 non-finite value"),
        ("huge_gradient", r"terms\.grad holds 1 value\(s\) beyond"),
    ],
)
def test_a_damaged_reuse_round_update_names_the_hospital(damage, match):
    inbox, first, later = hospital_rounds()
    terms = dict(later)
    if damage == "curvature":
        terms["hess"] = first["hess"]
    elif damage == "no_gradient":
        terms["grad"] = None
    elif damage == "short_gradient":
        terms["grad"] = terms["grad"][:-1]
    elif damage == "nan_gradient":
        terms["grad"] = terms["grad"].copy()
        terms["grad"][0] = np.nan
    else:
        terms["grad"] = terms["grad"].copy()
        terms["grad"][0] = 1e300
    with pytest.raises(MessageError, match=r"^hospital 'h' sent a round-2 update whose " + match):
        inbox.check_updates([{"node": "h", "update": wrap(terms)}], 2, GRADIENT_ONLY)


def test_curvature_is_required_where_it_was_asked():
    inbox, _, later = hospital_rounds()
    asked = UpdateSpec("terms", 8, True, "triangle")
    with pytest.raises(MessageError, match=r"^hospital 'h' sent a round-2 update whose terms\.h"):
        inbox.check_updates([{"node": "h", "update": wrap(later)}], 2, asked)


@pytest.mark.parametrize(
    ("reuse", "budget", "accepted"),
    [("on", TRIANGLE, True), ("off", TRIANGLE, False), ("on", 64.0, False)],
)
def test_a_hospital_accepts_a_gradient_only_broadcast_only_where_reuse_applies(
    reuse, budget, accepted
):
    inbox = HospitalInbox("exact", True, False, "model", budgets=(budget, 4096.0), reuse=reuse)
    broadcast = {"next_theta": np.zeros(9), "curvature": "none", "scaler": None, "firth": None}
    if accepted:
        inbox.receive(broadcast, 2, 8)
        return
    with pytest.raises(MessageError, match=r"^the aggregator sent a round-2 broadcast whose curv"):
        inbox.receive(broadcast, 2, 8)
