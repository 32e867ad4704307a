r"""Aliased (perfectly collinear) terms, found in the pooled information matrix.

A term is *aliased* when its column of the design is a linear combination of earlier columns,
so that the data cannot tell its effect from theirs: R's ``glm`` then reports its coefficient
as ``NA`` ("not defined because of singularities") and fits the model without it.

R finds these terms with a QR decomposition of the weighted design :math:`W^{1/2} X` with
*limited* pivoting (LINPACK's ``dqrdc2``): the columns are processed from left to right, and a
column whose part orthogonal to the columns kept so far has a norm below ``tol`` times its
own norm is moved to the end and left out. Which member of a collinear set is aliased
therefore follows the column order: the later one. R puts the intercept first.

The aggregator holds no design, only the information :math:`\mathcal I = X^\top W X` (the sum
of the hospitals' Hessians), so the same rule runs as a Cholesky factorisation of
:math:`\mathcal I` with the same limited pivoting: the squared norm of column :math:`j`'s
orthogonal part is the diagonal of the Schur complement :math:`S_{jj} = \mathcal I_{jj} -
\mathcal I_{jK} \mathcal I_{KK}^{-1} \mathcal I_{Kj}` (:math:`K`: the columns kept before
:math:`j`), and column :math:`j` is aliased when :math:`S_{jj} \le \mathrm{tol}^2\,
\mathcal I_{jj}`. The tolerance is ``1e-7`` on the norm ratio, R's default for ``qr()`` and
``lm()``. (R's ``glm`` uses ``min(1e-7, epsilon / 1000) = 1e-11`` on the QR of
:math:`W^{1/2} X`; a cross-product matrix cannot resolve ratios below about
:math:`\sqrt{\epsilon_{mach}} \approx 1.5 \cdot 10^{-8}`, because forming it squares them.)

Forming :math:`\mathcal I` squares the condition of the design, so rounding leaves an error
of about :math:`\epsilon_{mach} (1 + \lVert x_j \rVert)^2` in :math:`S_{jj}`
(:math:`x_j`: the column's coefficients on the kept columns, large when those are nearly
collinear). A column whose :math:`S_{jj}` is below ten times that floor is aliased too: with
the information matrix alone it cannot be told from an aliased one (a QR of the design could,
for a residual ratio down to R's ``glm`` tolerance).

When :math:`X_A = X_K B` for the aliased columns :math:`A`, :math:`B = \mathcal I_{KK}^{-1}
\mathcal I_{KA}` (the weights :math:`W` cancel), and any :math:`\theta` predicts as the
reduced model's :math:`\theta_K + B \theta_A` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pancreas_fl.exact.packed import PackedSymmetric

__all__ = ["ALIAS_TOL", "Aliasing", "find_aliased"]

#: Largest ratio of a column's residual norm to its own norm for which it counts as aliased.
ALIAS_TOL = 1e-7
_EPS = float(np.finfo(np.float64).eps)
#: Safety factor of the rounding-error floor (see :func:`_negligible`).
_NOISE = 10.0
#: Pivots below this (a residual ratio below 1 %) are checked against the rounding floor.
_BAND = 1e-4


@dataclass(frozen=True)
class Aliasing:
    r"""Which terms are estimable, which are aliased, and how.

    Attributes
    ----------
    kept : numpy.ndarray of int
        Indices of the estimable terms, in increasing order.
    aliased : numpy.ndarray of int
        Indices of the aliased terms, in increasing order (empty for a full-rank design).
    B : numpy.ndarray of shape (len(kept), len(aliased))
        :math:`X_A = X_K B`: column ``aliased[i]`` is ``sum_k B[k, i] * column kept[k]``.
    """

    kept: np.ndarray
    aliased: np.ndarray
    B: np.ndarray

    @property
    def rank(self) -> int:
        """Number of estimable terms (the rank of the information matrix)."""
        return int(self.kept.size)

    def reduced(self, theta: np.ndarray) -> np.ndarray:
        r"""Return the reduced model's coefficients :math:`\theta_K + B\theta_A`.

        They give the same predictions as ``theta``.
        """
        return theta[self.kept] + self.B @ theta[self.aliased]


def find_aliased(info, *, fit_intercept: bool, tol: float = ALIAS_TOL) -> Aliasing:
    r"""Aliased terms of a design, from its information matrix (see the module docstring).

    Parameters
    ----------
    info : array_like of shape (p, p) or PackedSymmetric
        Symmetric positive semi-definite :math:`X^\top W X` (packed: unpacked once, into
        the scaled matrix).
    fit_intercept : bool
        Whether the last term is the intercept: it is processed first, as R's column order
        has it (a constant feature is then aliased with the intercept, not the reverse).
    tol : float, default=ALIAS_TOL
        Largest residual-norm ratio of an aliased column.

    Returns
    -------
    Aliasing
    """
    packed = isinstance(info, PackedSymmetric)
    A = info if packed else np.asarray(info, dtype=np.float64)
    p = A.shape[0]
    order = [p - 1, *range(p - 1)] if fit_intercept and p > 0 else list(range(p))
    diag = A.diagonal() if packed else np.diag(A).copy()
    usable = np.isfinite(diag) & (diag > 0)
    scale = np.sqrt(np.where(usable, diag, 1.0))
    # unit diagonal: the criterion S_jj <= tol^2 A_jj becomes S_jj <= tol^2
    if packed:  # the same numbers in place: 0.5 (A + A^T) of the symmetric A is 2a halved
        S = A.unpack()
        S *= 2.0
        S *= 0.5
        S /= scale[:, None]
        S /= scale[None, :]
    else:
        S = 0.5 * (A + A.T) / scale[:, None] / scale[None, :]
    S[~usable, :] = 0.0
    S[:, ~usable] = 0.0
    limit = tol * tol
    if usable.all() and _full_rank(S[np.ix_(order, order)], limit):
        kept, aliased = list(range(p)), []
    else:
        kept, aliased = _limited_pivoting(S, order, usable, limit)
    kept_idx = np.array(sorted(kept), dtype=int)
    aliased_idx = np.array(sorted(aliased), dtype=int)
    if aliased_idx.size and kept_idx.size:
        A = A.unpack() if packed else A
        B = _solve_psd(A[np.ix_(kept_idx, kept_idx)], A[np.ix_(kept_idx, aliased_idx)])
    else:
        B = np.zeros((kept_idx.size, aliased_idx.size))
    return Aliasing(kept=kept_idx, aliased=aliased_idx, B=B)


def _full_rank(S: np.ndarray, limit: float) -> bool:
    """Whether no column is aliased or close to it: the fast path, one LAPACK Cholesky.

    The squared diagonal of the Cholesky factor is the Schur complement diagonal of each
    column given all earlier ones, the quantity the pivoting compares with its limit; any
    pivot in the band where rounding matters sends the matrix to the careful path.
    """
    try:
        L = np.linalg.cholesky(S)
    except np.linalg.LinAlgError:
        return False
    return bool(np.all(np.diag(L) ** 2 > max(limit, _BAND)))


def _limited_pivoting(
    S: np.ndarray, order: list[int], usable: np.ndarray, limit: float
) -> tuple[list[int], list[int]]:
    """Cholesky with R's limited pivoting: an aliased column is left out, the rest go on."""
    original = S
    S = S.copy()
    kept: list[int] = []
    aliased: list[int] = []
    for j in order:
        if not usable[j] or _negligible(S[j, j], original, kept, j, limit):
            aliased.append(j)
            continue
        kept.append(j)
        # one step of a right-looking Cholesky: the Schur complement of column j (rows and
        # columns already processed are updated too, and never read again)
        col = S[:, j] / np.sqrt(S[j, j])
        S -= np.outer(col, col)
    return kept, aliased


