r"""The checks of the exact strategy's messages, and the certificate of its final estimate.

:mod:`pancreas_fl.wire` checks every message's envelope and FedAvg's updates; the exact
strategy's updates and broadcasts are checked here (:func:`check_update`,
:func:`check_broadcast`), and its converged estimate certified by the hospitals' own gradient
sums (:func:`certify`). Imported only with ``strategy="exact"``.

The bounds that follow from the mathematics, numbered as in :mod:`pancreas_fl.wire` (whose
notation and slack :math:`\rho` they use):

2. **Curvature at zero.** At :math:`\theta = 0`, :math:`v_i = \sigma(0)^2 = 1/4` within
   :math:`4\epsilon`, so the first model round (the solver's start point, always zeros)
   gives the column energies :math:`E_j = \sum_i \tilde x_{ij}^2 \le 4 H^{(0)}_{jj}
   (1 + \rho)` (full Hessian) or :math:`4\,sxx^{(0)}_j (1 + \rho)` (L-BFGS moments); the
   intercept's column has :math:`E = n`, and :math:`s^{(0)}` and :math:`H^{(0)}_{pp}`
   equal :math:`n/4` within :math:`\rho`. These are aggregates the aggregator already
   receives: no new field crosses.
3. **Curvature everywhere.** :math:`v_i = \sigma_i (1 - \sigma_i) \in [0, 1/4]`, computed as
   :math:`\hat\sigma(z)\hat\sigma(-z) \le 1/4 (1 + 8\epsilon)`. Hence at every point
   :math:`0 \le H_{jj} \le E_j / 4\,(1 + \rho)`, :math:`0 \le s \le n/4\,(1 + \rho)`,
   :math:`0 \le sxx_j \le E_j / 4\,(1+\rho)` (sums of non-negative products are
   non-negative exactly); the Hessian is symmetric, :math:`|H_{jk} - H_{kj}| \le \rho
   \sqrt{H_{jj} H_{kk}}` (both are sums of the same computed products
   :math:`\hat v_i \tilde x_{ij} \tilde x_{ik}`, rounded differently), and positive
   semi-definite, so :math:`|H_{jk}| \le \sqrt{H_{jj} H_{kk}}\,(1 + \rho)` and
   :math:`|sx_j| \le \sqrt{s \cdot sxx_j}\,(1 + \rho)` (Cauchy-Schwarz with weights
   :math:`v_i`).
4. **Gradient.** :math:`g_j = \sum_i (\sigma_i - y_i)\tilde x_{ij}` with
   :math:`|\hat\sigma_i - y_i| \le 1` exactly, so :math:`|g_j| \le \sum_i |\tilde x_{ij}|
   (1 + \rho) \le \sqrt{n E_j}\,(1 + \rho)` (Cauchy-Schwarz); at :math:`\theta = 0`,
   :math:`|\sigma - y| = 1/2` and the bound halves.
7. **Standardization.** Round 0's moments: :math:`M_2 \ge 0` and
   :math:`|\bar x_j| \le` ``MAX_ABS_VALUE`` (the reader refuses larger values). The first
   model round evaluates zero on the standardized features, so its curvature gives each
   hospital's :math:`\sum_i u_{ij}^2`, which its moments predict exactly:
   :math:`(M_{2,j} + n (\bar x_j - \mu_j)^2) / s_j^2`. Both sides are computed with
   rounding: the hospital's standardized values are each within :math:`2\epsilon` (the
   difference of two floats is rounded once), its two-pass :math:`M_2` is exact for its
   computed mean :math:`\hat{\bar x}` up to :math:`\rho` and misses
   :math:`n (\hat{\bar x} - \bar x)^2`, with :math:`|\hat{\bar x} - \bar x| \le \delta
   = 4 (n + 2)\epsilon (|\hat{\bar x}| + \sqrt{M_2})`; so the two agree within
   :math:`[\rho (M_2 + n g^2) + 3 n \delta^2 + 2 n \delta |g|] / s^2` plus :math:`\rho`
   of either side (:math:`g = \hat{\bar x} - \mu`). A damaged mean or :math:`M_2` of one
   hospital moves the pooled scaler for all, but only its own prediction disagrees.
8. **Firth's sums.** The third-moment sum's entries
   :math:`\sum_i \pi_i(1-\pi_i)(\frac12-\pi_i)\tilde x_{ij}\tilde x_{ik}\tilde x_{il}`
   are at most :math:`\sqrt{E_j E_k E_l}/8`: the weight is at most :math:`1/8`, a single
   :math:`|\tilde x_{il}|` at most :math:`\sqrt{E_l}`, and
   :math:`\sum_i |\tilde x_{ij}\tilde x_{ik}| \le \sqrt{E_j E_k}`.
9. **The Gram triangle** (Böhning's bound, :mod:`~pancreas_fl.exact.bohning`): its diagonal
   is the column energies, :math:`G_{jj} = E_j`, which the moments at zero predict
   (:math:`4\,sxx^{(0)}_j`, the intercept's :math:`n`): both sums are within :math:`\rho` of
   :math:`E_j`, the float32 entry within :math:`2^{-24}`, checked within :math:`3\rho`
   (:math:`\rho` with float32's :math:`2^{-23}` added); and
   :math:`|G_{jk}| \le \sqrt{E_j E_k}` (Cauchy-Schwarz).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from pancreas_fl.columns import MAX_ABS_VALUE
from pancreas_fl.exact.bohning import triangle_offset
from pancreas_fl.exact.curvature import plan_curvature
from pancreas_fl.exact.packed import count_beyond, count_nonfinite, triangle_diagonal
from pancreas_fl.exact.reuse import reuses_curvature
from pancreas_fl.wire import (
    EPS,
    TINY,
    AggregatorInbox,
    Damage,
    HospitalInbox,
    UpdateSpec,
    as_array,
    as_dict,
    as_float,
    as_int,
    at_most,
    slack,
    type_name,
)

__all__ = ["Limits", "certify", "check_broadcast", "check_update"]


# ------------------------------------------------------------------- hospital -> aggregator
def check_update(
    inbox: AggregatorInbox, node: str, update: Any, spec: UpdateSpec, n: int, n_pos: int
) -> None:
    """Check an exact update: moments, the sums with their bounds, or Firth's hat sum alone.

    Keeps the hospital's round-0 moments and, from its first model round, its bounds
    (``inbox.moments``, ``inbox.limits``).

    Runs under :meth:`AggregatorInbox.check_updates`, whose ``np.errstate`` keeps the
    overflows of damaged values silent (they fail the bounds).

    Raises
    ------
    Damage
        The field and what is wrong (the inbox names the hospital and the round).
    """
    keys = ("terms", "moments", "n_extreme", "firth")
    update = as_dict(update, None, keys if spec.gram is None else (*keys, "gram"))
    p = spec.n_features + spec.fit_intercept
    if spec.kind == "hat":
        for key in ("terms", "moments", "n_extreme"):
            if update[key] is not None:
                raise Damage(key, f"is a {type_name(update[key])}, not None")
        as_array(update["firth"], "firth", (p,))
        return
    if not spec.firth_third and update["firth"] is not None:
        raise Damage("firth", f"is a {type_name(update['firth'])}, not None")
    if spec.kind == "moments":
        for key in ("terms", "n_extreme"):
            if update[key] is not None:
                raise Damage(key, f"is a {type_name(update[key])}, not None")
        moments = as_dict(update["moments"], "moments", ("n", "mean", "m2"))
        as_int(moments["n"], "moments.n", n, n)
        mean = as_array(moments["mean"], "moments.mean", (spec.n_features,))
        m2 = as_array(moments["m2"], "moments.m2", (spec.n_features,))
        if (m2 < 0).any():
            raise Damage("moments.m2", "holds negative sums of squares")
        # the reader refuses |x| > MAX_ABS_VALUE, so a mean is at most that
        if not (np.abs(mean) <= MAX_ABS_VALUE * (1 + slack(n))).all():
            raise Damage("moments.mean", f"holds values beyond {MAX_ABS_VALUE:g} in size")
        inbox.moments[node] = (mean, m2)
        return
    if update["moments"] is not None:
        raise Damage("moments", f"is a {type_name(update['moments'])}, not None")
    as_int(update["n_extreme"], "n_extreme", 0, n)
    limits = _terms(update["terms"], spec, n, n_pos, inbox.limits.get(node))
    if spec.firth_third:
        _third_moments(update["firth"], limits, n)
    if spec.gram is not None:
        _gram_rows(update["gram"], spec.gram, limits, n)
    if spec.at_zero and node not in inbox.limits:
        if spec.scaler is not None and node in inbox.moments:
            _agrees_with_moments(
                limits, n, *inbox.moments[node], spec.scaler, _rounding(spec.curvature)
            )
        inbox.limits[node] = limits


class Limits(NamedTuple):
    """A hospital's bounds from its first model round (computed once, used every round)."""

    energy: np.ndarray
    """Upper bounds of the column energies :math:`E_j` (bound 2.)."""
    under: np.ndarray
    """Per column, the absolute slack for underflow (entry ``(j, k)``: ``under_j + under_k``)."""
    curv_max: np.ndarray
    """:math:`E_j / 4 (1 + \\rho)` plus ``under``: the curvature's diagonal at most."""
    grad_max: np.ndarray
    """:math:`\\sqrt{n E_j} (1 + \\rho)` plus ``under``: the gradient at most."""


