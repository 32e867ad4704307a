r"""The curvature that crosses: what ``solver="auto"`` chooses by cost, and how it is packed.

Cost model
----------
On a FLAME node a round costs about :data:`ROUND_SECONDS` of the SDK's polling (the local
FLAME node measures 1.06-1.11 s on ``data/sample``), plus the hospitals' compute, plus the
transfer of the largest message. So the rounds decide what an analyst waits for:

.. math::

    T \approx R \cdot 1.1\,\mathrm{s} + \sum_{\text{rounds}} (t_\text{hospital} +
    t_\text{aggregator}) + R \cdot \text{bytes} / \text{bandwidth}.

Newton converges in 6-10 rounds whatever ``p``; a gradient-only method needs hundreds on wide,
correlated data (measured: 324 and 351 rounds of L-BFGS with the per-round centred diagonal
at ``p = 1,100``, i.e. 6 to 6.5 minutes of polling alone; 37 and 36 with Böhning's bound).
Newton's price is the curvature: :math:`O(n p^2)` flops at each hospital, :math:`O(p^3)` at
the aggregator, and :math:`p (p + 1) / 2` numbers per hospital per round. Up to ``p`` of
several thousand that compute costs seconds and the transfer (a 100 MB triangle at
``p = 5,000``, about a second on a hospital's uplink) less than the hundreds of extra polling
rounds. So :func:`plan_curvature` chooses Newton whenever its
curvature fits two budgets, and the gradient-only solver (L-BFGS) only above them, with
Böhning's bound :math:`C \tilde X^\top \tilde X / 4 + P` shared once while a ``p x p``
matrix fits the aggregator (``"bohning"``, :mod:`~pancreas_fl.exact.bohning`):

* ``max_message_mb``: the curvature one hospital sends in one round;
* ``max_memory_mb``: the curvature a node holds: at the aggregator, the busiest node, about
  9 float64 ``p x p`` matrices at its peak with the packed triangles, which it keeps packed
  (:mod:`~pancreas_fl.exact.packed`; :func:`node_memory_bytes`); a hospital holds its
  Hessian sum, one product block and its message.

Encodings
---------
``"full"``
    The dense float64 ``p x p`` matrix, as the exact strategy always sent it. Kept up to
    :data:`SQUARE_LIMIT_BYTES`: below it packing saves nothing that matters, and narrow data
    keep their rounds and results bit for bit.
``"triangle"``
    The upper triangle, row by row, float64: half the bytes, nothing lost (the hospital's
    Hessian is computed exactly symmetric, as :math:`W^\top W` with
    :math:`W = \operatorname{diag}(\sqrt{v})\tilde X`, one block of rows at a time).
``"triangle32"``
    The upper triangle in float32: a quarter of the bytes. The gradient stays float64, so the
    fixed point is the exact one; the Hessian's relative error of about :math:`6 \cdot 10^{-8}`
    only shapes the step (Newton then converges linearly at a rate of about
    :math:`\kappa \cdot 6 \cdot 10^{-8}`, in practice in the same rounds). For the GLM
    statistics the aggregator asks, in one extra round at the final estimate, for the
    residual :math:`H - \mathrm{fl}_{32}(H)` in float32 (``"residual32"``): the two parts
    together carry :math:`H` to about :math:`2^{-48}` relative, at no more bytes per
    message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pancreas_fl.exact.bohning import gram_chunks, triangle_offset

__all__ = [
    "ENCODINGS",
    "FLOAT64_TRIANGLE_LIMIT",
    "ROUND_SECONDS",
    "SQUARE_LIMIT_BYTES",
    "CurvaturePlan",
    "add_packed",
    "fits_float32",
    "gram_of_weighted_rows",
    "is_packed",
    "message_bytes",
    "pack_upper",
    "plan_curvature",
    "unpack_upper",
]

#: Seconds of SDK polling per round on a FLAME node (the local FLAME node's measurement).
ROUND_SECONDS = 1.1
#: Up to this many bytes the dense float64 Hessian crosses as it always did (p <= 362).
SQUARE_LIMIT_BYTES = 2**20
#: What a hospital can send as its curvature, per entry of the matrix it stands for.
ENCODINGS = ("full", "triangle", "triangle32", "residual32")
#: The most parameters whose float64 triangle fits the default message budget (64 MB).
FLOAT64_TRIANGLE_LIMIT = 3999
#: Rows per block of the hospital's Gram product: fewer make many passes over the p x p sum.
GRAM_ROWS = 1024
_MB = 1e6


def message_bytes(n_params: int, encoding: str) -> int:
    """Return the bytes of one hospital's curvature in ``encoding`` (numbers only).

    Parameters
    ----------
    n_params : int
        ``p``, the number of parameters.
    encoding : {"full", "triangle", "triangle32", "residual32", "diag"}
        ``"diag"``: the L-BFGS preconditioner's :math:`2p + 1` moments.
    """
    p = int(n_params)
    if encoding == "full":
        return 8 * p * p
    if encoding == "triangle":
        return 8 * (p * (p + 1) // 2)
    if encoding in ("triangle32", "residual32"):
        return 4 * (p * (p + 1) // 2)
    if encoding == "diag":
        return 8 * (2 * p + 1)
    raise ValueError(f"unknown curvature encoding {encoding!r}")


def node_memory_bytes(n_params: int, encoding: str, *, firth: bool = False) -> int:
    r"""Return the bytes of curvature the busiest node holds (the aggregator's peak).

    For the packed triangles :math:`9 \cdot 8 p^2` bytes: ``benchmarks/wide.py --checks``
    measured the aggregator node's peak, its message checks included, at about 7.5 float64
    ``p x p`` matrices with 3 hospitals (at the end: the covariance and its lists, 3.5; the
    information at the estimate and at zero, packed, 1; the last round's triangles, 1.5,
    counted twice, as received and unpickled); each further hospital's float64 triangle
    adds half a matrix. The dense matrix (``"full"``, p <= 362) and Firth's penalty
    (``firth``) keep the unpacked path: :math:`16 \cdot 8 p^2` (15.3 matrices measured with
    Firth at p = 400). For ``"diag"``, the L-BFGS memory (20 pairs of two vectors). For
    ``"bohning"`` (:mod:`~pancreas_fl.exact.bohning`), 4 float64 ``p x p`` matrices: the
    packed Gram sum, Böhning's bound and its Cholesky factor at the factorization's peak (then
    only the factor's inverse stays).
    """
    p = int(n_params)
    if encoding == "diag":
        return 8 * p * (2 * 20 + 4)
    if encoding == "bohning":  # the packed sum, B and its factor, then the factor's inverse
        return 4 * 8 * p * p
    unpacked = firth or encoding == "full"
    return (16 if unpacked else 9) * 8 * p * p


@dataclass(frozen=True)
class CurvaturePlan:
    """What the solver runs and what curvature crosses, for ``p`` parameters.

    Attributes
    ----------
    method : {"newton", "lbfgs"}
    encoding : {"full", "triangle", "triangle32", "diag", "bohning"}
        The curvature each hospital sends per round; ``"bohning"``: L-BFGS preconditioned by
        Böhning's bound, whose Gram triangle crosses once, in ``gram_rows`` chunks
        (:mod:`~pancreas_fl.exact.bohning`).
    message_bytes : int
        Its size (``"bohning"``: the largest round's, the moments and the first chunk or a
        later chunk).
    memory_bytes : int
        The curvature the aggregator holds (see :func:`node_memory_bytes`).
    reason : str
        One line: why this method (for the log).
    gram_rows : tuple of (int, int)
        ``"bohning"``: the rows of the Gram triangle each round carries, in order; else empty.
    """

    method: str
    encoding: str
    message_bytes: int
    memory_bytes: int
    reason: str
    gram_rows: tuple = ()

    @property
    def statistics_round(self) -> bool:
        """Whether the GLM statistics need one extra round (the float32 residual)."""
        return self.encoding == "triangle32"


def plan_curvature(
    n_params: int,
    solver: str = "auto",
    *,
    max_message_mb: float = 64.0,
    max_memory_mb: float = 4096.0,
    float32: bool = True,
) -> CurvaturePlan:
    """Choose the method and the curvature's encoding for ``n_params`` parameters.

    ``solver="auto"`` takes Newton with the first encoding that fits both budgets, in the
    order ``"full"`` (up to :data:`SQUARE_LIMIT_BYTES`), ``"triangle"``, ``"triangle32"``;
    when none fits, L-BFGS: preconditioned by Böhning's bound (``"bohning"``) when its Gram
    triangle's rows fit the message budget (the first beside the moments at zero) and its
    ``p x p`` matrices the memory budget, else with the per-round centred diagonal
    (``"diag"``). ``solver="newton"`` takes the first encoding that fits the budgets, else the
    smallest (the analyst asked for Newton); ``solver="lbfgs"`` always L-BFGS with the
    per-round diagonal: nothing ``p x p`` crosses. Firth's penalty (``float32=False``) needs
    Newton and never takes the bound. The hospitals and the aggregator evaluate the same
    plan from the same shared parameters, so they agree on what crosses without a message.

    Parameters
    ----------
    n_params : int
    solver : {"auto", "newton", "lbfgs"}
    max_message_mb, max_memory_mb : float
        The budgets (megabytes, 10^6 bytes): the curvature per hospital and round, and
        what a node holds of it.
    float32 : bool, default=True
        Whether the float32 triangle may be used (not for Firth's penalty, whose every
        round needs the Hessian to full precision).

    Returns
    -------
    CurvaturePlan
    """
    p = int(n_params)
    budget_message, budget_memory = max_message_mb * _MB, max_memory_mb * _MB
    if solver != "lbfgs":
        candidates = ["triangle", "triangle32"] if float32 else ["triangle"]
        if message_bytes(p, "full") <= SQUARE_LIMIT_BYTES:
            candidates.insert(0, "full")
        for encoding in candidates:
            size = message_bytes(p, encoding)
            memory = node_memory_bytes(p, encoding, firth=not float32)
            if size <= budget_message and memory <= budget_memory:
                return CurvaturePlan(
                    "newton",
                    encoding,
                    size,
                    memory,
                    f"Newton: its curvature ({_mb(size)} per hospital and round, {encoding}) "
                    f"fits max_message_mb={max_message_mb:g} and max_memory_mb="
                    f"{max_memory_mb:g}",
                )
        if solver == "newton":
            smallest = candidates[-1]
            size = message_bytes(p, smallest)
            memory = node_memory_bytes(p, smallest, firth=not float32)
            return CurvaturePlan(
                "newton",
                smallest,
                size,
                memory,
                f"Newton as asked, beyond the budgets ({_mb(size)} per hospital and round)",
            )
    if solver == "auto" and float32:
        bound = _bohning_plan(p, budget_message, budget_memory, max_message_mb, max_memory_mb)
        if bound is not None:
            return bound
    size, memory = message_bytes(p, "diag"), node_memory_bytes(p, "diag")
    if solver == "lbfgs":
        reason = "L-BFGS as asked"
    else:
        reason = (
            f"L-BFGS: Newton's curvature ({_mb(message_bytes(p, 'triangle32'))} per hospital "
            f"and round at the least) exceeds max_message_mb={max_message_mb:g} or "
            f"max_memory_mb={max_memory_mb:g}"
        )
    return CurvaturePlan("lbfgs", "diag", size, memory, reason)


def _bohning_plan(
    p: int, budget_message: float, budget_memory: float, message_mb: float, memory_mb: float
) -> CurvaturePlan | None:
    """L-BFGS with Böhning's bound, if its Gram triangle fits the budgets, else ``None``.

    The triangle (float32) crosses once, a chunk of rows per round: the first with the
    moments at zero, within ``max_message_mb`` together; the aggregator holds ``p x p``.
    """
    memory = node_memory_bytes(p, "bohning")
    moments = message_bytes(p, "diag")
    chunks = gram_chunks(p, budget_message - moments, budget_message)
    if memory > budget_memory or chunks is None:
        return None
    sizes = [4 * (triangle_offset(b, p) - triangle_offset(a, p)) for a, b in chunks]
    largest = max([moments + sizes[0], *sizes[1:]])
    return CurvaturePlan(
        "lbfgs",
        "bohning",
        largest,
        memory,
        f"L-BFGS preconditioned by Böhning's bound: Newton's curvature "
        f"({_mb(message_bytes(p, 'triangle32'))} per hospital and round at the least) exceeds "
        f"max_message_mb={message_mb:g} or max_memory_mb={memory_mb:g}; the Gram triangle "
        f"crosses once, in {len(chunks)} round(s) of at most {_mb(largest)}",
        gram_rows=chunks,
    )


def _mb(size: int) -> str:
    return f"{size / _MB:.3g} MB"


# ------------------------------------------------------------------ at the hospital
def gram_of_weighted_rows(
    Xd: np.ndarray, v: np.ndarray, buffer: np.ndarray, out: np.ndarray | None
) -> np.ndarray:
    r"""Add :math:`\sum_i v_i \tilde x_i \tilde x_i^\top` over one block of rows to ``out``.

    Computed as :math:`W^\top W` with :math:`W = \operatorname{diag}(\sqrt{v}) \tilde X` (a
    symmetric rank-k update, exactly symmetric), in ``buffer`` (the block's rows).

    Parameters
    ----------
    Xd : numpy.ndarray of shape (m, p)
        The block's design rows.
    v : numpy.ndarray of shape (m,)
        The weights :math:`\sigma(1 - \sigma) \ge 0`.
    buffer : numpy.ndarray of shape (>= m, p)
        Scratch for :math:`W`.
    out : numpy.ndarray of shape (p, p) or None
        The running sum (``None`` for the first block: a new matrix is returned).
    """
    W = np.multiply(Xd, np.sqrt(v)[:, None], out=buffer[: Xd.shape[0]])
    if out is None:
        return W.T @ W
    out += W.T @ W
    return out


def pack_upper(H: np.ndarray, encoding: str) -> dict[str, Any]:
    r"""Pack the upper triangle of the symmetric ``H`` row by row for sending.

    Parameters
    ----------
    H : numpy.ndarray of shape (p, p)
        float64, symmetric.
    encoding : {"triangle", "triangle32", "residual32"}
        ``"residual32"`` packs :math:`H - \mathrm{fl}_{32}(H)` in float32.

    Returns
    -------
    dict
        ``{"upper": 1-d array of p (p + 1) / 2 numbers, "encoding": encoding}``.
    """
    p = H.shape[0]
    if encoding != "triangle" and not fits_float32(H):
        if encoding == "triangle32":  # float32 would lose it: the float64 triangle, exact
            return pack_upper(H, "triangle")
        # the float64 triangle went at this point: nothing is left to send
        return {"upper": np.zeros(p * (p + 1) // 2, dtype=np.float32), "encoding": encoding}
    dtype = np.float64 if encoding == "triangle" else np.float32
    upper = np.empty(p * (p + 1) // 2, dtype=dtype)
    start = 0
    for i in range(p):
        row = H[i, i:]
        if encoding == "residual32":
            row = row - row.astype(np.float32)
        upper[start : start + p - i] = row
        start += p - i
    return {"upper": upper, "encoding": encoding}


def fits_float32(H: np.ndarray) -> bool:
    """Whether float32 keeps every entry of ``H`` to 2^-24 relative (no overflow, no subnormal).

    Features of extreme magnitude (the reader allows up to 1e150) give Hessian entries beyond
    float32's normal range; such a hospital sends its float64 triangle instead (the
    aggregator accepts both where float32 was asked for).
    """
    low, high = float(np.finfo(np.float32).tiny), float(np.finfo(np.float32).max) / 2
    for row in H:
        magnitude = np.abs(row)
        if magnitude.max() >= high or np.any((magnitude > 0) & (magnitude < low)):
            return False
    return True


# ------------------------------------------------------------------ at the aggregator
def is_packed(curvature: Any) -> bool:
    """Whether ``curvature`` is a packed triangle (a :func:`pack_upper` dict)."""
    return isinstance(curvature, dict) and "upper" in curvature


def add_packed(packed: list[dict[str, Any]]) -> np.ndarray:
    """Sum the hospitals' packed triangles in float64 (in order); return the packed sum."""
    total = np.array(packed[0]["upper"], dtype=np.float64)
    for part in packed[1:]:
        total += part["upper"]
    return total


def unpack_upper(upper: np.ndarray, n_params: int) -> np.ndarray:
    """Return the symmetric float64 ``p x p`` matrix whose upper triangle ``upper`` holds."""
    p = int(n_params)
    if upper.shape != (p * (p + 1) // 2,):
        raise ValueError(
            f"a packed triangle of {p} parameters has {p * (p + 1) // 2} numbers. "
            f"Got {upper.shape[0]}."
        )
    H = np.empty((p, p))
    start = 0
    for i in range(p):
        row = upper[start : start + p - i]
        H[i, i:] = row
        H[i:, i] = row
        start += p - i
    return H
