r"""Böhning's curvature bound, shared once: the L-BFGS preconditioner above the curvature budget.

When Newton's curvature does not fit the message budget (or a node's memory), the exact
strategy runs L-BFGS, whose rounds depend on its initial inverse Hessian :math:`H_0`. The
per-round centred diagonal (:class:`~pancreas_fl.exact.solver.CentredDiagonal`) ignores the
features' correlations: on wide expression data L-BFGS then needs hundreds of rounds. But the
logistic loss has a *fixed* curvature bound (Böhning & Lindsay, "Monotonicity of quadratic-
approximation algorithms", *Ann. Inst. Statist. Math.* 40, 1988): :math:`v_i = \sigma_i (1 -
\sigma_i) \le 1/4`, so for every :math:`\theta`

.. math::

    \nabla^2 F(\theta) = C \tilde X^\top V \tilde X + P \preceq
    B = \tfrac{C}{4} \tilde X^\top \tilde X + P,

with :math:`\tilde X` the pooled design (intercept column included) and :math:`P` the
penalty's Hessian. :math:`B` does not depend on :math:`\theta`, so it crosses once: each
hospital sends the upper triangle of its Gram matrix :math:`\tilde X_k^\top \tilde X_k`
(float32: it only preconditions; the gradient stays float64, so the fixed point and the
certificate are those of the gradient sums) in chunks of rows (:func:`gram_chunks`), one a
round, in the first rounds of the fit. The aggregator adds them in float64
(:class:`GramAssembly`), factorizes :math:`B` once (:class:`BohningPreconditioner`) and runs
L-BFGS with :math:`H_0 = B^{-1}`, scaled by Shanno and Phua's :math:`s^\top y / y^\top B^{-1}
y` (Nocedal & Wright, *Numerical Optimization*, 2nd ed., Algorithm 7.4 and eq. 7.20, in the
metric of :math:`B`). Until the last chunk has arrived :math:`H_0` is the centred diagonal of
:math:`B`, from the moments at zero, where :math:`v_i = 1/4`.

Rounds (:class:`BohningRounds`):

* the first model round (the start point, zeros): the gradient, the ``"diag"`` moments (the
  wire checks' bounds and the certificate's trace come from them) and the first chunk;
* the next rounds: the gradient and the next chunk, no per-round curvature (``"none"``);
* once the triangle is complete: the gradient alone, :math:`8p` bytes.

Measured (``python benchmarks/wide.py --sizes 1100 --max-message-mb 1``, 3 hospitals of
2,200 patients, the triangle in 3 chunks of at most 1 MB): 37 and 36 rounds without and with
an intercept, against 324 and 351 for the per-round centred diagonal (``--solver lbfgs``),
with a third of the bytes; 3e-11 and 1.8e-11 from the pooled scikit-learn fit (README, *Wide
gene panels*).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pancreas_fl.exact.cholesky import lower_inverse, scaled_cholesky
from pancreas_fl.logistic import design_rows

__all__ = [
    "BohningPreconditioner",
    "BohningRounds",
    "GramAssembly",
    "gram_chunks",
    "local_gram_rows",
    "triangle_offset",
]

#: Bytes per entry of the Gram triangle as it crosses (float32).
ENTRY_BYTES = 4
#: Patients per block of the hospital's Gram product.
_ROWS = 1024


def triangle_offset(row: int, n_params: int) -> int:
    """Return where row ``row`` of a packed upper triangle (row by row) starts."""
    return row * n_params - row * (row - 1) // 2


def gram_chunks(
    n_params: int, first_bytes: float, round_bytes: float
) -> tuple[tuple[int, int], ...] | None:
    """Split the upper triangle's rows into the chunks that cross, one per round.

    Rows are taken in order, as many as fit: at most ``first_bytes`` in the first chunk (it
    rides with the moments at zero) and ``round_bytes`` in each later one, at
    :data:`ENTRY_BYTES` per entry (row ``i`` has ``p - i`` entries).

    Returns
    -------
    tuple of (int, int) or None
        ``(start, stop)`` rows per chunk; ``None`` when the first row (``p`` entries) does not
        fit.
    """
    p = int(n_params)
    chunks: list[tuple[int, int]] = []
    start, budget = 0, first_bytes
    while start < p:
        stop, size = start, 0
        while stop < p and size + ENTRY_BYTES * (p - stop) <= budget:
            size += ENTRY_BYTES * (p - stop)
            stop += 1
        if stop == start:  # not even one row fits
            return None
        chunks.append((start, stop))
        start, budget = stop, round_bytes
    return tuple(chunks)


# ------------------------------------------------------------------ at the hospital
def local_gram_rows(
    X: np.ndarray,
    rows: tuple[int, int],
    *,
    fit_intercept: bool,
    mean: Any = None,
    scale: Any = None,
) -> np.ndarray:
    r"""Return rows ``rows`` of the upper triangle of :math:`\tilde X^\top \tilde X`, packed.

    Computed at a hospital, block by block of patients: the chunk's rows of the product only
    (:math:`m (p - a)` numbers for rows :math:`[a, a + m)`), never the ``p x p`` matrix.

    Parameters
    ----------
    X : numpy.ndarray of shape (n, d)
        The hospital's features, float64.
    rows : (int, int)
        ``(start, stop)``: the triangle's rows.
    fit_intercept : bool
        The design's last column is ones.
    mean, scale : numpy.ndarray of shape (d,), optional
        The pooled standardization, as :func:`~pancreas_fl.exact.sums.local_terms` takes it.

    Returns
    -------
    numpy.ndarray
        The rows' entries from the diagonal on, row by row: float32, or float64 where float32
        would lose an entry (beyond its normal range).
    """
    start, stop = rows
    n, d = X.shape
    p = d + fit_intercept
    scaler = None if mean is None else (np.asarray(mean), np.asarray(scale))
    block = max(1, min(_ROWS, n))
    design = np.empty((block, p)) if fit_intercept or scaler is not None else None
    product = np.zeros((stop - start, p - start))
    for first in range(0, n, block):
        Xd = design_rows(X[first : first + block], design, fit_intercept, scaler)
        product += Xd[:, start:stop].T @ Xd[:, start:]
    packed = np.empty(triangle_offset(stop, p) - triangle_offset(start, p))
    at = 0
    for i in range(stop - start):
        packed[at : at + p - start - i] = product[i, i:]
        at += p - start - i
    return packed.astype(np.float32) if _fits_float32(packed) else packed


def _fits_float32(values: np.ndarray) -> bool:
    """Whether float32 keeps every value to 2^-24 relative (no overflow, no subnormal)."""
    magnitude = np.abs(values)
    low, high = float(np.finfo(np.float32).tiny), float(np.finfo(np.float32).max) / 2
    return not (magnitude.max(initial=0.0) >= high or np.any((magnitude > 0) & (magnitude < low)))


# ------------------------------------------------------------------ at the aggregator
class GramAssembly:
    """The pooled Gram triangle, chunk by chunk (summed over hospitals in float64).

    Parameters
    ----------
    n_params : int
    chunks : tuple of (int, int)
        The rows of each chunk, in the order they cross (:func:`gram_chunks`).
    """

    def __init__(self, n_params: int, chunks: tuple[tuple[int, int], ...]) -> None:
        self.n_params = int(n_params)
        self.chunks = chunks
        self.received = 0
        self.upper: np.ndarray | None = np.zeros(self.n_params * (self.n_params + 1) // 2)

    @property
    def rows(self) -> tuple[int, int] | None:
        """The chunk to ask for next (``None`` once every chunk arrived)."""
        return self.chunks[self.received] if self.received < len(self.chunks) else None

    @property
    def complete(self) -> bool:
        """Whether every chunk arrived."""
        return self.received == len(self.chunks)

    def add(self, parts: list[np.ndarray]) -> None:
        """Add the hospitals' packed rows of the chunk asked for (in the order given)."""
        start, stop = self.rows
        a, b = triangle_offset(start, self.n_params), triangle_offset(stop, self.n_params)
        total = self.upper[a:b]
        for part in parts:
            total += part
        self.received += 1


