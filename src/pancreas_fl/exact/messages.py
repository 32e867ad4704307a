"""What the exact strategy's nodes send each other, both ways.

Every message is a plain dict of numbers, numpy arrays and ``None`` (FLAME pickles it): sums
over a hospital's patients, counts, and the point to evaluate next. Never a patient record.
The messages both strategies share (the round-0 introduction, problems, the setup round) are
in :mod:`pancreas_fl.messages`.
"""

from __future__ import annotations

from typing import TypedDict

import numpy as np

__all__ = [
    "DiagMoments",
    "ExactBroadcast",
    "ExactUpdate",
    "FeatureMoments",
    "FirthRequest",
    "LocalTerms",
    "PackedTriangle",
    "Scaler",
]


# --------------------------------------------------------------------- hospital -> aggregator
class DiagMoments(TypedDict):
    """The O(p) curvature summary for the L-BFGS preconditioner (``hessian="diag"``)."""

    s: float
    r"""\sum_i v_i with v_i = \sigma_i (1 - \sigma_i)."""
    sx: np.ndarray
    r"""``(n_features,)``: \sum_i v_i x_i."""
    sxx: np.ndarray
    r"""``(n_features,)``: \sum_i v_i x_i^2 (elementwise)."""


class PackedTriangle(TypedDict):
    """Newton's curvature, packed (:func:`~pancreas_fl.exact.curvature.pack_upper`)."""

    upper: np.ndarray
    """``(p (p + 1) / 2,)``: the upper triangle of the Hessian sum, row by row."""
    encoding: str
    """``"triangle"`` (float64), ``"triangle32"`` (float32) or ``"residual32"`` (float32
    residual of the float32 triangle, for the statistics round)."""


class LocalTerms(TypedDict):
    """Sums over the hospital's patients at one point (:func:`~pancreas_fl.exact.local_terms`)."""

    n: int
    n_pos: int
    loss: float
    """Sum of the per-patient log-loss (not multiplied by ``C``)."""
    grad: np.ndarray
    """``(p,)``: sum of the per-patient gradients."""
    hess: np.ndarray | PackedTriangle | DiagMoments | None
    """Newton: the ``(p, p)`` Hessian sum or :class:`PackedTriangle`; L-BFGS:
    :class:`DiagMoments`."""


class FeatureMoments(TypedDict):
    """Per-feature count, mean and sum of squared deviations (standardization, round 0)."""

    n: int
    mean: np.ndarray
    m2: np.ndarray


class _GramRows(TypedDict, total=False):
    """The optional ``gram`` field of :class:`ExactUpdate` (Böhning's bound)."""

    gram: np.ndarray
    r"""Only in the rounds whose broadcast asks for Gram rows
    (:mod:`~pancreas_fl.exact.bohning`): rows ``gram = (start, stop)`` of the upper triangle
    of the hospital's :math:`\tilde X^\top \tilde X`, packed row by row from the diagonal on,
    float32 (float64 where float32 would lose an entry). Sent once over the first rounds; the
    diagonal is :math:`\sum_i \tilde x_{ij}^2`, as the moments at zero say."""


class ExactUpdate(_GramRows):
    """exact, every round: the sums at the point asked for.

    In round 0 of a standardized fit: the feature moments instead.
    """

    terms: LocalTerms | None
    moments: FeatureMoments | None
    n_extreme: int | None
    r"""With ``terms``: the number of the hospital's patients whose fitted probability at the
    point asked for is numerically 0 or 1, :math:`\#\{i : |\tilde x_i^\top\theta| > 30\}`
    (:func:`~pancreas_fl.exact.separation.count_extreme`, R's ``glm.fit`` rule), a sum over
    patients of an indicator. Without a penalty it tells the aggregator that the
    maximum-likelihood estimate does not exist or is not resolvable ((quasi-)separation),
    and withholds the Wald table. It reveals no more than the gradient sum does (which, at
    a steep enough point, counts the same patients). ``None`` with ``moments``."""
    firth: np.ndarray | None
    r"""``penalty="firth"`` only (:mod:`~pancreas_fl.exact.firth`), as the broadcast's
    ``firth`` asks: with ``terms``, the ``(p, p, p)`` third-moment sum
    :math:`\sum_i w_i(\frac12 - \pi_i)\tilde x_i^{\otimes 3}`; or alone (two-round variant),
    the ``(p,)`` sum :math:`\sum_i h_i(\frac12 - \pi_i)\tilde x_i`. ``None`` otherwise."""


# --------------------------------------------------------------------- aggregator -> hospitals
class Scaler(TypedDict):
    """The pooled standardization (as ``StandardScaler`` on the pooled data)."""

    mean: np.ndarray
    scale: np.ndarray


class FirthRequest(TypedDict):
    """What Firth's correction needs from the hospitals at the point asked for."""

    send: str
    """``"third"``: the sums and the third-moment sum (one round per step, up to
    :data:`~pancreas_fl.exact.firth.TENSOR_LIMIT` parameters); ``"terms"``: the sums only,
    the first round of a two-round step; ``"hat"``: the hat-weighted correction only, its
    second round."""
    info_inv: np.ndarray | None
    """With ``"hat"``: the ``(p, p)`` inverse of the pooled information at the point."""


class _GramRequest(TypedDict, total=False):
    """The optional ``gram`` field of :class:`ExactBroadcast` (Böhning's bound)."""

    gram: tuple[int, int]
    """``(start, stop)``: the rows of the Gram triangle to send with the sums, one of the
    plan's chunks (:attr:`~pancreas_fl.exact.curvature.CurvaturePlan.gram_rows`); absent
    when none are asked for."""


class ExactBroadcast(_GramRequest):
    """exact: the point every hospital evaluates next, and what curvature to return."""

    next_theta: np.ndarray
    """``(p,)``: coefficients, then the intercept when ``fit_intercept``."""
    curvature: str
    """Newton: ``"full"`` (the Hessian sum), ``"triangle"``, ``"triangle32"`` or
    ``"residual32"`` (:class:`PackedTriangle`, as the plan of
    :func:`~pancreas_fl.exact.curvature.plan_curvature` says); L-BFGS: ``"diag"``
    (:class:`DiagMoments`), or with Böhning's bound ``"diag"`` at the start point and
    ``"none"`` (no curvature, ``hess`` is ``None``) after it."""
    scaler: Scaler | None
    """Set with ``standardize=True``: the hospitals standardize once, in round 1."""
    firth: FirthRequest | None
    """``penalty="firth"`` only: what the hospitals add for Firth's correction."""