def _negligible(s_jj: float, S: np.ndarray, kept: list[int], j: int, limit: float) -> bool:
    r"""Check whether column ``j``'s computed Schur complement ``s_jj`` is negligible.

    It is when it is below the tolerance or below what rounding leaves in it.

    Perturbing the (unit-diagonal) matrix by :math:`\epsilon` moves :math:`S_{jj}` by about
    :math:`\epsilon (1 + \lVert x_j \rVert)^2`, :math:`x_j = S_{KK}^{-1} S_{Kj}` the column's
    coefficients on the kept columns (large when those are nearly collinear). It is computed
    only for a pivot in the band where that can matter.
    """
    if not s_jj > limit:
        return True
    if s_jj > _BAND or not kept:
        return False
    x = np.linalg.lstsq(S[np.ix_(kept, kept)], S[kept, j], rcond=None)[0]
    return s_jj <= _NOISE * _EPS * (1.0 + float(np.linalg.norm(x))) ** 2


def _solve_psd(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve ``A x = b`` for a symmetric positive definite ``A``, Jacobi-scaled."""
    scale = np.sqrt(np.diag(A))
    As = A / scale[:, None] / scale[None, :]
    x = np.linalg.solve(0.5 * (As + As.T), b / scale.reshape((-1,) + (1,) * (b.ndim - 1)))
    return x / scale.reshape((-1,) + (1,) * (b.ndim - 1))
