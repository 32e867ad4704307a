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
2.-4. **Curvature and gradient** of the exact strategy's sums: :mod:`pancreas_fl.exact.wire`.
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
7.-8. **Standardization and Firth's sums**: :mod:`pancreas_fl.exact.wire`.

Bounds looked for and not found are listed in the README ("Threat model"). A plausible but
wrong message (a gradient a little off, another hospital's coefficients) passes every check:
checks stop damage, not a hostile hospital that knows the protocol.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

import numpy as np

from pancreas_fl.errors import MessageError
from pancreas_fl.params import SHARED_PARAMS

__all__ = [
    "EPS",
    "TINY",
    "AggregatorInbox",
    "Damage",
    "HospitalInbox",
    "UpdateSpec",
    "as_array",
    "as_dict",
    "as_float",
    "as_int",
    "as_strings",
    "at_most",
    "check_final_result",
    "digest",
    "shown",
    "slack",
    "sum_of_squares",
    "type_name",
]

#: The unit round-off, 2**-53.
EPS = float(np.finfo(np.float64).eps) / 2
#: The smallest subnormal float64.
TINY = 5e-324
#: The relative slack of the FedAvg coefficient bound (6. in the module docstring).
_FEDAVG_SLACK = 1e-6

_INTRO_KEYS = ("n", "n_pos", "n_dropped", "columns", "params", "problems", "levels")
_PROBLEM_KEYS = ("problem", "hint", "file", "privacy")


def slack(n: int) -> float:
    r"""Return :math:`\rho = 8 (n + 16) \epsilon`, the relative slack of bounds on ``n`` terms."""
    return 8.0 * (n + 16) * EPS


class Damage(Exception):
    """A check failed: the field (dotted path) and what is wrong with it."""

    def __init__(self, field: str | None, what: str, faulty: str | None = None) -> None:
        super().__init__(field, what)
        self.field = field
        self.what = what
        self.faulty = faulty


def _message_error(sender: str, k: int, kind: str, damage: Damage) -> MessageError:
    faulty = "its installation" if sender == "the aggregator" else "its data or installation"
    where = f"whose {damage.field} " if damage.field else "that "
    return MessageError(
        f"{sender} sent a round-{k} {kind} {where}{damage.what}; {damage.faulty or faulty} is "
        "faulty. The analysis is stopped; no result is written."
    )


# ------------------------------------------------------------------------- the digest
def digest(broadcast: Any) -> str:
    """Return the BLAKE2b digest of a broadcast's content (its arrays' bytes, keys, numbers).

    Every hospital echoes the digest of the broadcast it computed from (``received``), and
    the aggregator compares it with the digest of what it sent: a broadcast altered on the
    way, even into one of the right form, is caught, naming the hospital that received it.
    A digest reveals nothing of the data. (BLAKE2b, in Python's own ``hashlib``, is a
    cryptographic hash as SHA-256 is, and cheaper on messages this small.)
    """
    h = hashlib.blake2b(digest_size=32)
    _feed(h, broadcast)
    return h.hexdigest()


def _feed(h, value: Any) -> None:
    if type(value) is str:  # keys and names: each token formatted once
        h.update(_str_token(value))
    elif value is None:
        h.update(b"NoneType:None")
    elif isinstance(value, np.ndarray) and not value.dtype.hasobject:
        h.update(_array_header(value.dtype.char, value.shape))
        h.update(value if value.flags.c_contiguous else np.ascontiguousarray(value))
    elif isinstance(value, dict):
        h.update(b"{")
        for key in sorted(value, key=repr):
            if type(key) is str:
                h.update(_str_token(key))
            else:
                _feed(h, key)
            _feed(h, value[key])
        h.update(b"}")
    elif isinstance(value, (list, tuple)):
        h.update(b"[")
        for item in value:
            _feed(h, item)
        h.update(b"]")
    else:
        h.update(f"{type(value).__name__}:{value!r}".encode())


@lru_cache(maxsize=64)
def _array_header(char: str, shape: tuple[int, ...]) -> bytes:
    """Tell arrays of the same bytes apart by dtype and shape (formatted once per pair)."""
    return f"array{char}{shape}".encode()


@lru_cache(maxsize=256)
def _str_token(text: str) -> bytes:
    """Return a str's bytes in the digest (keys and names recur every round: formatted once)."""
    return f"str:{text!r}".encode()


# ------------------------------------------------------------------------- the checks
def type_name(value: Any) -> str:
    """Return the name of ``value``'s type, for a message (never the value)."""
    return type(value).__name__


def shown(name: Any) -> str:
    """Show a key name in a message (damaged keys can be anything: cut short)."""
    text = repr(name)
    return text if len(text) <= 40 else text[:37] + "..."


@lru_cache(maxsize=64)
def _keyset(keys: tuple) -> frozenset:
    """Return the set of a schema's keys (built once per schema, compared every message)."""
    return frozenset(keys)


def as_dict(value: Any, path: str, keys: tuple) -> dict:
    """``value`` is a dict with exactly ``keys``."""
    if not isinstance(value, dict):
        raise Damage(path, f"is a {type_name(value)} instead of a dict")
    if value.keys() == _keyset(keys):
        return value
    missing = [key for key in keys if key not in value]
    if missing:
        raise Damage(path, f"lacks the key(s) {', '.join(map(shown, missing))}")
    extra = [key for key in value if key not in keys]
    raise Damage(path, f"holds the unexpected key(s) {', '.join(map(shown, extra[:3]))}")


def as_int(value: Any, path: str, low: int = 0, high: int | None = None) -> int:
    """``value`` is an int (numpy's too, never a bool) in ``[low, high]``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise Damage(path, f"is a {type_name(value)} instead of an int")
    if value < 0:
        raise Damage(path, "is negative")
    if low == high and value != low:
        raise Damage(path, f"differs from the count of round 0 ({low})")
    if value < low:
        raise Damage(path, f"is below {low}")
    if high is not None and value > high:
        raise Damage(path, f"is larger than {high}")
    return int(value)


def as_float(value: Any, path: str) -> float:
    """``value`` is a finite float64 (a Python float or a numpy float64 scalar)."""
    if not isinstance(value, (float, np.float64)):
        raise Damage(path, f"is a {type_name(value)} instead of a float")
    if not math.isfinite(value):
        raise Damage(path, "is not finite")
    return float(value)


def as_array(value: Any, path: str, shape: tuple[int, ...]) -> np.ndarray:
    """``value`` is a real float64 ndarray of ``shape`` with every value finite."""
    sum_of_squares(value, path, shape)
    return value


def sum_of_squares(value: Any, path: str, shape: tuple[int, ...]) -> float:
    """Check ``value`` as :func:`as_array` does; return the sum of its squares.

    One pass: the sum of squares is finite exactly when every value is, unless the squares
    of finite values overflow, which only then costs a second look.
    """
    if not isinstance(value, np.ndarray):
        raise Damage(path, f"is a {type_name(value)} instead of a float64 array")
    if value.dtype != np.float64:
        kind = "complex" if value.dtype.kind == "c" else "of another type"
        raise Damage(path, f"is {kind} ({value.dtype}) instead of real float64")
    if value.shape != shape:
        raise Damage(path, f"has shape {value.shape} instead of {shape}")
    if value.size == 1:  # an intercept: Python's float is cheaper than a BLAS call
        x = value.item()
        total = x * x
    else:
        total = float(np.vdot(value, value))  # NaN or inf when a value is: squares are >= 0
    if not math.isfinite(total):
        finite = np.count_nonzero(np.isfinite(value))
        if finite < value.size:
            raise Damage(path, f"holds {value.size - finite} non-finite value(s)")
    return total


def as_strings(value: Any, path: str) -> list[str]:
    """``value`` is a list of str."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise Damage(path, f"is a {type_name(value)} instead of a list of str")
    return value


def at_most(value: np.ndarray, bound: np.ndarray, path: str, what: str) -> None:
    """Every ``|value|`` is at most ``bound``; else name how many exceed it and the bound."""
    within = np.abs(value) <= bound
    if not within.all():
        over = within.size - int(np.count_nonzero(within))
        raise Damage(path, f"holds {over} value(s) beyond {what}")


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
    curvature : {'full', 'triangle', 'triangle32', 'residual32', 'diag', 'none'} or None
        exact: what the hospitals were asked to return (the packed triangles of
        :mod:`pancreas_fl.exact.curvature` are checked as the matrix they carry; the
        statistics round's float32 residual against the bounds of that matrix; ``'none'``:
        the gradient alone, no curvature may come: Böhning's bound after round 0, and
        Newton's rounds on the kept Hessian, :mod:`pancreas_fl.exact.reuse`).
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
    gram : (int, int) or None
        exact with Böhning's bound (:mod:`pancreas_fl.exact.bohning`): the rows of the Gram
        triangle the update carries as ``gram``; ``None``: no ``gram`` key.
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
    gram: tuple | None = None

    @cached_property
    def fedavg_start(self) -> tuple[np.ndarray | None, float, float]:
        """FedAvg: ``|w0|``, ``||w0||^2`` and ``|b0|`` of the global model (zeros: ``None``)."""
        if self.start is None:
            return None, 0.0, 0.0
        w0 = self.start.ravel()
        return np.abs(w0), float(w0 @ w0), abs(self.start_intercept or 0.0)


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
                f"the aggregator received the round-{k} messages as a {type_name(messages)} "
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
                as_dict(message, None, ("node", "round", "intro", "update", "received"))
                as_int(message["round"], "round")
                self._received(message["received"], k)
                if k == 0:
                    self._intro(node, message["intro"])
                elif message["intro"] is not None:
                    raise Damage("intro", f"is a {type_name(message['intro'])}, not None")
            except Damage as damage:
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
                raise Damage("received", f"is a {type_name(echo)}, not None (round 0)")
            return
        if not isinstance(echo, str):
            raise Damage("received", f"is a {type_name(echo)} instead of a str")
        if echo != self.broadcast:
            raise Damage(
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
            return f"is a {type_name(message)} instead of a dict"
        if "node" not in message:
            return "names no sender ('node' is missing)"
        if not isinstance(node, str):
            return f"names its sender by a {type_name(node)} instead of a str"
        if node in seen:
            return f"names {shown(node)} as its sender, as an earlier one did"
        return f"names {shown(node)} as its sender, which is no hospital of this analysis"

    def _intro(self, node: str, intro: Any) -> None:
        intro = as_dict(intro, "intro", _INTRO_KEYS)
        n = as_int(intro["n"], "intro.n")
        n_pos = as_int(intro["n_pos"], "intro.n_pos", 0, n)
        as_int(intro["n_dropped"], "intro.n_dropped")
        as_strings(intro["columns"], "intro.columns")
        if not isinstance(intro["params"], dict):
            raise Damage("intro.params", f"is a {type_name(intro['params'])} instead of a dict")
        as_dict(intro["params"], "intro.params", SHARED_PARAMS)
        problems = intro["problems"]
        if not isinstance(problems, list):
            raise Damage("intro.problems", f"is a {type_name(problems)} instead of a list")
        for i, problem in enumerate(problems):
            path = f"intro.problems[{i}]"
            as_dict(problem, path, _PROBLEM_KEYS)
            for key, types in (("problem", str), ("hint", (str, type(None))), ("file", str)):
                if not isinstance(problem[key], types):
                    raise Damage(f"{path}.{key}", f"is a {type_name(problem[key])}")
            if not isinstance(problem["privacy"], bool):
                raise Damage(f"{path}.privacy", f"is a {type_name(problem['privacy'])}")
        levels = intro["levels"]
        if levels is not None:
            if not isinstance(levels, dict):
                raise Damage("intro.levels", f"is a {type_name(levels)} instead of a dict")
            for column, names in levels.items():
                if not isinstance(column, str):
                    raise Damage("intro.levels", "has a key that is no str")
                as_strings(names, f"intro.levels[{shown(column)}]")
        self.counts[node] = (n, n_pos)

    def check_updates(self, messages: list[dict], k: int, spec: UpdateSpec) -> None:
        """Check every hospital's update against ``spec`` and the bounds (module docstring).

        Raises
        ------
        MessageError
            Naming the first hospital (in the order of the ids) whose update fails.
        """
        # damaged values may overflow in the bounds' arithmetic: they fail the test, silently
        with np.errstate(all="ignore"):
            for message in messages:
                node = message["node"]
                try:
                    self._update(node, message["update"], spec)
                except Damage as damage:
                    raise _message_error(f"hospital {node!r}", k, "update", damage) from None

    def _update(self, node: str, update: Any, spec: UpdateSpec) -> None:
        if spec.kind == "none":
            if update is not None:
                raise Damage("update", f"is a {type_name(update)}, not None (setup round)")
            return
        n, n_pos = self.counts[node]
        if spec.kind == "fedavg":
            self.sum_abs[node] = _fedavg_update(update, spec, n, n_pos, self.sum_abs.get(node))
            return
        from pancreas_fl.exact.wire import check_update  # exact runs only

        check_update(self, node, update, spec, n, n_pos)


def _ordinal(position: int) -> str:
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(position if position < 20 else position % 10, "th")
    return f"{position}{suffix}"


def _fedavg_update(update: Any, spec: UpdateSpec, n: int, n_pos: int, sum_abs) -> np.ndarray:
    """Check FedAvg's update (bounds 1 and 6 of the module docstring); return its ``sum_abs``.

    The bounds are compared in Python floats (an overflow is ``inf``, no warning); the global
    model's terms come from ``spec``, computed once a round for every hospital.
    """
    update = as_dict(update, None, ("coef", "intercept", "loss", "sum_abs"))
    d = spec.n_features
    coef_squares = sum_of_squares(update["coef"], "coef", (1, d))
    intercept = 0.0
    if spec.fit_intercept:
        intercept = float(as_array(update["intercept"], "intercept", (1,))[0])
    elif update["intercept"] is not None:
        raise Damage("intercept", f"is a {type_name(update['intercept'])}, not None")
    loss = as_float(update["loss"], "loss")
    first = spec.start is None
    if first:
        sum_abs = as_array(update["sum_abs"], "sum_abs", (d,))
        if (sum_abs < 0).any():
            raise Damage("sum_abs", "holds negative sums of |x|")
    elif update["sum_abs"] is not None:
        raise Damage("sum_abs", f"is a {type_name(update['sum_abs'])}, not None")
    if loss < 0:
        raise Damage("loss", "is negative (a log-loss sum is >= 0)")
    n_log2, grow, tiny = n * math.log(2), 1.0 + _FEDAVG_SLACK, 4 * (n + 2) * TINY
    if first and abs(loss - n_log2) > slack(n) * n_log2:
        raise Damage("loss", "is not n log 2 at the zero model it was computed at")
    abs_w0, w0_squares, b0 = spec.fedavg_start
    at_start = n_log2 + n * b0 + (0.0 if first else float(sum_abs @ abs_w0))
    if not loss <= at_start * grow + tiny:
        raise Damage("loss", "is larger than n log 2 + sum |z| at the global model")
    penalty = w0_squares / (2.0 * spec.C)  # 0 without a penalty (C = inf)
    if math.isfinite(spec.C) and not coef_squares <= 2.0 * spec.C * (loss + penalty) * grow + tiny:
        raise Damage(
            "coef",
            "is longer than a local fit from the global model can reach "
            "(||w||^2 <= ||w0||^2 + 2 C loss)",
        )
    fewest = min(n_pos, n - n_pos)
    if spec.fit_intercept and fewest > 0:
        reach = float(sum_abs @ np.abs(update["coef"].ravel()))
        bound = (loss + penalty + reach) / fewest
        if not abs(intercept) <= bound * grow + tiny:
            raise Damage(
                "intercept",
                "is farther from 0 than a local fit from the global model can reach",
            )
    return sum_abs


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
    reuse : {'auto', 'on', 'off'}
        exact: ``reuse_curvature``: whether a broadcast may ask for no curvature
        (:func:`~pancreas_fl.exact.reuse.reuses_curvature`).

    Attributes
    ----------
    scaler : dict or None
        The first scaler received (``standardize``): every later broadcast must carry it.
    plan : CurvaturePlan or None
        exact: the curvature plan of the first model broadcast (the parameters and the
        number of parameters fix it: computed once).
    curvatures : frozenset of str
        exact: the curvatures a broadcast may ask for under ``plan`` (computed with it).
    """

    strategy: str
    fit_intercept: bool
    standardize: bool
    output: str
    solver: str = "auto"
    firth: bool = False
    levels: dict | None = None
    budgets: tuple = (64.0, 4096.0)
    reuse: str = "auto"
    scaler: dict | None = None
    plan: Any = None
    curvatures: frozenset = frozenset()

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
                from pancreas_fl.exact.wire import check_broadcast  # exact runs only

                check_broadcast(self, broadcast, n_features)
        except Damage as damage:
            raise _message_error("the aggregator", k, "broadcast", damage) from None
        return digest(broadcast)

    def _setup(self, broadcast: Any) -> None:
        levels = as_dict(broadcast, None, ("levels",))["levels"]
        mine = self.levels or {}
        as_dict(levels, "levels", tuple(mine))
        for column, names in levels.items():
            path = f"levels[{shown(column)}]"
            as_strings(names, path)
            if len(set(names)) != len(names) or not names:
                raise Damage(path, "is empty or names a level twice")
            if not set(mine[column]) <= set(names):
                raise Damage(path, "lacks levels this hospital sent")

    def _fedavg(self, broadcast: Any, d: int) -> None:
        if self.output == "coef":
            as_array(broadcast, None, (1, d))
            return
        model = as_dict(broadcast, None, ("coef", "intercept"))
        as_array(model["coef"], "coef", (1, d))
        if self.fit_intercept:
            as_array(model["intercept"], "intercept", (1,))
        elif model["intercept"] is not None:
            raise Damage("intercept", f"is a {type_name(model['intercept'])}, not None")


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
            as_array(result.get("coef"), "coef", (1, n_features))
            if fit_intercept or result.get("intercept") is not None:
                as_array(result.get("intercept"), "intercept", (1,))
        else:
            as_array(result, None, (1, n_features))
    except Damage as damage:
        damage.field = damage.field or "result"
        raise MessageError(
            f"the aggregator's round-{k} final {damage.field} {damage.what}; a "
            "hospital's message or the installation is faulty. The analysis is stopped; no "
            "result is written."
        ) from None