def _limits(curv: np.ndarray, n: int, fit_intercept: bool, rounding: float = 0.0) -> Limits:
    rho = slack(n) + rounding
    energy = 4.0 * curv * (1 + rho)
    if fit_intercept:
        energy[-1] = n
    # underflow: each product v_i x_ij (subnormal at worst) is off by at most half the
    # smallest subnormal, and multiplied by x_ik that is at most sum_i |x_ik| <= sqrt(n E_k)
    root = np.sqrt(n * energy)
    under = 2 * TINY * (root + n + 2)
    return Limits(
        energy,
        under,
        energy / 4 * (1 + rho) + under,
        root * (1 + rho) + under,
    )


def _agrees_with_moments(
    limits: Limits, n: int, mean, m2, scaler: dict, rounding: float = 0.0
) -> None:
    r"""Check the first model round's curvature at zero against the round-0 moments.

    With the pooled scaler :math:`(\mu, s)`, the hospital's standardized column energies are
    :math:`\sum_i ((x_{ij} - \mu_j)/s_j)^2 = (M_{2,j} + n (\bar x_j - \mu_j)^2) / s_j^2`
    (bound 7. of the module docstring): its curvature at zero must show them, within the
    rounding of both sides.
    """
    d = mean.shape[0]
    mu, scale = scaler["mean"], scaler["scale"]
    rho = slack(n) + rounding
    gap = mean - mu
    predicted = (m2 + n * gap * gap) / (scale * scale)
    delta = 4 * (n + 2) * EPS * (np.abs(mean) + np.sqrt(m2))  # the mean's error, at most
    error = (rho * (m2 + n * gap * gap) + 3 * n * delta * delta + 2 * n * delta * np.abs(gap)) / (
        scale * scale
    )
    measured = limits.energy[:d] / (1 + rho)  # 4 curv0, the energies as the hospital sees
    slack_j = error + rho * (predicted + measured) + limits.under[:d]
    off = int(np.count_nonzero(~(np.abs(measured - predicted) <= slack_j)))
    if off:
        raise Damage(
            "terms.hess",
            f"disagrees in {off} column(s) with the feature moments this hospital sent in round 0",
        )


