r"""The schema of every message between the nodes, and its check where it is received.

:mod:`pancreas_fl.messages` says what crosses; this module checks that what arrived is that,
before anything uses it. The aggregator checks every hospital's message before it sorts or
combines them (:class:`AggregatorInbox`), every hospital checks the aggregator's broadcast
before it uses it (:class:`HospitalInbox`), and the aggregator checks its final result before
it submits it (:func:`check_final_result`, :func:`certify`). A message that fails stops the
analysis with one :class:`~pancreas_fl.errors.MessageError` line naming the sender, the round,
the field and what is wrong, for example::

    hospital 'node1' sent a round-3 update whose terms.grad holds 8 non-finite values; its
    data or installation is faulty. The analysis is stopped; no result is written.

No value a message holds is ever shown: types, shapes, counts and key names only.

The schema, per message kind (``k`` is the SDK's round, ``d`` the number of model features,
``p = d + fit_intercept``)::

    hospital -> aggregator (HospitalMessage): exactly node, round, intro, update, received
      node      str, a participant of the analysis, once per round, the same set every round
      round     int >= 0 (that it is the round being combined: OutOfStepError)
      received  None in round 0; then the digest of the broadcast the hospital computed
                from, equal to that of the broadcast the aggregator sent (:func:`digest`)
      intro     k = 0: exactly n, n_pos, n_dropped (int >= 0, n_pos <= n), columns (list of
                str), params (dict of the shared parameters), problems (list of Problem),
                levels (None or dict of str to list of str); else None
      update    None in a setup round or with problems; else, by strategy:
        FedAvg  exactly coef (1, d), intercept ((1,) with fit_intercept, else None), loss
        exact   exactly terms, moments, n_extreme, firth: moments (standardization round:
                n, mean (d,), m2 (d,)) or terms (n, n_pos, loss, grad (p,), hess: (p, p) for
                Newton, {s, sx (d,), sxx (d,)} for L-BFGS) with n_extreme, an int; firth
                None, or with penalty='firth' the (p, p, p) third-moment sum beside the
                terms, or the (p,) hat-weighted sum alone
    aggregator -> hospital
      setup     exactly levels: the categorical columns, each a list of distinct str holding
                every level this hospital sent
      FedAvg    the bare (1, d) array (output='coef'), or exactly coef (1, d), intercept
      exact     exactly next_theta (p,), curvature (the solver's: 'full' or 'diag'), scaler
                (None; with standardize exactly mean (d,), scale (d,) > 0, the same every
                round), firth (None; with penalty='firth' the request, checked by
                pancreas_fl.exact.firth.check_request)

Every array is a real ``float64`` ``numpy.ndarray`` of its agreed shape with every value
finite; every float a finite Python or ``float64`` float; every count an ``int`` (never a
``bool``). Counts equal those of round 0.

The bounds that follow from the mathematics
-------------------------------------------
Write :math:`\epsilon = 2^{-53}` for the unit round-off, :math:`n` for the hospital's
patients, :math:`\tilde x_i` for patient :math:`i`'s design row as the hospital computed it
(raw or standardized features, then 1 with an intercept) and :math:`\rho = 8 (n + 16)
\epsilon`: the relative slack every bound below carries. For any sum of :math:`n` floats
:math:`a_i` computed in any order, :math:`|\widehat{\sum} a_i - \sum a_i| \le \gamma_{n}
\sum |a_i|` with :math:`\gamma_n = n\epsilon / (1 - n\epsilon)` (Higham, *Accuracy and
Stability of Numerical Algorithms*, 2nd ed., eq. 4.4; FMA and blocked or pairwise
summation only lower it); a product of two floats adds one :math:`\epsilon`. Every
constant of :math:`\rho` is at least twice what the proofs need, and an absolute slack of
:math:`4 (n + 2)` times the smallest subnormal float covers underflow.

1. **Log-loss** :math:`\sum_i \log(1 + e^{z_i}) - y_i z_i \ge 0`, exactly, in floating
   point: ``logaddexp(0, z)`` is computed as :math:`\max(0, z) + \mathrm{log1p}(\cdot)`,
   at least :math:`\max(0, z)` after rounding (rounding is monotone), so every term is at
   least 0 and so is their sum. At :math:`\theta = 0` every term is :math:`\log 2` and the sum
   is :math:`n \log 2` within :math:`\rho`.
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
5. **Counts.** ``n`` and ``n_pos`` of every round equal the introduction's;
   :math:`0 \le` ``n_extreme`` :math:`\le n`; the moments' :math:`M_2 \ge 0` (a sum of
   squares).
6. **FedAvg coefficients.** A hospital's local fit is ``LogisticRegression`` 's L-BFGS-B
   (``max_iter=local_steps``), warm-started from the global model :math:`(w_0, b_0)`, on the
   objective :math:`f(w, b) = C \sum_i \ell_i(w, b) + \lVert w \rVert^2 / 2` (scikit-learn
   divides it by :math:`C n`, which changes no comparison). L-BFGS-B is a descent method:
   its line search accepts a step only with the sufficient decrease
   :math:`\hat f(x_+) \le \hat f(x) + c_1 t \nabla f^\top d` (:math:`\nabla f^\top d < 0`),
   and an iteration whose line search fails restores the previous iterate; so
   :math:`\hat f(w_1, b_1) \le \hat f(w_0, b_0)`. With :math:`\ell_i \ge 0` and the
   evaluation error of :math:`f` (relative :math:`\rho`),
   :math:`\lVert w_1 \rVert^2 \le (\lVert w_0 \rVert^2 + 2 C L_0)(1 + 10^{-6})`, where
   :math:`L_0` is the hospital's log-loss sum at the global model: the ``loss`` its update
   carries, itself checked (1. above; :math:`n \log 2` in the first round, where
   :math:`w_0 = 0`). The relative slack :math:`10^{-6}` exceeds :math:`\rho` for every
   :math:`n < 10^{9}`. Without a penalty (``C=inf``) there is no such bound.
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

Bounds looked for and not found are listed in the README ("Threat model"). A plausible but
wrong message (a gradient a little off, another hospital's coefficients) passes every check:
checks stop damage, not a hostile hospital that knows the protocol.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from pancreas_fl.columns import MAX_ABS_VALUE
from pancreas_fl.errors import MessageError
from pancreas_fl.params import SHARED_PARAMS

__all__ = [
    "AggregatorInbox",
    "HospitalInbox",
    "UpdateSpec",
    "certify",
    "check_final_result",
    "digest",
    "slack",
]

_EPS = float(np.finfo(np.float64).eps) / 2  # the unit round-off, 2**-53
_TINY = 5e-324  # the smallest subnormal float64
#: The relative slack of the FedAvg coefficient bound (6. in the module docstring).
_FEDAVG_SLACK = 1e-6

_INTRO_KEYS = ("n", "n_pos", "n_dropped", "columns", "params", "problems", "levels")
_PROBLEM_KEYS = ("problem", "hint", "file", "privacy")


def slack(n: int) -> float:
    r"""Return :math:`\rho = 8 (n + 16) \epsilon`, the relative slack of bounds on ``n`` terms."""
    return 8.0 * (n + 16) * _EPS


class _Damage(Exception):
    """A check failed: the field (dotted path) and what is wrong with it."""

    def __init__(self, field: str | None, what: str, faulty: str | None = None) -> None:
        super().__init__(field, what)
        self.field = field
        self.what = what
        self.faulty = faulty


def _message_error(sender: str, k: int, kind: str, damage: _Damage) -> MessageError:
    faulty = "its installation" if sender == "the aggregator" else "its data or installation"
    where = f"whose {damage.field} " if damage.field else "that "
    return MessageError(
        f"{sender} sent a round-{k} {kind} {where}{damage.what}; {damage.faulty or faulty} is "
        "faulty. The analysis is stopped; no result is written."
    )


# ------------------------------------------------------------------------- the digest
def digest(broadcast: Any) -> str:
    """Return the SHA-256 digest of a broadcast's content (its arrays' bytes, keys, numbers).

    Every hospital echoes the digest of the broadcast it computed from (``received``), and
    the aggregator compares it with the digest of what it sent: a broadcast altered on the
    way, even into one of the right form, is caught, naming the hospital that received it.
    A digest reveals nothing of the data.
    """
    h = hashlib.sha256()
    _feed(h, broadcast)
    return h.hexdigest()


def _feed(h, value: Any) -> None:
    if isinstance(value, dict):
        h.update(b"{")
        for key in sorted(value, key=repr):
            _feed(h, key)
            _feed(h, value[key])
        h.update(b"}")
    elif isinstance(value, (list, tuple)):
        h.update(b"[")
        for item in value:
            _feed(h, item)
        h.update(b"]")
    elif isinstance(value, np.ndarray) and value.dtype != object:
        h.update(f"array{value.dtype.str}{value.shape}".encode())
        h.update(np.ascontiguousarray(value).tobytes())
    else:
        h.update(f"{type(value).__name__}:{value!r}".encode())


# ------------------------------------------------------------------------- the checks
def _type_name(value: Any) -> str:
    return type(value).__name__


def _shown(name: Any) -> str:
    """Show a key name in a message (damaged keys can be anything: cut short)."""
    text = repr(name)
    return text if len(text) <= 40 else text[:37] + "..."


def _dict(value: Any, path: str, keys) -> dict:
    """``value`` is a dict with exactly ``keys``."""
    if not isinstance(value, dict):
        raise _Damage(path, f"is a {_type_name(value)} instead of a dict")
    missing = [key for key in keys if key not in value]
    if missing:
        raise _Damage(path, f"lacks the key(s) {', '.join(map(_shown, missing))}")
    extra = [key for key in value if key not in keys]
    if extra:
        raise _Damage(path, f"holds the unexpected key(s) {', '.join(map(_shown, extra[:3]))}")
    return value


def _int(value: Any, path: str, low: int = 0, high: int | None = None) -> int:
    """``value`` is an int (numpy's too, never a bool) in ``[low, high]``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise _Damage(path, f"is a {_type_name(value)} instead of an int")
    if value < 0:
        raise _Damage(path, "is negative")
    if low == high and value != low:
        raise _Damage(path, f"differs from the count of round 0 ({low})")
    if value < low:
        raise _Damage(path, f"is below {low}")
    if high is not None and value > high:
        raise _Damage(path, f"is larger than {high}")
    return int(value)


def _float(value: Any, path: str) -> float:
    """``value`` is a finite float64 (a Python float or a numpy float64 scalar)."""
    if not isinstance(value, (float, np.float64)):
        raise _Damage(path, f"is a {_type_name(value)} instead of a float")
    if not math.isfinite(value):
        raise _Damage(path, "is not finite")
    return float(value)


def _array(value: Any, path: str, shape: tuple[int, ...]) -> np.ndarray:
    """``value`` is a real float64 ndarray of ``shape`` with every value finite."""
    if not isinstance(value, np.ndarray):
        raise _Damage(path, f"is a {_type_name(value)} instead of a float64 array")
    if value.dtype != np.float64:
        kind = "complex" if value.dtype.kind == "c" else "of another type"
        raise _Damage(path, f"is {kind} ({value.dtype}) instead of real float64")
    if value.shape != shape:
        raise _Damage(path, f"has shape {value.shape} instead of {shape}")
    finite = np.isfinite(value)
    if not finite.all():
        raise _Damage(
            path, f"holds {value.size - int(np.count_nonzero(finite))} non-finite value(s)"
        )
    return value


def _strings(value: Any, path: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _Damage(path, f"is a {_type_name(value)} instead of a list of str")
    return value


def _at_most(value: np.ndarray, bound: np.ndarray, path: str, what: str) -> None:
    """Every ``|value|`` is at most ``bound``; else name how many exceed it and the bound."""
    within = np.abs(value) <= bound
    if not within.all():
        over = within.size - int(np.count_nonzero(within))
        raise _Damage(path, f"holds {over} value(s) beyond {what}")


# ------------------------------------------------------------------- hospital -> aggregator
@dataclass(frozen=True)
class UpdateSpec:
    """What the aggregator expects as this round's update (from its strategy's state).

    Attributes
    ----------
    kind : {'none', 'fedavg', 'moments', 'terms', 'hat'}
        No update (setup round), FedAvg's, exact's standardization round, exact's sums, or
        the hat-weighted Firth sum alone (the second of two Firth rounds).
    n_features : int
        ``d``, the model's features (after encoding).
    fit_intercept : bool
    curvature : {'full', 'triangle', 'triangle32', 'residual32', 'diag'} or None
        exact: what the hospitals were asked to return (the packed triangles of
        :mod:`pancreas_fl.exact.curvature` are checked as the matrix they carry; the
        statistics round's float32 residual against the bounds of that matrix).
    at_zero : bool
        exact: the point asked for is zeros (the solver's start point).
    C : float
        FedAvg: the inverse penalty (``inf``: no coefficient bound).
    start : numpy.ndarray or None
        FedAvg: the global coefficients the hospitals started from (``None``: zeros, the
        first model round).
    start_intercept : float or None
        FedAvg: the global intercept they started from.
    scaler : dict or None
        exact with ``standardize``: the pooled scaler (``mean``, ``scale``) broadcast.
    firth_third : bool
        exact with ``penalty='firth'``: the sums come with the ``(p, p, p)`` third-moment sum.
    """

    kind: str
    n_features: int = 0
    fit_intercept: bool = False
    curvature: str | None = None
    at_zero: bool = False
    C: float = math.inf
    start: np.ndarray | None = None
    start_intercept: float | None = None
    scaler: dict | None = None
    firth_third: bool = False


@dataclass
class AggregatorInbox:
    r"""The aggregator's checks of the hospitals' messages, and what it keeps from round 0.

    Parameters
    ----------
    participants : collection of str
        The node ids of the hospitals (``partner_node_ids``); empty when unknown (a test
        harness), then any distinct ids are accepted in round 0.

    Attributes
    ----------
    nodes : tuple of str or None
        The hospitals of round 0, in the order of their ids.
    counts : dict of str to (int, int)
        ``(n, n_pos)`` per hospital, from the introductions.
    broadcast : str or None
        The digest of the last broadcast (:func:`digest`).
    sum_abs : dict of str to numpy.ndarray
        FedAvg: :math:`\sum_i |x_{ij}|` per feature and hospital (its first model round).
    moments : dict of str to (numpy.ndarray, numpy.ndarray)
        exact with ``standardize``: each hospital's ``(mean, m2)`` of round 0.
    limits : dict of str to _Limits
        exact: per hospital, the upper bounds of :math:`\sum_i \tilde x_{ij}^2` per design
        column (bound 2. of the module docstring, from its first model round) and the bounds
        of its curvature and gradient that follow.
    """

    participants: frozenset = frozenset()
    nodes: tuple | None = None
    counts: dict = field(default_factory=dict)
    limits: dict = field(default_factory=dict)
    moments: dict = field(default_factory=dict)
    sum_abs: dict = field(default_factory=dict)
    broadcast: str | None = None

    def open(self, messages: Any, k: int) -> list[dict]:
        """Check the envelopes (and the introductions in round 0); sort by node id.

        Raises
        ------
        MessageError
            A message that is no dict of exactly ``node``, ``round``, ``intro``, ``update``,
            from a node that is no hospital of the analysis (or twice), or a malformed
            introduction.
        """
        if not isinstance(messages, list):
            raise MessageError(
                f"the aggregator received the round-{k} messages as a {_type_name(messages)} "
                "instead of a list; the platform or installation is faulty. The analysis is "
                "stopped; no result is written."
            )
        seen: set[str] = set()
        for position, message in enumerate(messages, 1):
            node = message.get("node") if isinstance(message, dict) else None
            if not isinstance(node, str) or not self._known(node, k) or node in seen:
                raise MessageError(
                    f"the round-{k} message that arrived {_ordinal(position)} "
                    f"{self._unknown(message, node, seen)}, so its sender is unknown; a "
                    "hospital's installation or the transfer is faulty. The analysis is "
                    "stopped; no result is written."
                )
            seen.add(node)
            try:
                _dict(message, None, ("node", "round", "intro", "update", "received"))
                _int(message["round"], "round")
                self._received(message["received"], k)
                if k == 0:
                    self._intro(node, message["intro"])
                elif message["intro"] is not None:
                    raise _Damage("intro", f"is a {_type_name(message['intro'])}, not None")
            except _Damage as damage:
                raise _message_error(f"hospital {node!r}", k, "message", damage) from None
        if self.nodes is not None and seen != set(self.nodes):
            missing = ", ".join(repr(node) for node in sorted(set(self.nodes) - seen))
            raise MessageError(
                f"the aggregator received no round-{k} message from {missing}; the platform "
                "or installation is faulty. The analysis is stopped; no result is written."
            )
        if k == 0:
            self.nodes = tuple(sorted(seen))
        return sorted(messages, key=lambda message: message["node"])

    def sent(self, broadcast: Any) -> None:
        """Remember what the aggregator broadcasts (its digest), to compare the echoes with."""
        self.broadcast = digest(broadcast)

    def _received(self, echo: Any, k: int) -> None:
        if k == 0:
            if echo is not None:
                raise _Damage("received", f"is a {_type_name(echo)}, not None (round 0)")
            return
        if not isinstance(echo, str):
            raise _Damage("received", f"is a {_type_name(echo)} instead of a str")
        if echo != self.broadcast:
            raise _Damage(
                "received",
                "is the digest of another broadcast than the aggregator sent: the broadcast "
                "was altered on its way to this hospital",
                faulty="the transfer or an installation",
            )

    def _known(self, node: str, k: int) -> bool:
        if self.nodes is not None:
            return node in self.nodes
        return not self.participants or node in self.participants

    @staticmethod
    def _unknown(message: Any, node: Any, seen: set[str]) -> str:
        if not isinstance(message, dict):
            return f"is a {_type_name(message)} instead of a dict"
        if "node" not in message:
            return "names no sender ('node' is missing)"
        if not isinstance(node, str):
            return f"names its sender by a {_type_name(node)} instead of a str"
        if node in seen:
            return f"names {_shown(node)} as its sender, as an earlier one did"
        return f"names {_shown(node)} as its sender, which is no hospital of this analysis"

    def _intro(self, node: str, intro: Any) -> None:
        intro = _dict(intro, "intro", _INTRO_KEYS)
        n = _int(intro["n"], "intro.n")
        n_pos = _int(intro["n_pos"], "intro.n_pos", 0, n)
        _int(intro["n_dropped"], "intro.n_dropped")
        _strings(intro["columns"], "intro.columns")
        if not isinstance(intro["params"], dict):
            raise _Damage("intro.params", f"is a {_type_name(intro['params'])} instead of a dict")
        _dict(intro["params"], "intro.params", SHARED_PARAMS)
        problems = intro["problems"]
        if not isinstance(problems, list):
            raise _Damage("intro.problems", f"is a {_type_name(problems)} instead of a list")
        for i, problem in enumerate(problems):
            path = f"intro.problems[{i}]"
            _dict(problem, path, _PROBLEM_KEYS)
            for key, types in (("problem", str), ("hint", (str, type(None))), ("file", str)):
                if not isinstance(problem[key], types):
                    raise _Damage(f"{path}.{key}", f"is a {_type_name(problem[key])}")
            if not isinstance(problem["privacy"], bool):
                raise _Damage(f"{path}.privacy", f"is a {_type_name(problem['privacy'])}")
        levels = intro["levels"]
        if levels is not None:
            if not isinstance(levels, dict):
                raise _Damage("intro.levels", f"is a {_type_name(levels)} instead of a dict")
            for column, names in levels.items():
                if not isinstance(column, str):
                    raise _Damage("intro.levels", "has a key that is no str")
                _strings(names, f"intro.levels[{_shown(column)}]")
        self.counts[node] = (n, n_pos)

    def check_updates(self, messages: list[dict], k: int, spec: UpdateSpec) -> None:
        """Check every hospital's update against ``spec`` and the bounds (module docstring).

        Raises
        ------
        MessageError
            Naming the first hospital (in the order of the ids) whose update fails.
        """
        for message in messages:
            node = message["node"]
            try:
                self._update(node, message["update"], spec)
            except _Damage as damage:
                raise _message_error(f"hospital {node!r}", k, "update", damage) from None

    def _update(self, node: str, update: Any, spec: UpdateSpec) -> None:
        if spec.kind == "none":
            if update is not None:
                raise _Damage("update", f"is a {_type_name(update)}, not None (setup round)")
            return
        n, n_pos = self.counts[node]
        if spec.kind == "fedavg":
            self.sum_abs[node] = _fedavg_update(update, spec, n, n_pos, self.sum_abs.get(node))
            return
        update = _dict(update, None, ("terms", "moments", "n_extreme", "firth"))
        p = spec.n_features + spec.fit_intercept
        if spec.kind == "hat":
            for key in ("terms", "moments", "n_extreme"):
                if update[key] is not None:
                    raise _Damage(key, f"is a {_type_name(update[key])}, not None")
            _array(update["firth"], "firth", (p,))
            return
        if not spec.firth_third and update["firth"] is not None:
            raise _Damage("firth", f"is a {_type_name(update['firth'])}, not None")
        if spec.kind == "moments":
            for key in ("terms", "n_extreme"):
                if update[key] is not None:
                    raise _Damage(key, f"is a {_type_name(update[key])}, not None")
            moments = _dict(update["moments"], "moments", ("n", "mean", "m2"))
            _int(moments["n"], "moments.n", n, n)
            mean = _array(moments["mean"], "moments.mean", (spec.n_features,))
            m2 = _array(moments["m2"], "moments.m2", (spec.n_features,))
            if np.any(m2 < 0):
                raise _Damage("moments.m2", "holds negative sums of squares")
            # the reader refuses |x| > MAX_ABS_VALUE, so a mean is at most that
            if np.any(~(np.abs(mean) <= MAX_ABS_VALUE * (1 + slack(n)))):
                raise _Damage("moments.mean", f"holds values beyond {MAX_ABS_VALUE:g} in size")
            self.moments[node] = (mean, m2)
            return
        if update["moments"] is not None:
            raise _Damage("moments", f"is a {_type_name(update['moments'])}, not None")
        _int(update["n_extreme"], "n_extreme", 0, n)
        limits = _terms(update["terms"], spec, n, n_pos, self.limits.get(node))
        if spec.firth_third:
            _third_moments(update["firth"], limits, n)
        if spec.at_zero and node not in self.limits:
            if spec.scaler is not None and node in self.moments:
                _agrees_with_moments(
                    limits, n, *self.moments[node], spec.scaler, _rounding(spec.curvature)
                )
            self.limits[node] = limits


def _ordinal(position: int) -> str:
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(position if position < 20 else position % 10, "th")
    return f"{position}{suffix}"


def _fedavg_update(update: Any, spec: UpdateSpec, n: int, n_pos: int, sum_abs) -> np.ndarray:
    """Check FedAvg's update (bounds 1 and 6 of the module docstring); return its ``sum_abs``."""
    update = _dict(update, None, ("coef", "intercept", "loss", "sum_abs"))
    d = spec.n_features
    coef = _array(update["coef"], "coef", (1, d))
    intercept = 0.0
    if spec.fit_intercept:
        intercept = float(_array(update["intercept"], "intercept", (1,))[0])
    elif update["intercept"] is not None:
        raise _Damage("intercept", f"is a {_type_name(update['intercept'])}, not None")
    loss = _float(update["loss"], "loss")
    first = spec.start is None
    if first:
        sum_abs = _array(update["sum_abs"], "sum_abs", (d,))
        if np.any(sum_abs < 0):
            raise _Damage("sum_abs", "holds negative sums of |x|")
    elif update["sum_abs"] is not None:
        raise _Damage("sum_abs", f"is a {_type_name(update['sum_abs'])}, not None")
    log2, grow, tiny = math.log(2), 1.0 + _FEDAVG_SLACK, 4 * (n + 2) * _TINY
    if loss < 0:
        raise _Damage("loss", "is negative (a log-loss sum is >= 0)")
    w0 = np.zeros(d) if first else spec.start.ravel()
    b0 = 0.0 if first else abs(spec.start_intercept or 0.0)
    with np.errstate(all="ignore"):
        if first and abs(loss - n * log2) > slack(n) * n * log2:
            raise _Damage("loss", "is not n log 2 at the zero model it was computed at")
        if not loss <= (n * log2 + float(sum_abs @ np.abs(w0)) + n * b0) * grow + tiny:
            raise _Damage("loss", "is larger than n log 2 + sum |z| at the global model")
        penalty = float(w0 @ w0) / (2.0 * spec.C)  # 0 without a penalty (C = inf)
        if math.isfinite(spec.C) and not float(np.sum(np.square(coef))) <= (
            2.0 * spec.C * (loss + penalty) * grow + tiny
        ):
            raise _Damage(
                "coef",
                "is longer than a local fit from the global model can reach "
                "(||w||^2 <= ||w0||^2 + 2 C loss)",
            )
        fewest = min(n_pos, n - n_pos)
        if spec.fit_intercept and fewest > 0:
            bound = (loss + penalty + float(sum_abs @ np.abs(coef.ravel()))) / fewest
            if not abs(intercept) <= bound * grow + tiny:
                raise _Damage(
                    "intercept",
                    "is farther from 0 than a local fit from the global model can reach",
                )
    return sum_abs


class _Limits(NamedTuple):
    """A hospital's bounds from its first model round (computed once, used every round)."""

    energy: np.ndarray
    """Upper bounds of the column energies :math:`E_j` (bound 2.)."""
    under: np.ndarray
    """Per column, the absolute slack for underflow."""
    apart: np.ndarray
    """``under_j + under_k``."""
    curv_max: np.ndarray
    """:math:`E_j / 4 (1 + \\rho)` plus ``under``: the curvature's diagonal at most."""
    grad_max: np.ndarray
    """:math:`\\sqrt{n E_j} (1 + \\rho)` plus ``under``: the gradient at most."""


def _limits(curv: np.ndarray, n: int, fit_intercept: bool, rounding: float = 0.0) -> _Limits:
    rho = slack(n) + rounding
    energy = 4.0 * curv * (1 + rho)
    if fit_intercept:
        energy[-1] = n
    # underflow: each product v_i x_ij (subnormal at worst) is off by at most half the
    # smallest subnormal, and multiplied by x_ik that is at most sum_i |x_ik| <= sqrt(n E_k)
    root = np.sqrt(n * energy)
    under = 2 * _TINY * (root + n + 2)
    return _Limits(
        energy,
        under,
        under[:, None] + under[None, :],
        energy / 4 * (1 + rho) + under,
        root * (1 + rho) + under,
    )


def _agrees_with_moments(
    limits: _Limits, n: int, mean, m2, scaler: dict, rounding: float = 0.0
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
    with np.errstate(all="ignore"):
        gap = mean - mu
        predicted = (m2 + n * gap * gap) / (scale * scale)
        delta = 4 * (n + 2) * _EPS * (np.abs(mean) + np.sqrt(m2))  # the mean's error, at most
        error = (
            rho * (m2 + n * gap * gap) + 3 * n * delta * delta + 2 * n * delta * np.abs(gap)
        ) / (scale * scale)
        measured = limits.energy[:d] / (1 + rho)  # 4 curv0, the energies as the hospital sees
        slack_j = error + rho * (predicted + measured) + limits.under[:d]
        off = int(np.count_nonzero(~(np.abs(measured - predicted) <= slack_j)))
    if off:
        raise _Damage(
            "terms.hess",
            f"disagrees in {off} column(s) with the feature moments this hospital sent in round 0",
        )


def _third_moments(third: Any, limits: _Limits, n: int) -> None:
    r"""Check Firth's third-moment sum :math:`\sum_i w_i (\frac12 - \pi_i) x_{ij} x_{ik} x_{il}`.

    :math:`|w_i (\frac12 - \pi_i)| \le 1/8`, :math:`\max_i |x_{il}| \le \sqrt{E_l}` and
    :math:`\sum_i |x_{ij} x_{ik}| \le \sqrt{E_j E_k}` (Cauchy-Schwarz), so every entry is at
    most :math:`\sqrt{E_j E_k E_l} / 8` (bound 8. of the module docstring).
    """
    p = limits.energy.shape[0]
    T = _array(third, "firth", (p, p, p))
    root = np.sqrt(limits.energy)
    with np.errstate(all="ignore"):
        bound = root[:, None, None] * root[None, :, None] * root[None, None, :] / 8
        # underflow of a partial product, times the factors still to come
        under = 2 * _TINY * (n + 2) * (1 + root[None, None, :])
        _at_most(T, bound * (1 + slack(n)) + under, "firth", "sqrt(E_j E_k E_l)/8")


#: The packed triangles' encodings (``exact.curvature``): checked as the matrix they carry.
_PACKED = ("triangle", "triangle32")
#: Relative rounding of a float32 triangle's entries, added to the bounds' slack.
_FLOAT32_SLACK = 2.0**-23


def _rounding(curvature: str | None) -> float:
    """Return the relative rounding of the curvature's entries, added to the bounds' slack."""
    return _FLOAT32_SLACK if curvature == "triangle32" else 0.0


def _unpacked(hess: Any, encoding: str, p: int) -> np.ndarray:
    """Return the symmetric matrix a packed triangle carries (checked: keys, dtype, size)."""
    from pancreas_fl.exact.curvature import unpack_upper  # exact runs only

    packed = _dict(hess, "terms.hess", ("upper", "encoding"))
    # where float32 would lose the matrix, a hospital sends its float64 triangle instead
    allowed = (encoding, "triangle") if encoding == "triangle32" else (encoding,)
    if packed["encoding"] not in allowed:
        raise _Damage("terms.hess.encoding", f"is not the {encoding!r} asked for")
    dtype = np.float64 if packed["encoding"] == "triangle" else np.float32
    upper = packed["upper"]
    if not isinstance(upper, np.ndarray) or upper.dtype != dtype:
        raise _Damage("terms.hess.upper", f"is not a {np.dtype(dtype).name} array")
    upper = _array(upper.astype(np.float64), "terms.hess.upper", (p * (p + 1) // 2,))
    return unpack_upper(upper, p)


def _residual(hess: Any, limits: _Limits | None, p: int, tiny: float) -> None:
    """Check the statistics round's float32 residual: below 2^-24 of the matrix's bounds."""
    if limits is None:
        raise _Damage("terms.hess", "is a residual before any curvature was sent")
    R = _unpacked(hess, "residual32", p)
    root = np.sqrt(limits.curv_max)
    _at_most(R, 2.0**-24 * np.outer(root, root) + limits.apart + tiny, "terms.hess", "2^-24 H")


def _terms(terms: Any, spec: UpdateSpec, n: int, n_pos: int, limits: _Limits | None):
    """Check exact's sums (bounds 1-5 of the module docstring); return the hospital's limits."""
    terms = _dict(terms, "terms", ("n", "n_pos", "loss", "grad", "hess"))
    _int(terms["n"], "terms.n", n, n)
    _int(terms["n_pos"], "terms.n_pos", n_pos, n_pos)
    d, p = spec.n_features, spec.n_features + spec.fit_intercept
    loss = _float(terms["loss"], "terms.loss")
    grad = _array(terms["grad"], "terms.grad", (p,))
    rho, tiny = slack(n), 4 * (n + 2) * _TINY
    if loss < 0:
        raise _Damage("terms.loss", "is negative (a log-loss sum is >= 0)")
    if spec.at_zero and abs(loss - n * math.log(2)) > rho * n * math.log(2):
        raise _Damage("terms.loss", "is not n log 2 at the zero point it was computed at")
    hess = terms["hess"]
    under = tiny if limits is None else limits.under
    with np.errstate(all="ignore"):  # damaged values may overflow here: they fail the test
        if spec.curvature == "residual32":
            _residual(hess, limits, p, tiny)
            return limits
        rounding = _rounding(spec.curvature)
        rho += rounding
        if spec.curvature in _PACKED:
            H = _unpacked(hess, spec.curvature, p)
        if spec.curvature == "full" or spec.curvature in _PACKED:
            if spec.curvature == "full":
                H = _array(hess, "terms.hess", (p, p))
            curv = np.diag(H)
            if np.any(curv < 0):
                raise _Damage("terms.hess", "has a negative diagonal (curvature is >= 0)")
            root = np.sqrt(curv + under)  # the roots' product: no underflow of H_jj H_kk
            root = np.outer(root, root)
            apart = 2 * tiny if limits is None else limits.apart
            if spec.curvature == "full":  # a packed triangle is symmetric by construction
                _at_most(H - H.T, rho * root + 2 * apart, "terms.hess", "symmetry")
            _at_most(H, root * (1 + rho) + apart, "terms.hess", "sqrt(H_jj H_kk)")
        else:
            moments = _dict(hess, "terms.hess", ("s", "sx", "sxx"))
            s = _float(moments["s"], "terms.hess.s")
            sx = _array(moments["sx"], "terms.hess.sx", (d,))
            sxx = _array(moments["sxx"], "terms.hess.sxx", (d,))
            if s < 0 or np.any(sxx < 0):
                raise _Damage("terms.hess", "holds a negative curvature sum")
            if not s <= n / 4 * (1 + rho) + tiny:
                raise _Damage("terms.hess.s", "is larger than n/4")
            tail = under if limits is None else under[:d]
            root = math.sqrt(s + tiny) * np.sqrt(sxx + tail)
            _at_most(sx, root * (1 + rho) + tail, "terms.hess.sx", "sqrt(s sxx)")
            curv = np.append(sxx, s) if spec.fit_intercept else sxx
        if spec.fit_intercept:
            if not curv[-1] <= n / 4 * (1 + rho) + tiny:
                raise _Damage("terms.hess", "is larger than n/4 for the intercept")
            if spec.at_zero and curv[-1] < n / 4 * (1 - rho):
                raise _Damage("terms.hess", "is not n/4 for the intercept at the zero point")
        if limits is None:
            limits = _limits(curv, n, spec.fit_intercept, rounding)
        else:
            _at_most(curv, limits.curv_max * (1 + rounding), "terms.hess", "sum(x^2)/4")
        bound = limits.grad_max * 0.5 if spec.at_zero else limits.grad_max
        _at_most(grad, bound, "terms.grad", "sum(|x|) of its column")
    return limits


# ------------------------------------------------------------------- aggregator -> hospital
@dataclass
class HospitalInbox:
    """A hospital's checks of the aggregator's broadcasts.

    Parameters
    ----------
    strategy : {'fedavg', 'exact'}
    fit_intercept, standardize : bool
    output : {'coef', 'model'}
    firth : bool
        exact with ``penalty='firth'``: the broadcast carries a Firth request (checked by
        :func:`pancreas_fl.exact.firth.check_request`), else ``None``.
    solver : str
        exact: the ``solver`` parameter; with the number of parameters it fixes the
        curvature every broadcast asks for (:func:`~pancreas_fl.stats.resolve_method`).
    levels : dict of str to list of str or None
        With ``categorical``: the levels this hospital sent (the setup broadcast must hold
        them all).
    budgets : tuple of (float, float)
        exact: ``max_message_mb`` and ``max_memory_mb``, which with ``solver`` fix the
        curvature's encoding (:func:`~pancreas_fl.exact.curvature.plan_curvature`).

    Attributes
    ----------
    scaler : dict or None
        The first scaler received (``standardize``): every later broadcast must carry it.
    """

    strategy: str
    fit_intercept: bool
    standardize: bool
    output: str
    solver: str = "auto"
    firth: bool = False
    levels: dict | None = None
    budgets: tuple = (64.0, 4096.0)
    scaler: dict | None = None

    def receive(self, broadcast: Any, k: int, n_features: int | None) -> str:
        """Check the broadcast received for round ``k``; return its digest (to echo).

        ``n_features`` is ``None`` for the answer to the setup round (no model yet).

        Raises
        ------
        MessageError
            Naming the aggregator, the round, the field and what is wrong.
        """
        try:
            if n_features is None:
                self._setup(broadcast)
            elif self.strategy == "fedavg":
                self._fedavg(broadcast, n_features)
            else:
                self._exact(broadcast, n_features)
        except _Damage as damage:
            raise _message_error("the aggregator", k, "broadcast", damage) from None
        return digest(broadcast)

    def _setup(self, broadcast: Any) -> None:
        levels = _dict(broadcast, None, ("levels",))["levels"]
        mine = self.levels or {}
        _dict(levels, "levels", tuple(mine))
        for column, names in levels.items():
            path = f"levels[{_shown(column)}]"
            _strings(names, path)
            if len(set(names)) != len(names) or not names:
                raise _Damage(path, "is empty or names a level twice")
            if not set(mine[column]) <= set(names):
                raise _Damage(path, "lacks levels this hospital sent")

    def _fedavg(self, broadcast: Any, d: int) -> None:
        if self.output == "coef":
            _array(broadcast, None, (1, d))
            return
        model = _dict(broadcast, None, ("coef", "intercept"))
        _array(model["coef"], "coef", (1, d))
        if self.fit_intercept:
            _array(model["intercept"], "intercept", (1,))
        elif model["intercept"] is not None:
            raise _Damage("intercept", f"is a {_type_name(model['intercept'])}, not None")

    def _exact(self, broadcast: Any, d: int) -> None:
        from pancreas_fl.exact.curvature import plan_curvature  # exact runs only

        b = _dict(broadcast, None, ("next_theta", "curvature", "scaler", "firth"))
        p = d + self.fit_intercept
        _array(b["next_theta"], "next_theta", (p,))
        if not self.firth and b["firth"] is not None:
            raise _Damage("firth", f"is a {_type_name(b['firth'])}, not None")
        message_mb, memory_mb = self.budgets
        plan = plan_curvature(
            p,
            self.solver,
            max_message_mb=message_mb,
            max_memory_mb=memory_mb,
            float32=not self.firth,
        )
        allowed = {plan.encoding}
        if plan.statistics_round and self.output == "model":  # the statistics round
            allowed.add("residual32")
        if not isinstance(b["curvature"], str) or b["curvature"] not in allowed:
            raise _Damage("curvature", f"is not the solver's {plan.encoding!r}")
        scaler = b["scaler"]
        if not self.standardize:
            if scaler is not None:
                raise _Damage("scaler", f"is a {_type_name(scaler)}, not None")
            return
        scaler = _dict(scaler, "scaler", ("mean", "scale"))
        _array(scaler["mean"], "scaler.mean", (d,))
        scale = _array(scaler["scale"], "scaler.scale", (d,))
        if np.any(scale <= 0):
            raise _Damage("scaler.scale", "holds values that are not > 0")
        if self.scaler is None:
            self.scaler = {key: value.copy() for key, value in scaler.items()}
        elif not all(np.array_equal(scaler[key], self.scaler[key]) for key in scaler):
            raise _Damage("scaler", "differs from the one agreed in the first model round")


# ------------------------------------------------------------------------ the final result
def check_final_result(result: Any, k: int, n_features: int, fit_intercept: bool) -> None:
    """Check the final result before it is submitted: finite, real, of the agreed shape.

    ``result`` is the bare ``(1, d)`` coefficient array or the model dict (its ``coef`` and
    ``intercept``).

    Raises
    ------
    MessageError
        Naming the aggregator (its own result), the round and the field.
    """
    try:
        if isinstance(result, dict):
            _array(result.get("coef"), "coef", (1, n_features))
            if fit_intercept or result.get("intercept") is not None:
                _array(result.get("intercept"), "intercept", (1,))
        else:
            _array(result, None, (1, n_features))
    except _Damage as damage:
        damage.field = damage.field or "result"
        raise MessageError(
            f"the aggregator's round-{k} final {damage.field} {damage.what}; a "
            "hospital's message or the installation is faulty. The analysis is stopped; no "
            "result is written."
        ) from None


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
    sxx_j`, and its floors, which raise no entry above the largest), Newton's ridge (at most
    0.1 of the diagonal) and the solve's backward error. An honest converged fit therefore has
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