class BohningPreconditioner:
    r"""Apply :math:`B^{-1}`, :math:`B = \frac{C}{4} \tilde X^\top \tilde X + P` (Böhning's bound).

    :math:`B` is factorized once, Jacobi-scaled (:math:`S = \operatorname{diag}(B)^{1/2}`,
    :math:`S^{-1} B S^{-1} = L L^\top`, with an increasing ridge as in
    :func:`~pancreas_fl.exact.solver.newton_direction` should it be singular: collinear
    features without a penalty); then :math:`B^{-1} v = S^{-1} L^{-\top} L^{-1} S^{-1} v`,
    :math:`O(p^2)` per application.

    Parameters
    ----------
    upper : numpy.ndarray of shape (p (p + 1) / 2,)
        The pooled Gram triangle, packed (:class:`GramAssembly`); read once.
    n_params : int
    C : float
        The factor of the loss sum in :math:`F` (1 without a penalty).
    penalty_diag : numpy.ndarray of shape (p,)
        The diagonal of :math:`P` (0 for the intercept).

    Attributes
    ----------
    ridge : float
        The ridge the factorization needed (0 for a definite :math:`B`).
    """

    def __init__(
        self, upper: np.ndarray, n_params: int, *, C: float, penalty_diag: np.ndarray
    ) -> None:
        p = int(n_params)
        B = np.zeros((p, p))
        for i in range(p):  # the lower triangle, which Cholesky reads
            B[i:, i] = upper[triangle_offset(i, p) : triangle_offset(i + 1, p)]
        B *= C / 4.0
        B[np.diag_indices(p)] += penalty_diag
        self.scale, L, self.ridge = scaled_cholesky(B)
        del B
        # no ridge up to 0.01 made it definite: the Jacobi scaling alone
        self.inverse = None if L is None else lower_inverse(L)

    def __call__(self, v: np.ndarray) -> np.ndarray:
        r""":math:`B^{-1} v`."""
        u = v / self.scale
        if self.inverse is not None:
            u = self.inverse.T @ (self.inverse @ u)
        return u / self.scale