def _gram_rows(gram: Any, rows: tuple[int, int], limits: Limits | None, n: int) -> None:
    r"""Check rows ``rows`` of a hospital's Gram triangle (bound 9. of the module docstring).

    Its diagonal must be the column energies the moments at zero gave, within :math:`3\rho`
    (float32's rounding included); every entry at most :math:`\sqrt{E_j E_k}`.
    """
    if limits is None:
        raise Damage("gram", "arrived before any curvature was sent")
    if not isinstance(gram, np.ndarray) or gram.dtype not in (np.float32, np.float64):
        raise Damage("gram", f"is a {type_name(gram)}, not a float32 array")
    p = limits.energy.shape[0]
    start, stop = rows
    size = triangle_offset(stop, p) - triangle_offset(start, p)
    values = as_array(gram.astype(np.float64), "gram", (size,))
    rho = slack(n) + (_FLOAT32_SLACK if gram.dtype == np.float32 else 0.0)
    root = np.sqrt(limits.energy)
    diag = np.empty(stop - start)
    over = at = 0
    for i in range(start, stop):
        row = values[at : at + p - i]
        bound = root[i] * root[i:] * (1 + rho) ** 2 + limits.under[i] + limits.under[i:]
        over += int(np.count_nonzero(~(np.abs(row) <= bound)))
        diag[i - start] = row[0]
        at += p - i
    if over:
        raise Damage("gram", f"holds {over} value(s) beyond sqrt(E_j E_k)")
    energy, under = limits.energy[start:stop], limits.under[start:stop]
    off = ~(np.abs(diag - energy / (1 + slack(n))) <= 3 * rho * energy + under)
    if off.any():
        raise Damage(
            "gram",
            f"has {int(np.count_nonzero(off))} diagonal value(s) that are not the column's "
            "sum of squares its moments at zero gave",
        )


