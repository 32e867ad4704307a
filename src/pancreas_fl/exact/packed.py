r"""The pooled curvature as the aggregator keeps it: one packed triangle, unpacked only to solve.

Above :data:`~pancreas_fl.exact.curvature.SQUARE_LIMIT_BYTES` each hospital sends the upper
triangle of its Hessian, row by row (:func:`~pancreas_fl.exact.curvature.pack_upper`). The
aggregator adds the triangles as they are (:func:`~pancreas_fl.exact.curvature.add_packed`)
and keeps the sum packed (:class:`PackedSymmetric`): the information at the last accepted
point and at the start point, which the GLM statistics need at the end, cost half a
``p x p`` matrix each. The one square matrix of a round is the penalized Hessian that the
solver scales and factorizes; at the end, the covariance.

The messages' checks (:mod:`pancreas_fl.exact.wire`) read a triangle in :func:`segments`,
runs of whole rows of about :data:`SEGMENT_ENTRIES` numbers, with the row and column of each
entry (:func:`segment_indices`): no ``p x p`` temporary per hospital.

Every number is the one the dense matrix held: an entry of the unpacked matrix is the
packed one, the diagonal is read in place, and the sum of two packed triangles is the
triangle of the sum (the same float64 additions, entry by entry).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from pancreas_fl.exact.curvature import unpack_upper

__all__ = [
    "SEGMENT_ENTRIES",
    "PackedSymmetric",
    "count_beyond",
    "count_nonfinite",
    "diagonal",
    "kept",
    "row_starts",
    "segment_indices",
    "segments",
    "triangle_diagonal",
]

#: Numbers per segment of a triangle read in pieces (the temporaries of a check: about 2 MB).
SEGMENT_ENTRIES = 2**16


def row_starts(n_params: int) -> np.ndarray:
    r"""Return where each row of the packed upper triangle starts, and its length at the end.

    Row ``i`` holds :math:`H_{ii}, \dots, H_{i,p-1}` at ``[starts[i], starts[i + 1])``.
    """
    p = int(n_params)
    starts = np.zeros(p + 1, dtype=np.int64)
    np.cumsum(np.arange(p, 0, -1, dtype=np.int64), out=starts[1:])
    return starts


def segments(n_params: int, entries: int = SEGMENT_ENTRIES) -> Iterator[tuple[int, int, int, int]]:
    """Yield ``(first_row, stop_row, start, stop)``: runs of whole rows of about ``entries``.

    ``[start, stop)`` is the run's slice of the packed triangle; every run has at least one row.
    """
    p = int(n_params)
    starts = row_starts(p)
    row = 0
    while row < p:
        stop_row = int(np.searchsorted(starts, starts[row] + entries, side="right")) - 1
        stop_row = min(max(stop_row, row + 1), p)
        yield row, stop_row, int(starts[row]), int(starts[stop_row])
        row = stop_row


def segment_indices(first_row: int, stop_row: int, n_params: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the row and the column of every entry of a run of rows (see :func:`segments`)."""
    p = int(n_params)
    rows = np.arange(first_row, stop_row, dtype=np.int64)
    lengths = p - rows
    row = np.repeat(rows, lengths)
    # column = row + position within the row
    first = np.cumsum(lengths) - lengths
    col = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(first, lengths) + row
    return row, col


def triangle_diagonal(upper: np.ndarray, n_params: int) -> np.ndarray:
    """Return the diagonal of a packed triangle (float64 or float32) in float64 (a new array)."""
    return upper[row_starts(n_params)[:-1]].astype(np.float64, copy=False)


