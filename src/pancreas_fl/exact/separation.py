r"""Signs of (quasi-)separation in an unpenalized logistic fit, from aggregates only.

When a hyperplane separates the classes (completely, or with ties on it: quasi-complete
separation), the log-likelihood keeps increasing along a direction :math:`r` and the
maximum-likelihood estimate does not exist: Newton's iterates behave as
:math:`\theta_k \approx \theta^* + t_k r` with :math:`t_k` growing by about one unit of the
linear predictor per round, while the coefficients outside :math:`r` converge. Two sums over
patients show it to the aggregator:

* the iterates themselves (the aggregator chose them): :func:`diverging_terms` names the
  terms whose coefficient still moved over the last rounds, away from where the fit started,
  measured in
  units of the linear predictor (the coefficient's change times the root mean square of its
  column, :func:`column_rms`), so the verdict does not depend on the features' units;
* the number of patients whose fitted probability is numerically 0 or 1
  (:func:`count_extreme`, the rule of R's ``glm.fit`` warning "fitted probabilities
  numerically 0 or 1 occurred"), summed over the hospitals.

A finite ``C`` (an L2 penalty) always has a unique, finite solution.
"""

from __future__ import annotations

import math

import numpy as np

from pancreas_fl.exact.packed import diagonal

__all__ = [
    "Z_EXTREME",
    "column_rms",
    "count_extreme",
    "diverging_terms",
]

#: R's ``binomial()$linkinv`` (C ``logit_linkinv``) clamps :math:`\eta` beyond
#: :math:`\pm 30` to a probability within ``DBL_EPSILON`` of 0 or 1, and ``glm.fit`` warns when
#: a fitted probability is within ``10 * DBL_EPSILON`` of 0 or 1, which happens exactly then
#: (:math:`\sigma(-30) = 9.4 \cdot 10^{-14}` is not).
Z_EXTREME = 30.0
#: A term still moves when it travelled at least this fraction of the farthest-travelling one.
_RELATIVE_MOVE = 1e-3
#: ... and it diverges when its move from the start is at least this fraction of that
#: distance (it went mostly one way).
_ONE_WAY = 0.5
#: Moves of the linear predictor below this (per round) are convergence noise.
_ABSOLUTE_MOVE = 1e-6


def count_extreme(z) -> int:
    r"""Count the patients whose fitted probability :math:`\sigma(z_i)` is numerically 0 or 1.

    Runs at a hospital; only the count leaves it. The rule is R's (see :data:`Z_EXTREME`).

    Parameters
    ----------
    z : array_like of shape (n,)
        Linear predictors :math:`\tilde x_i^\top \theta`.

    Returns
    -------
    int
        :math:`\#\{i : |z_i| > 30\}`.
    """
    z = np.asarray(z, dtype=np.float64)
    return int(np.count_nonzero(np.abs(z) > Z_EXTREME))


def column_rms(info0, n: int) -> np.ndarray:
    r"""Root mean square of each design column, from the information at :math:`\theta = 0`.

    At :math:`\theta = 0` every weight :math:`\sigma(1-\sigma)` is 1/4, so
    :math:`\mathcal I_{jj}(0) = \frac14 \sum_i \tilde x_{ij}^2`.

    Parameters
    ----------
    info0 : array_like of shape (p, p) or PackedSymmetric
        The pooled information (Hessian sum) at :math:`\theta = 0`.
    n : int
        Pooled number of patients.

    Returns
    -------
    numpy.ndarray of shape (p,)
    """
    diag = diagonal(info0)
    return 2.0 * np.sqrt(np.clip(diag, 0.0, None) / max(int(n), 1))


def diverging_terms(path, scale=None, origin=None) -> list[tuple[int, int]]:
    r"""Terms whose coefficient is still moving at the end of the fit, away from its start.

    Parameters
    ----------
    path : array_like of shape (m, p)
        The last ``m`` accepted iterates, oldest first (at least 3 to judge).
    scale : array_like of shape (p,), optional
        Per-term scale of a coefficient's change, e.g. :func:`column_rms`: a move of
        :math:`\Delta\theta_j` shifts the linear predictor by :math:`\Delta\theta_j x_{ij}`.
        Ones if omitted.
    origin : array_like of shape (p,), optional
        Where the fit started (its first accepted point); the first point of ``path`` if
        omitted. A term's direction is that of its whole move from there.

    Returns
    -------
    list of (int, int)
        ``(term index, sign)`` for every term that still moved over the path (it travelled
        at least ``1e-3`` times the farthest-travelling term's distance, and more than
        ``1e-6`` of the linear predictor per round) and went mostly one way (its move from
        ``origin`` is at least half of that distance: a term going back and forth is not
        diverging); ``sign`` is +1 (towards :math:`+\infty`) or -1. Empty when nothing keeps
        moving or ``m < 3``.

    Notes
    -----
    Near the end of floating-point resolution a diverging fit no longer makes progress: the
    likelihood is flat along the separating direction, and the last steps wander along it
    while every other coefficient has settled. How they wander depends on the last bits of
    the sums (another CPU's BLAS kernels make other ones), so their own net move is no
    evidence either way; the move from ``origin`` is, and it does not depend on those bits.
    """
    path = np.asarray(path, dtype=np.float64)
    if path.ndim != 2 or path.shape[0] < 3:
        return []
    weight = np.ones(path.shape[1]) if scale is None else np.asarray(scale, dtype=np.float64)
    start = path[0] if origin is None else np.asarray(origin, dtype=np.float64)
    net = (path[-1] - start) * weight
    travelled = np.abs(np.diff(path, axis=0)).sum(axis=0) * weight
    largest = float(np.max(travelled)) if travelled.size else 0.0
    if not math.isfinite(largest) or largest <= _ABSOLUTE_MOVE * (path.shape[0] - 1):
        return []
    keep = (
        (travelled >= _RELATIVE_MOVE * largest)
        & (travelled > _ABSOLUTE_MOVE * (path.shape[0] - 1))
        & (np.abs(net) >= _ONE_WAY * travelled)
    )
    return [(int(j), 1 if net[j] > 0 else -1) for j in np.flatnonzero(keep)]