def _third_moments(third: Any, limits: Limits, n: int) -> None:
    r"""Check Firth's third-moment sum :math:`\sum_i w_i (\frac12 - \pi_i) x_{ij} x_{ik} x_{il}`.

    :math:`|w_i (\frac12 - \pi_i)| \le 1/8`, :math:`\max_i |x_{il}| \le \sqrt{E_l}` and
    :math:`\sum_i |x_{ij} x_{ik}| \le \sqrt{E_j E_k}` (Cauchy-Schwarz), so every entry is at
    most :math:`\sqrt{E_j E_k E_l} / 8` (bound 8. of the module docstring).
    """
    p = limits.energy.shape[0]
    T = as_array(third, "firth", (p, p, p))
    root = np.sqrt(limits.energy)
    bound = root[:, None, None] * root[None, :, None] * root[None, None, :] / 8
    # underflow of a partial product, times the factors still to come
    under = 2 * TINY * (n + 2) * (1 + root[None, None, :])
    at_most(T, bound * (1 + slack(n)) + under, "firth", "sqrt(E_j E_k E_l)/8")


#: The packed triangles' encodings (``exact.curvature``): checked as the matrix they carry.
_PACKED = ("triangle", "triangle32")
#: Relative rounding of a float32 triangle's entries, added to the bounds' slack.
_FLOAT32_SLACK = 2.0**-23


def _rounding(curvature: str | None) -> float:
    """Return the relative rounding of the curvature's entries, added to the bounds' slack."""
    return _FLOAT32_SLACK if curvature == "triangle32" else 0.0