@dataclass(frozen=True)
class PackedSymmetric:
    """A symmetric float64 ``p x p`` matrix held as its packed upper triangle (read-only).

    Attributes
    ----------
    upper : numpy.ndarray of shape (p (p + 1) / 2,)
        The rows of the upper triangle, each from its diagonal entry on.
    n_params : int
        ``p``.
    """

    upper: np.ndarray
    n_params: int

    def __post_init__(self) -> None:
        """Check the size; make the triangle read-only (it is shared, never copied)."""
        p = int(self.n_params)
        if self.upper.dtype != np.float64 or self.upper.shape != (p * (p + 1) // 2,):
            raise ValueError(
                f"a packed triangle of {p} parameters is a float64 array of "
                f"{p * (p + 1) // 2} numbers. Got {self.upper.dtype} {self.upper.shape}."
            )
        self.upper.flags.writeable = False  # shared by reference (state, statistics)

    @property
    def shape(self) -> tuple[int, int]:
        """``(p, p)``, the shape of the matrix it stands for."""
        return self.n_params, self.n_params

    def diagonal(self) -> np.ndarray:
        """Return the diagonal (a new array)."""
        return triangle_diagonal(self.upper, self.n_params)

    def unpack(self) -> np.ndarray:
        """Return the symmetric ``p x p`` matrix (a new array, the caller's to overwrite)."""
        return unpack_upper(self.upper, self.n_params)

    def __add__(self, other: Any) -> PackedSymmetric:
        """Add another packed matrix of the same size, entry by entry."""
        if not isinstance(other, PackedSymmetric) or other.n_params != self.n_params:
            return NotImplemented
        return PackedSymmetric(self.upper + other.upper, self.n_params)


def kept(matrix: Any) -> PackedSymmetric | np.ndarray:
    """Return a curvature sum to keep: packed, itself (never written); dense, a float64 copy."""
    if isinstance(matrix, PackedSymmetric):
        return matrix
    return np.array(matrix, dtype=np.float64)


def diagonal(matrix: Any) -> np.ndarray:
    """Return the diagonal of a square matrix: packed, a new array; dense, ``numpy.diag``'s view."""
    if isinstance(matrix, PackedSymmetric):
        return matrix.diagonal()
    return np.diag(np.asarray(matrix, dtype=np.float64))


def count_nonfinite(upper: np.ndarray, n_params: int) -> int:
    """Return how many numbers of a packed triangle are not finite (read in segments)."""
    return sum(
        stop - start - int(np.count_nonzero(np.isfinite(upper[start:stop])))
        for _, _, start, stop in segments(n_params)
    )


def count_beyond(
    upper: np.ndarray,
    n_params: int,
    root: np.ndarray,
    factor: float,
    apart: float | np.ndarray,
    extra: float | None = None,
) -> int:
    r"""Count the entries of the symmetric matrix beyond a bound, in both triangles.

    The bound of entry :math:`(j, k)` is :math:`r_j r_k \cdot \text{factor} + a_{jk}`
    (:math:`+\,\text{extra}`), with :math:`a_{jk}` = ``apart`` (a float) or
    :math:`a_j + a_k` (a vector), evaluated in that order: the numbers a check of the
    unpacked matrix compares with (``np.outer(r, r) * factor + (a[:, None] + a[None, :])``),
    and the same count (an entry off the diagonal counts twice, as it stands twice there),
    without a ``p x p`` temporary.

    Parameters
    ----------
    upper : numpy.ndarray of shape (p (p + 1) / 2,)
        The packed upper triangle (float64 or float32), finite.
    n_params : int
    root : numpy.ndarray of shape (p,)
    factor : float
    apart : float or numpy.ndarray of shape (p,)
    extra : float, optional
    """
    p = int(n_params)
    diagonal_over = off_over = 0
    for first, stop_row, start, stop in segments(p):
        rows, cols = segment_indices(first, stop_row, p)
        bound = root[rows] * root[cols] * factor
        if np.ndim(apart):
            bound += apart[rows] + apart[cols]
        else:
            bound += apart
        if extra is not None:
            bound += extra
        beyond = ~(np.abs(upper[start:stop]) <= bound)
        on_diagonal = int(np.count_nonzero(beyond[rows == cols]))
        diagonal_over += on_diagonal
        off_over += int(np.count_nonzero(beyond)) - on_diagonal
    return diagonal_over + 2 * off_over