class BohningRounds:
    """The aggregator's side of the shared bound: what to ask for, and the preconditioner.

    Parameters
    ----------
    n_params : int
    chunks : tuple of (int, int)
        The plan's chunks (:attr:`~pancreas_fl.exact.curvature.CurvaturePlan.gram_rows`).
    """

    def __init__(self, n_params: int, chunks: tuple[tuple[int, int], ...]) -> None:
        self.gram = GramAssembly(n_params, chunks)
        self.precondition: BohningPreconditioner | None = None

    @property
    def rows(self) -> tuple[int, int] | None:
        """The Gram rows the hospitals send in the next round (``None``: none)."""
        return self.gram.rows

    @property
    def curvature(self) -> str:
        """What per-round curvature they send: the moments with the first chunk, else none."""
        return "diag" if self.gram.received == 0 else "none"

    def pool(self, updates: dict[str, Any], solver: Any, moments: dict | None) -> None:
        """Take the round's chunk and set the solver's initial inverse Hessian.

        Before ``solver.update``: the centred diagonal of the moments at zero (the first
        model round) until the triangle is complete, then :math:`B^{-1}`.
        """
        if self.rows is not None:
            self.gram.add([update["gram"] for update in updates.values()])
        if isinstance(moments, dict) and self.precondition is None:
            solver.fix_preconditioner(moments=moments)
        if self.gram.complete and self.precondition is None:
            self.precondition = BohningPreconditioner(
                self.gram.upper,
                self.gram.n_params,
                C=solver.loss_factor,
                penalty_diag=solver.penalty_diag,
            )
            self.gram.upper = None  # the factor is all the solver needs
            solver.fix_preconditioner(self.precondition)