def _packed(hess: Any, encoding: str, p: int) -> np.ndarray:
    """Return a packed triangle's numbers, as sent (checked: keys, dtype, size, finite).

    The bounds are then checked on the triangle in segments (``exact.packed``): the same
    numbers and counts as on the matrix it carries, without unpacking it.
    """
    packed = as_dict(hess, "terms.hess", ("upper", "encoding"))
    # where float32 would lose the matrix, a hospital sends its float64 triangle instead
    allowed = (encoding, "triangle") if encoding == "triangle32" else (encoding,)
    if packed["encoding"] not in allowed:
        raise Damage("terms.hess.encoding", f"is not the {encoding!r} asked for")
    dtype = np.float64 if packed["encoding"] == "triangle" else np.float32
    upper = packed["upper"]
    if not isinstance(upper, np.ndarray) or upper.dtype != dtype:
        raise Damage("terms.hess.upper", f"is not a {np.dtype(dtype).name} array")
    shape = (p * (p + 1) // 2,)
    if upper.shape != shape:
        raise Damage("terms.hess.upper", f"has shape {upper.shape} instead of {shape}")
    nonfinite = count_nonfinite(upper, p)
    if nonfinite:
        raise Damage("terms.hess.upper", f"holds {nonfinite} non-finite value(s)")
    return upper


def _residual(hess: Any, limits: Limits | None, p: int, tiny: float) -> None:
    """Check the statistics round's float32 residual: below 2^-24 of the matrix's bounds."""
    if limits is None:
        raise Damage("terms.hess", "is a residual before any curvature was sent")
    R = _packed(hess, "residual32", p)
    root = np.sqrt(limits.curv_max)
    over = count_beyond(R, p, root, 2.0**-24, limits.under, tiny)  # 2^-24 r_j r_k + a_jk + tiny
    if over:
        raise Damage("terms.hess", f"holds {over} value(s) beyond 2^-24 H")


def _terms(terms: Any, spec: UpdateSpec, n: int, n_pos: int, limits: Limits | None):
    """Check exact's sums (bounds 1-5 of the module docstring); return the hospital's limits."""
    terms = as_dict(terms, "terms", ("n", "n_pos", "loss", "grad", "hess"))
    as_int(terms["n"], "terms.n", n, n)
    as_int(terms["n_pos"], "terms.n_pos", n_pos, n_pos)
    d, p = spec.n_features, spec.n_features + spec.fit_intercept
    loss = as_float(terms["loss"], "terms.loss")
    grad = as_array(terms["grad"], "terms.grad", (p,))
    rho, tiny = slack(n), 4 * (n + 2) * TINY
    if loss < 0:
        raise Damage("terms.loss", "is negative (a log-loss sum is >= 0)")
    if spec.at_zero and abs(loss - n * math.log(2)) > rho * n * math.log(2):
        raise Damage("terms.loss", "is not n log 2 at the zero point it was computed at")
    hess = terms["hess"]
    under = tiny if limits is None else limits.under
    if spec.curvature == "none":  # the gradient alone (Böhning's bound; kept Hessian)
        if hess is not None:
            raise Damage("terms.hess", f"is a {type_name(hess)}, not None")
        if limits is None:
            raise Damage("terms.hess", "is None before any curvature was sent")
        at_most(grad, limits.grad_max, "terms.grad", "sum(|x|) of its column")
        return limits
    if spec.curvature == "residual32":
        _residual(hess, limits, p, tiny)
        return limits
    rounding = _rounding(spec.curvature)
    rho += rounding
    if spec.curvature in _PACKED:  # symmetric by construction; checked as it came
        upper = _packed(hess, spec.curvature, p)
        curv = triangle_diagonal(upper, p)
        if (curv < 0).any():
            raise Damage("terms.hess", "has a negative diagonal (curvature is >= 0)")
        root = np.sqrt(curv + under)  # the roots' product: no underflow of H_jj H_kk
        apart = 2 * tiny if limits is None else limits.under
        over = count_beyond(upper, p, root, 1 + rho, apart)  # r_j r_k (1 + rho) + a_jk
        if over:
            raise Damage("terms.hess", f"holds {over} value(s) beyond sqrt(H_jj H_kk)")
    elif spec.curvature == "full":
        H = as_array(hess, "terms.hess", (p, p))
        curv = H.diagonal()
        if (curv < 0).any():
            raise Damage("terms.hess", "has a negative diagonal (curvature is >= 0)")
        root = np.sqrt(curv + under)  # the roots' product: no underflow of H_jj H_kk
        root = root[:, None] * root
        apart = 2 * tiny if limits is None else limits.under[:, None] + limits.under[None, :]
        at_most(H - H.T, rho * root + 2 * apart, "terms.hess", "symmetry")
        at_most(H, root * (1 + rho) + apart, "terms.hess", "sqrt(H_jj H_kk)")
    else:
        moments = as_dict(hess, "terms.hess", ("s", "sx", "sxx"))
        s = as_float(moments["s"], "terms.hess.s")
        sx = as_array(moments["sx"], "terms.hess.sx", (d,))
        sxx = as_array(moments["sxx"], "terms.hess.sxx", (d,))
        if s < 0 or (sxx < 0).any():
            raise Damage("terms.hess", "holds a negative curvature sum")
        if not s <= n / 4 * (1 + rho) + tiny:
            raise Damage("terms.hess.s", "is larger than n/4")
        tail = under if limits is None else under[:d]
        root = math.sqrt(s + tiny) * np.sqrt(sxx + tail)
        at_most(sx, root * (1 + rho) + tail, "terms.hess.sx", "sqrt(s sxx)")
        curv = np.append(sxx, s) if spec.fit_intercept else sxx
    if spec.fit_intercept:
        if not curv[-1] <= n / 4 * (1 + rho) + tiny:
            raise Damage("terms.hess", "is larger than n/4 for the intercept")
        if spec.at_zero and curv[-1] < n / 4 * (1 - rho):
            raise Damage("terms.hess", "is not n/4 for the intercept at the zero point")
    if limits is None:
        limits = _limits(curv, n, spec.fit_intercept, rounding)
    else:
        at_most(curv, limits.curv_max * (1 + rounding), "terms.hess", "sum(x^2)/4")
    bound = limits.grad_max * 0.5 if spec.at_zero else limits.grad_max
    at_most(grad, bound, "terms.grad", "sum(|x|) of its column")
    return limits


# ------------------------------------------------------------------- aggregator -> hospital
def check_broadcast(inbox: HospitalInbox, broadcast: Any, d: int) -> None:
    """Check an exact broadcast at a hospital: the point, the curvature asked for, the scaler.

    Raises
    ------
    Damage
        The field and what is wrong (the inbox names the aggregator and the round).
    """
    keys = ("next_theta", "curvature", "scaler", "firth")
    gram = isinstance(broadcast, dict) and "gram" in broadcast  # Böhning's rows, if any
    b = as_dict(broadcast, None, (*keys, "gram") if gram else keys)
    p = d + inbox.fit_intercept
    as_array(b["next_theta"], "next_theta", (p,))
    if not inbox.firth and b["firth"] is not None:
        raise Damage("firth", f"is a {type_name(b['firth'])}, not None")
    if inbox.plan is None:
        message_mb, memory_mb = inbox.budgets
        inbox.plan = plan_curvature(
            p,
            inbox.solver,
            max_message_mb=message_mb,
            max_memory_mb=memory_mb,
            float32=not inbox.firth,
        )
        inbox.curvatures = _curvatures(inbox, inbox.plan, p)
    plan = inbox.plan
    if not isinstance(b["curvature"], str) or b["curvature"] not in inbox.curvatures:
        raise Damage("curvature", f"is not the solver's {plan.encoding!r}")
    if gram:
        _gram_request(b["gram"], plan.gram_rows)
    scaler = b["scaler"]
    if not inbox.standardize:
        if scaler is not None:
            raise Damage("scaler", f"is a {type_name(scaler)}, not None")
        return
    scaler = as_dict(scaler, "scaler", ("mean", "scale"))
    as_array(scaler["mean"], "scaler.mean", (d,))
    scale = as_array(scaler["scale"], "scaler.scale", (d,))
    if (scale <= 0).any():
        raise Damage("scaler.scale", "holds values that are not > 0")
    if inbox.scaler is None:
        inbox.scaler = {key: value.copy() for key, value in scaler.items()}
    elif not all(np.array_equal(scaler[key], inbox.scaler[key]) for key in scaler):
        raise Damage("scaler", "differs from the one agreed in the first model round")


def _curvatures(inbox: HospitalInbox, plan, p: int) -> frozenset:
    """Return the curvatures a broadcast may ask for under ``plan`` (fixed for the analysis)."""
    allowed = {plan.encoding}
    if plan.statistics_round and inbox.output == "model":  # the statistics round
        allowed.add("residual32")
    if plan.gram_rows:  # Böhning's bound: the moments with the first rows, then none
        allowed = {"diag", "none"}
    if reuses_curvature(p, plan.encoding, inbox.reuse, firth=inbox.firth):
        allowed.add("none")  # a round on the kept Hessian (exact/reuse.py): the gradient alone
    return frozenset(allowed)


def _gram_request(rows: Any, chunks: tuple) -> None:
    """Check the Gram rows a broadcast asks for: one of the plan's chunks."""
    if not chunks:
        raise Damage("gram", "asks for a Gram matrix the plan does not share")
    if not isinstance(rows, (tuple, list)) or len(rows) != 2:
        raise Damage("gram", f"is a {type_name(rows)}, not a pair of row numbers")
    start = as_int(rows[0], "gram[0]")
    stop = as_int(rows[1], "gram[1]")
    if (start, stop) not in chunks:
        raise Damage("gram", "asks for rows that are none of the plan's chunks")


# ------------------------------------------------------------------------ the final estimate
def certify(
    grad: np.ndarray,
    theta: np.ndarray,
    *,
    C: float,
    trace0: float,
    n_penalized: int,
    tol: float,
    n_total: int,
) -> bool:
    r"""Whether the pooled gradient at the final estimate certifies the solver's convergence.

    The solver stops when its next step is below :math:`\mathrm{tol} \lVert\theta\rVert`
    (Newton: :math:`d = -(\nabla^2 F)^{-1} \nabla F`; L-BFGS: also
    :math:`\lVert M^{-1} \nabla F \rVert \le \mathrm{tol} \lVert\theta\rVert / 100`), with
    a curvature the hospitals sent: a damaged, too large curvature would make any point look
    converged. The certificate uses no curvature of the last rounds. For a symmetric positive
    semi-definite :math:`A` and :math:`A d = -\nabla F`,
    :math:`\lVert \nabla F \rVert \le \lambda_{\max}(A) \lVert d \rVert \le
    \operatorname{tr}(A) \lVert d \rVert`, and every matrix the solver can use has
    :math:`\operatorname{tr}(A) \le \Lambda = 2 (C\, T_0 + \#\text{penalized})`, with
    :math:`T_0` the pooled curvature's trace at zero, an upper bound of its trace anywhere
    (bound 3. of the module docstring: :math:`v_i \le 1/4`). The factor 2 covers the
    L-BFGS preconditioner's centring (:math:`\operatorname{tr} M = \sum_j (C c_j + 1) + C s
    (1 + \lVert m\rVert^2)` with :math:`c_j + s m_j^2 = sxx_j` and :math:`s m_j^2 \le
    sxx_j`, and its floors, which raise no entry above the largest; Böhning's bound
    :math:`C \tilde X^\top \tilde X / 4 + P` has :math:`\operatorname{tr} = C\, T_0 +
    \#\text{penalized}` up to float32's rounding), Newton's ridge (at most 0.1 of the
    diagonal) and the solve's backward error. An honest converged fit therefore has
    :math:`\lVert \nabla F \rVert \le \Lambda\, \mathrm{tol} \lVert \theta \rVert`, up
    to the rounding of the gradient sums (:math:`\gamma_n \sqrt{4 n T_0}` in norm, times
    :math:`C`) and the solver's zero-gradient threshold (every entry below the smallest
    normal float).

    Parameters
    ----------
    grad : numpy.ndarray of shape (p,)
        :math:`\nabla F` at ``theta``: ``C`` (1 without a penalty) times the hospitals'
        summed gradient, plus the penalty's.
    theta : numpy.ndarray of shape (p,)
        The final estimate (the solver's best point, which the hospitals evaluated).
    C : float
        The factor of the loss sum in :math:`F` (1 without a penalty).
    trace0 : float
        The pooled curvature's trace at zero (Newton: :math:`\operatorname{tr} H^{(0)}`;
        L-BFGS: :math:`s^{(0)} + \sum_j sxx^{(0)}_j`).
    n_penalized : int
        Penalized coefficients (0 without a penalty).
    tol : float
    n_total : int
        Patients over all hospitals.
    """
    rho = slack(n_total)
    with np.errstate(all="ignore"):
        bound = 2.0 * (C * trace0 + n_penalized) * (1 + rho) ** 3
        rounding = C * 2.0 * rho * math.sqrt(n_total * trace0)
        allowed = (
            bound * tol * float(np.linalg.norm(theta))
            + rounding
            + math.sqrt(theta.size) * float(np.finfo(np.float64).tiny)
        ) * (1 + rho)
        return bool(float(np.linalg.norm(grad)) <= allowed)
