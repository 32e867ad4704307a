"""The pooled curvature kept packed: the same numbers as the matrix, and the same checks.

The aggregator no longer unpacks a hospital's triangle to check it, nor keeps the pooled
information unpacked between rounds (``pancreas_fl.exact.packed``). These tests pin that
nothing else changed: a packed check rejects exactly what the check of the unpacked matrix
rejected, with the same one-line message, and a fit on the packed path gives the model the
unpacked path gave, bit for bit.
"""

from __future__ import annotations

import pickle
import re
import struct

import numpy as np
import pytest

from pancreas_fl.errors import MessageError
from pancreas_fl.exact import local_terms
from pancreas_fl.exact.curvature import pack_upper, unpack_upper
from pancreas_fl.exact.glm import _symmetric_lists, glm_summary
from pancreas_fl.exact.packed import (
    PackedSymmetric,
    count_beyond,
    count_nonfinite,
    diagonal,
    kept,
    segment_indices,
    segments,
)
from pancreas_fl.exact.solver import FederatedSolver, newton_direction
from pancreas_fl.exact.sums import aggregate_terms
from pancreas_fl.wire import AggregatorInbox, UpdateSpec


def symmetric(p: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(3 * p, p))
    return W.T @ W


# ------------------------------------------------------------------ the packed triangle
@pytest.mark.parametrize("p", [1, 2, 7, 40])
@pytest.mark.parametrize("entries", [1, 5, 64, 2**16])
def test_segments_cover_every_entry_once_with_its_row_and_column(p, entries):
    seen = np.zeros((p, p), dtype=int)
    position = 0
    for first, stop_row, start, stop in segments(p, entries):
        assert start == position
        assert stop_row > first
        rows, cols = segment_indices(first, stop_row, p)
        assert rows.size == stop - start
        np.add.at(seen, (rows, cols), 1)
        position = stop
    assert position == p * (p + 1) // 2
    np.testing.assert_array_equal(seen, np.triu(np.ones((p, p), dtype=int)))


def test_a_packed_matrix_is_the_matrix_it_packs():
    H = symmetric(9, 0)
    packed = PackedSymmetric(pack_upper(H, "triangle")["upper"], 9)
    np.testing.assert_array_equal(packed.unpack(), H)
    np.testing.assert_array_equal(packed.diagonal(), np.diag(H))
    np.testing.assert_array_equal(diagonal(packed), diagonal(H))
    other = symmetric(9, 1)
    total = packed + PackedSymmetric(pack_upper(other, "triangle")["upper"], 9)
    np.testing.assert_array_equal(total.unpack(), H + other)  # the same additions
    assert packed.shape == (9, 9)
    with pytest.raises(ValueError, match="is read-only"):
        packed.upper[0] = 1.0
    with pytest.raises(ValueError, match=r"of 9 parameters is a float64 array of 45 numbers"):
        PackedSymmetric(np.zeros(44), 9)


def test_aggregate_terms_keeps_the_sum_packed_with_the_same_numbers():
    rng = np.random.default_rng(3)
    parts = []
    for _ in range(3):
        X = rng.normal(size=(30, 6))
        y = (rng.random(30) < 0.5).astype(int)
        parts.append(
            local_terms(X, y, rng.normal(size=7) * 0.1, fit_intercept=True, hessian="triangle")
        )
    dense = aggregate_terms(parts)["hess"]
    packed = aggregate_terms(parts, keep_packed=True)["hess"]
    assert isinstance(packed, PackedSymmetric)
    np.testing.assert_array_equal(packed.unpack(), dense)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("apart", ["scalar", "vector"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_count_beyond_counts_what_the_unpacked_check_counted(seed, apart, dtype):
    rng = np.random.default_rng(seed)
    p = int(rng.integers(1, 60))
    H = symmetric(p, seed)
    root = np.sqrt(np.diag(H))
    H[rng.random((p, p)) < 0.2] *= 1.5  # some entries beyond the bound, some not
    H = np.triu(H) + np.triu(H, 1).T
    upper = pack_upper(H, "triangle")["upper"].astype(dtype)
    a = 1e-3 * rng.random() if apart == "scalar" else 1e-3 * rng.random(p)
    extra = None if seed % 2 else 1e-6
    # the check of the unpacked matrix, as the aggregator ran it before
    matrix = unpack_upper(upper.astype(np.float64), p)
    bound = np.outer(root, root) * 1.25 + (a if apart == "scalar" else a[:, None] + a[None, :])
    if extra is not None:
        bound = bound + extra
    within = np.abs(matrix) <= bound
    expected = within.size - int(np.count_nonzero(within))
    assert count_beyond(upper, p, root, 1.25, a, extra) == expected


def test_count_nonfinite_counts_the_triangle_s_numbers():
    upper = np.arange(21.0)
    upper[[0, 5, 20]] = [np.nan, np.inf, -np.inf]
    assert count_nonfinite(upper, 6) == 3


# ------------------------------------------------------------------ the checks, packed
N, D = 60, 5


def honest(encoding: str, seed: int = 0):
    """Return an inbox that has seen the first model round, and the second round's terms."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, D)) * np.linspace(0.5, 2.0, D)
    y = (rng.random(N) < 0.5).astype(int)
    y[:2] = [0, 1]
    inbox = AggregatorInbox()
    inbox.counts["h"] = (N, int(y.sum()))
    first = local_terms(X, y, np.zeros(D + 1), fit_intercept=True, hessian=encoding)
    spec = UpdateSpec("terms", D, True, encoding, at_zero=True)
    check(inbox, first, spec, 0)
    theta = rng.normal(size=D + 1) * 0.3
    return inbox, X, y, theta, local_terms(X, y, theta, fit_intercept=True, hessian=encoding)


def check(inbox, terms, spec, k):
    update = {"terms": terms, "moments": None, "n_extreme": 0, "firth": None}
    inbox.check_updates([{"node": "h", "update": update}], k, spec)


def damage_diagonal_beyond_energy(H, limits):
    H[1, 1] = 3.0 * limits.curv_max[1]  # above sum(x^2)/4 (the sqrt bound grows with it)


def damage_negative_diagonal(H, limits):
    H[2, 2] = -1e-3


def damage_off_diagonal(H, limits):
    H[0, 3] = H[3, 0] = 1.5 * np.sqrt(H[0, 0] * H[3, 3]) + 1.0


def damage_two_off_diagonals(H, limits):
    damage_off_diagonal(H, limits)
    H[1, 4] = H[4, 1] = -2.0 * np.sqrt(H[1, 1] * H[4, 4]) - 1.0


def damage_intercept(H, limits):
    H[-1, -1] = N / 4 * 1.01  # with its row scaled up too: only the n/4 bound trips
    H[:-1, -1] *= 1.01
    H[-1, :-1] *= 1.01


DAMAGE = {
    "diagonal above sum(x^2)/4": (
        damage_diagonal_beyond_energy,
        "holds 1 value(s) beyond sum(x^2)/4",
    ),
    "negative diagonal": (damage_negative_diagonal, "has a negative diagonal (curvature is >= 0)"),
    "off-diagonal above sqrt": (
        damage_off_diagonal,
        "holds 2 value(s) beyond sqrt(H_jj H_kk)",
    ),
    "two off-diagonals": (damage_two_off_diagonals, "holds 4 value(s) beyond sqrt(H_jj H_kk)"),
    "intercept above n/4": (damage_intercept, "is larger than n/4 for the intercept"),
}


def refusal(inbox, terms, spec, k) -> str:
    with pytest.raises(MessageError) as info:
        check(inbox, terms, spec, k)
    return str(info.value)


@pytest.mark.parametrize("name", DAMAGE)
def test_a_packed_check_refuses_what_the_unpacked_check_refused_with_its_message(name):
    damage, message = DAMAGE[name]
    inbox, _, _, _, terms = honest("triangle")
    dense_inbox, _, _, _, _ = honest("triangle")
    H = unpack_upper(terms["hess"]["upper"], D + 1)
    damage(H, inbox.limits["h"])
    sent = {**terms, "hess": pack_upper(H, "triangle")}
    packed = refusal(inbox, sent, UpdateSpec("terms", D, True, "triangle"), 1)
    assert packed.startswith(f"hospital 'h' sent a round-1 update whose terms.hess {message};")
    # the check of the same matrix unpacked (the dense encoding's, which still unpacks)
    dense = refusal(dense_inbox, {**terms, "hess": H}, UpdateSpec("terms", D, True, "full"), 1)
    assert packed == dense


@pytest.mark.parametrize("name", DAMAGE)
def test_a_packed_float32_triangle_is_refused_for_the_same_damage(name):
    damage, message = DAMAGE[name]
    inbox, _, _, _, terms = honest("triangle32")
    H = unpack_upper(terms["hess"]["upper"].astype(np.float64), D + 1)
    damage(H, inbox.limits["h"])
    sent = {
        **terms,
        "hess": {
            "upper": pack_upper(H, "triangle")["upper"].astype(np.float32),
            "encoding": "triangle32",
        },
    }
    with pytest.raises(MessageError, match=re.escape(f"whose terms.hess {message};")):
        check(inbox, sent, UpdateSpec("terms", D, True, "triangle32"), 1)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("encoding", ["triangle", "triangle32"])
def test_a_non_finite_number_in_a_triangle_is_named_as_before(encoding, value):
    inbox, _, _, _, terms = honest(encoding)
    upper = terms["hess"]["upper"].copy()
    upper[[3, 7]] = value
    sent = {**terms, "hess": {**terms["hess"], "upper": upper}}
    with pytest.raises(
        MessageError, match=r"whose terms.hess.upper holds 2 non-finite value\(s\);"
    ):
        check(inbox, sent, UpdateSpec("terms", D, True, encoding), 1)


def test_a_triangle_of_the_wrong_size_is_named_as_before():
    inbox, _, _, _, terms = honest("triangle")
    sent = {**terms, "hess": {**terms["hess"], "upper": terms["hess"]["upper"][:-1]}}
    with pytest.raises(
        MessageError, match=r"terms.hess.upper has shape \(20,\) instead of \(21,\)"
    ):
        check(inbox, sent, UpdateSpec("terms", D, True, "triangle"), 1)


@pytest.mark.parametrize(("entry", "count"), [(0, 1), (4, 2)])  # a diagonal, an off-diagonal
def test_a_residual_beyond_its_bound_is_refused_as_before(entry, count):
    inbox, X, y, theta, terms = honest("triangle32")
    check(inbox, terms, UpdateSpec("terms", D, True, "triangle32"), 1)
    residual = local_terms(X, y, theta, fit_intercept=True, hessian="residual32")
    upper = residual["hess"]["upper"].copy()
    upper[entry] = 1e-3 * float(inbox.limits["h"].curv_max.max())
    sent = {**residual, "hess": {**residual["hess"], "upper": upper}}
    with pytest.raises(MessageError, match=rf"holds {count} value\(s\) beyond 2\^-24 H"):
        check(inbox, sent, UpdateSpec("terms", D, True, "residual32"), 2)
    check(inbox, residual, UpdateSpec("terms", D, True, "residual32"), 2)  # the honest one


# ------------------------------------------------------------------ the same results
def same(a, b) -> bool:
    """Whether two results hold the same numbers, bit for bit (NaN equal to NaN)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[key], b[key]) for key in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.tobytes() == b.tobytes()
    return type(a) is type(b) and a == b


def test_the_covariance_s_lists_share_their_mirrored_numbers():
    rng = np.random.default_rng(11)
    cov = rng.normal(size=(40, 40))
    cov = 0.5 * (cov + cov.T)
    cov[5, :] = cov[:, 5] = np.nan  # an aliased term's row and column
    lists = _symmetric_lists(cov)
    assert same(lists, cov.tolist())
    assert lists[7][2] is lists[2][7]
    assert pickle.dumps(lists) == pickle.dumps(cov.tolist())  # floats are not memoized
    cov[0, 1] += 1e-12  # not exactly symmetric: listed as it is
    assert same(_symmetric_lists(cov), cov.tolist())


def pooled_fit(keep_packed: bool, *, C: float, fit_intercept: bool, seed: int = 5):
    """Return a federated Newton fit of 3 hospitals sending triangles, and its GLM summary."""
    rng = np.random.default_rng(seed)
    d = 12
    beta = rng.normal(size=d) * 0.5
    sites = []
    for _ in range(3):
        X = rng.normal(size=(80, d)) + rng.normal(size=d)
        X[:, 1] = X[:, 0] + 0.3 * X[:, 1]  # correlated columns
        y = (rng.random(80) < 1 / (1 + np.exp(-(X @ beta - 0.5)))).astype(int)
        sites.append((X, y))
    p = d + fit_intercept
    solver = FederatedSolver(p, fit_intercept=fit_intercept, C=C, method="newton", max_rounds=50)
    theta, info0 = solver.initial_theta(), None
    while True:
        terms = [
            local_terms(X, y, theta, fit_intercept=fit_intercept, hessian="triangle")
            for X, y in sites
        ]
        total = aggregate_terms(terms, keep_packed=keep_packed)
        info0 = total["hess"] if info0 is None else info0
        step = solver.update(theta, total["loss"], total["grad"], total["hess"])
        if step.done:
            break
        theta = step.next_theta
    summary = glm_summary(
        step.best_theta,
        solver.hess_loglik,
        feature_names=[f"g{j}" for j in range(d)],
        fit_intercept=fit_intercept,
        n=240,
        deviance=2 * step.best_loss,
        C=C,
        penalty="l2",
        design_info=info0,
    )
    return step, summary


@pytest.mark.parametrize(("C", "fit_intercept"), [(1.0, True), (1.0, False), (np.inf, True)])
def test_the_packed_path_gives_the_unpacked_path_s_fit_and_statistics_bit_for_bit(C, fit_intercept):
    step, summary = pooled_fit(True, C=C, fit_intercept=fit_intercept)
    before_step, before = pooled_fit(False, C=C, fit_intercept=fit_intercept)
    assert step.converged
    assert step.round == before_step.round
    np.testing.assert_array_equal(step.best_theta, before_step.best_theta)
    assert same(summary, before)  # every number, NaN included
    assert summary["wald"]
    assert np.all(np.isfinite(summary["std_err"]))


@pytest.mark.parametrize("p", [362, 363, 500])  # either side of the one-solve threshold
def test_the_newton_direction_in_place_is_the_direction_of_a_copy(p):
    rng = np.random.default_rng(p)
    H = symmetric(p, p) + np.diag(rng.random(p))
    g = rng.normal(size=p)
    expected = newton_direction(g, H.copy())
    np.testing.assert_array_equal(newton_direction(g, H, overwrite=True), expected)


def test_a_kept_sum_is_the_packed_one_itself_or_a_dense_copy():
    rng = np.random.default_rng(9)
    packed = PackedSymmetric(rng.normal(size=6), 3)
    assert kept(packed) is packed  # read-only: kept by reference
    dense = rng.normal(size=(3, 3))
    copy = kept(dense)
    assert copy is not dense
    assert copy.dtype == np.float64
    np.testing.assert_array_equal(copy, dense)
    assert kept(dense.astype(np.float32)).dtype == np.float64
