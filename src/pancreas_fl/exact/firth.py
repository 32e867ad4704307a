r"""Firth's penalized likelihood (``penalty="firth"``): the bias-reduced pooled fit, federated.

Firth (1993) maximises the log-likelihood penalized by Jeffreys' invariant prior,

.. math::

    \ell^*(\theta) = \ell(\theta) + \tfrac12 \log\det \mathcal I(\theta),
    \qquad \mathcal I(\theta) = \sum_i w_i \tilde x_i \tilde x_i^\top,
    \quad w_i = \pi_i (1 - \pi_i),

whose maximum exists and is finite for every data set where the design has full rank, also
under (quasi-)complete separation, and whose estimate has no first-order (:math:`O(n^{-1})`)
bias. It is R's ``logistf`` and ``brglm2`` (``method="brglmFit", type="AS_mean"``: for the
logit link the mean-bias-reducing adjusted score is the gradient of :math:`\ell^*`).

The gradient
------------
The modified score is

.. math::

    U^*(\theta) = \sum_i \bigl(y_i - \pi_i + h_i(\tfrac12 - \pi_i)\bigr)\tilde x_i,
    \qquad h_i = w_i\, \tilde x_i^\top \mathcal I^{-1} \tilde x_i ,

with :math:`h_i` the diagonal of the hat matrix. The correction is a contraction of a
third-moment sum with the *pooled* inverse information:

.. math::

    \sum_i h_i(\tfrac12 - \pi_i)\tilde x_i = T : \mathcal I^{-1},
    \qquad T = \sum_k T_k, \quad
    T_k = \sum_{i \in k} w_i (\tfrac12 - \pi_i)\, \tilde x_i \otimes \tilde x_i \otimes \tilde x_i ,

that is :math:`(T : \mathcal I^{-1})_a = \sum_{b,c} T_{abc} (\mathcal I^{-1})_{bc}`. Each
hospital sends :math:`T_k` (:func:`local_third_moments`) with its sums
(:func:`~pancreas_fl.exact.sums.local_terms`) at the same point, so one round per step
suffices: the aggregator forms :math:`\mathcal I`, :math:`\log\det\mathcal I` and the
correction (:func:`penalized_terms`) from the pooled sums. :math:`T_k` is :math:`p^3`
floats; up to :data:`TENSOR_LIMIT` parameters (1 MB per hospital and round) that is the
protocol. Above it (up to the Newton solver's limit) each step takes two rounds: the
hospitals first send their usual sums, the aggregator broadcasts :math:`\mathcal I^{-1}`
at the same point, and the hospitals return the :math:`p` numbers
:math:`\sum_{i\in k} h_i(\tfrac12 - \pi_i)\tilde x_i` (:func:`local_hat_correction`).

The solver
----------
The aggregator minimises :math:`F = -\ell^*` with the federated solver's Newton method and
Armijo line search, with :math:`\mathcal I` in place of the Hessian of :math:`F` (the
modified Fisher scoring of ``logistf`` and ``brglm2``: the penalty's own curvature would need
fourth moments; it is :math:`O(p/n)` relative to :math:`\mathcal I`, so the iteration still
converges fast, linearly: 7 to 35 rounds on the tested tables, the most under complete
separation; the step criterion then leaves a relative error of a few times ``tol``, 3e-8 at
the default). :math:`\mathcal I` is positive definite wherever :math:`\ell^*` is finite, so
every step is a descent direction. A point where :math:`\mathcal I` is
numerically singular has :math:`F = +\infty` and is rejected by the line search.

Statistics
----------
As ``logistf`` and ``brglm2``: Wald standard errors, z, p-values and 95 % intervals from
:math:`\mathcal I(\hat\theta)^{-1}`; the penalized log-likelihood :math:`\ell^*(\hat\theta)`
beside the log-likelihood; the penalized likelihood-ratio test
:math:`2[\ell^*(\hat\theta) - \ell^*(\hat\theta_0)]` against the null model fitted with the
same penalized likelihood (every coefficient but the intercept fixed at 0; ``logistf``'s
null model, so the test compares nested maxima of one objective and is never negative) on
:math:`p - 1` degrees of freedom (:math:`p` without intercept). Along the null model every
patient has the same :math:`\pi`, so :math:`\mathcal I = \pi(1-\pi)\tilde X^\top\tilde X` and
its maximum is in closed form (:func:`null_penalized_loglik`): no extra round.

Aggregates only cross, as for the other sums: :math:`T_k` and the hat-weighted sum are sums
over the hospital's patients, computed after the same disclosure guards.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pancreas_fl.errors import OutOfStepError
from pancreas_fl.exact.glm import chi2_sf
from pancreas_fl.exact.sums import sigmoid
from pancreas_fl.logistic import BLOCK_BYTES, design_rows

__all__ = [
    "NOTE",
    "TENSOR_LIMIT",
    "check_request",
    "first_request",
    "firth_summary",
    "inverse_information",
    "local_hat_correction",
    "local_sums",
    "local_third_moments",
    "logdet",
    "null_penalized_loglik",
    "penalized_terms",
    "third_moment_correction",
]

#: Up to this many parameters each hospital sends its third-moment sum, :math:`p^3` floats
#: (1 MB at p = 50, growing cubically: 8 MB at p = 100, and an O(n p^3) sum at the
#: hospital): one round per step. Above it, two rounds per step with O(p^2) numbers each
#: (:func:`local_hat_correction`).
TENSOR_LIMIT = 50


def _blocks(X: np.ndarray, theta: np.ndarray, fit_intercept: bool, mean: Any, scale: Any, width):
    """Yield the design's rows block by block (at most :data:`BLOCK_BYTES` of ``width``)."""
    n, p = X.shape[0], theta.shape[0]
    scaler = None if mean is None else (np.asarray(mean, float), np.asarray(scale, float))
    rows = max(1, min(BLOCK_BYTES // (8 * width), n))
    design = np.empty((rows, p)) if fit_intercept or scaler is not None else None
    for start in range(0, n, rows):
        Xd = design_rows(X[start : start + rows], design, fit_intercept, scaler)
        z = Xd @ theta
        yield Xd, sigmoid(z), sigmoid(-z)


def local_third_moments(
    X: Any, theta: Any, *, fit_intercept: bool, mean: Any = None, scale: Any = None
) -> np.ndarray:
    r"""Sum :math:`w_i(\frac12 - \pi_i)\,\tilde x_i^{\otimes 3}` over one hospital's patients.

    Parameters
    ----------
    X : array_like of shape (n, d)
        The hospital's raw features.
    theta : array_like of shape (d + fit_intercept,)
        The point asked for (intercept last).
    fit_intercept : bool
    mean, scale : array_like of shape (d,), optional
        The pooled standardization (as for :func:`~pancreas_fl.exact.sums.local_terms`).

    Returns
    -------
    numpy.ndarray of shape (p, p, p)
        Symmetric in its three indices. Zeros for a hospital without patients.
    """
    X = np.asarray(X, dtype=np.float64)
    theta = np.asarray(theta, dtype=np.float64).reshape(-1)
    p = theta.shape[0]
    total = np.zeros((p * p, p))
    for Xd, prob, rest in _blocks(X, theta, fit_intercept, mean, scale, p * p):
        c = prob * rest * (0.5 - prob)
        outer = (Xd[:, :, None] * Xd[:, None, :]).reshape(Xd.shape[0], p * p)
        total += (outer * c[:, None]).T @ Xd
    return total.reshape(p, p, p)


def local_hat_correction(
    X: Any,
    theta: Any,
    info_inv: Any,
    *,
    fit_intercept: bool,
    mean: Any = None,
    scale: Any = None,
) -> np.ndarray:
    r"""Sum :math:`h_i(\frac12 - \pi_i)\tilde x_i` at one hospital, given the pooled inverse.

    The two-round variant (more than :data:`TENSOR_LIMIT` parameters):
    :math:`h_i = w_i \tilde x_i^\top \mathcal I^{-1} \tilde x_i` with the inverse of the
    *pooled* information the aggregator broadcast for the same point.

    Returns
    -------
    numpy.ndarray of shape (p,)
    """
    X = np.asarray(X, dtype=np.float64)
    theta = np.asarray(theta, dtype=np.float64).reshape(-1)
    info_inv = np.asarray(info_inv, dtype=np.float64)
    p = theta.shape[0]
    total = np.zeros(p)
    for Xd, prob, rest in _blocks(X, theta, fit_intercept, mean, scale, 2 * p):
        h = prob * rest * np.einsum("ij,ij->i", Xd @ info_inv, Xd)
        total += Xd.T @ (h * (0.5 - prob))
    return total


def local_sums(
    X: Any,
    theta: Any,
    request: dict | None,
    *,
    fit_intercept: bool,
    mean: Any = None,
    scale: Any = None,
) -> np.ndarray | None:
    """Return what the aggregator's request asks of a hospital (checked by :func:`check_request`).

    The third-moment sum (``"third"``), the hat-weighted sums (``"hat"``), or ``None``
    (``"terms"``, or no request: ``penalty="l2"``).
    """
    send = None if request is None else request["send"]
    scaler = {"mean": mean, "scale": scale}
    if send == "third":
        return local_third_moments(X, theta, fit_intercept=fit_intercept, **scaler)
    if send == "hat":
        return local_hat_correction(
            X, theta, request["info_inv"], fit_intercept=fit_intercept, **scaler
        )
    return None


def _scaled_cholesky(info: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Cholesky factor of the Jacobi-scaled information and the scale; ``None`` if not PD."""
    info = np.asarray(info, dtype=np.float64)
    d = np.diag(info)
    if not np.all(np.isfinite(info)) or np.any(d <= 0.0):
        return None
    s = np.sqrt(d)
    scaled = info / s[:, None] / s[None, :]
    try:
        L = np.linalg.cholesky(0.5 * (scaled + scaled.T))
    except np.linalg.LinAlgError:
        return None
    if np.min(np.diag(L)) <= 0.0 or not np.all(np.isfinite(L)):
        return None
    return L, s


def logdet(info: Any) -> float:
    r""":math:`\log\det\mathcal I`, or :math:`-\infty` when it is not positive definite."""
    factor = _scaled_cholesky(info)
    if factor is None:
        return -math.inf
    L, s = factor
    return float(2.0 * np.sum(np.log(np.diag(L))) + 2.0 * np.sum(np.log(s)))


def _inverse(info: Any) -> np.ndarray | None:
    """Return the inverse of a positive definite information matrix, or ``None``."""
    factor = _scaled_cholesky(info)
    if factor is None:
        return None
    L, s = factor
    L_inv = np.linalg.solve(L, np.eye(L.shape[0]))
    inv = (L_inv.T @ L_inv) / s[:, None] / s[None, :]
    return 0.5 * (inv + inv.T)


def third_moment_correction(third: Any, info: Any) -> np.ndarray | None:
    r""":math:`T : \mathcal I^{-1} = \sum_i h_i(\frac12 - \pi_i)\tilde x_i` from the pooled sums.

    ``None`` when :math:`\mathcal I` is not positive definite.
    """
    inv = _inverse(info)
    if inv is None:
        return None
    return np.tensordot(np.asarray(third, dtype=np.float64), inv, axes=([1, 2], [0, 1]))


def inverse_information(info: Any) -> np.ndarray | None:
    r"""Return :math:`\mathcal I^{-1}` for the two-round variant's broadcast (``None``: not PD)."""
    return _inverse(info)


def penalized_terms(loss: float, grad: Any, info: Any, correction: Any) -> tuple[float, np.ndarray]:
    r"""Return :math:`F = -\ell^*` and :math:`\nabla F` from the pooled sums.

    Parameters
    ----------
    loss : float
        :math:`\sum_i \ell_i = -\ell(\theta)`.
    grad : array_like of shape (p,)
        :math:`\sum_i (\pi_i - y_i)\tilde x_i`.
    info : array_like of shape (p, p)
        :math:`\mathcal I(\theta)`.
    correction : array_like of shape (p,) or None
        :math:`\sum_i h_i(\frac12 - \pi_i)\tilde x_i` (``None`` where :math:`\mathcal I` is not
        positive definite).

    Returns
    -------
    tuple of (float, numpy.ndarray)
        :math:`F = \sum_i\ell_i - \frac12\log\det\mathcal I` (:math:`+\infty` where
        :math:`\mathcal I` is not positive definite) and :math:`\nabla F = \sum_i (\pi_i -
        y_i)\tilde x_i - \sum_i h_i(\frac12 - \pi_i)\tilde x_i` (NaN there): the solver then
        treats the point as not finite and shortens its step.
    """
    grad = np.asarray(grad, dtype=np.float64)
    half_logdet = 0.5 * logdet(info)
    if correction is None or not math.isfinite(half_logdet):
        return math.inf, np.full_like(grad, np.nan)
    return float(loss) - half_logdet, grad - np.asarray(correction, dtype=np.float64)


def null_penalized_loglik(n: int, n_pos: int, design_info: Any, *, fit_intercept: bool) -> float:
    r"""Return the penalized log-likelihood of the null model, :math:`\ell^*(\hat\theta_0)`.

    With an intercept, :math:`\theta_0 = (0, \dots, 0, b)`: every patient has
    :math:`\pi = \sigma(b)` and :math:`\mathcal I = 4\pi(1-\pi)\, \mathcal I_0`, with
    :math:`\mathcal I_0 = \tilde X^\top\tilde X/4` the information at :math:`\theta = 0`, so

    .. math::

        \ell^*(b) = k\log\pi + (n - k)\log(1 - \pi) + \tfrac p2 \log(4\pi(1-\pi))
        + \tfrac12\log\det\mathcal I_0,

    maximal at :math:`\hat\pi = (k + p/2)/(n + p)` (:math:`k` positive labels, :math:`p`
    parameters of the full model). Without intercept the null model is :math:`\theta = 0`:
    :math:`-n\log 2 + \frac12\log\det\mathcal I_0`.

    Parameters
    ----------
    n, n_pos : int
        Pooled patients and positive labels.
    design_info : array_like of shape (p, p)
        :math:`\mathcal I_0`, the pooled information at :math:`\theta = 0`.
    fit_intercept : bool

    Returns
    -------
    float
    """
    info0 = np.asarray(design_info, dtype=np.float64)
    p = info0.shape[0]
    base = 0.5 * logdet(info0)
    if not fit_intercept:
        return -n * math.log(2.0) + base
    pi = (n_pos + 0.5 * p) / (n + p)
    return (
        n_pos * math.log(pi)
        + (n - n_pos) * math.log1p(-pi)
        + 0.5 * p * math.log(4.0 * pi * (1.0 - pi))
        + base
    )


def first_request(n_params: int) -> dict:
    """Return what the hospitals send with their sums: the third-moment sum, or nothing yet.

    The :class:`~pancreas_fl.exact.messages.FirthRequest` of a step's first round:
    ``"third"`` up to :data:`TENSOR_LIMIT` parameters, else ``"terms"`` (the hat-weighted
    sums follow in a second round).
    """
    return {"send": "third" if n_params <= TENSOR_LIMIT else "terms", "info_inv": None}


#: The note of a Firth fit's table.
NOTE = (
    "Firth's penalized likelihood (Jeffreys prior; bias-reduced, finite under separation, "
    "as R's logistf and brglm2): Wald standard errors from I^-1 at the estimate; the "
    "likelihood-ratio test is the penalized one against the null model fitted with the same "
    "penalty."
)


def firth_summary(
    summary: dict[str, Any], penalized_loglik: float, null_loglik: float, *, fit_intercept: bool
) -> dict[str, Any]:
    r"""Turn :func:`~pancreas_fl.exact.glm.glm_summary`'s table at Firth's estimate into Firth's.

    ``summary`` is the unpenalized summary at :math:`\hat\theta` (Wald statistics from
    :math:`\mathcal I(\hat\theta)^{-1}`, deviance and log-likelihood of
    :math:`\hat\theta`, AIC and BIC from them, as ``brglm2`` reports them). This adds the
    penalized log-likelihoods and replaces the likelihood-ratio test by the penalized one.

    Parameters
    ----------
    summary : dict
    penalized_loglik : float
        :math:`\ell^*(\hat\theta)`.
    null_loglik : float
        :math:`\ell^*(\hat\theta_0)` (:func:`null_penalized_loglik`).
    fit_intercept : bool

    Returns
    -------
    dict
        ``summary`` with ``penalty="firth"``, ``penalized=True``, ``C=inf``,
        ``penalized_llf``, ``penalized_llnull``, ``lr_stat`` :math:`= 2[\ell^*(\hat\theta) -
        \ell^*(\hat\theta_0)]`, ``lr_df`` (:math:`p - 1` with intercept, :math:`p` without),
        ``lr_p_value`` and Firth's note.
    """
    df = int(summary["n_params"]) - int(fit_intercept)
    # nested maxima of one objective: never negative but for rounding at a null effect
    lr = max(0.0, 2.0 * (float(penalized_loglik) - float(null_loglik)))
    return {
        **summary,
        "penalty": "firth",
        "penalized": True,
        "C": math.inf,
        "edf": float(summary["n_params"]),
        "penalized_llf": float(penalized_loglik),
        "penalized_llnull": float(null_loglik),
        "lr_stat": lr,
        "lr_df": df,
        "lr_p_value": chi2_sf(lr, df) if df >= 1 else None,
        "note": NOTE,
    }


def check_request(request: Any, n_params: int) -> dict | None:
    """Check the aggregator's Firth request where a hospital receives it; return it.

    Raises
    ------
    OutOfStepError
        A request that is not one of :class:`~pancreas_fl.exact.messages.FirthRequest`'s
        (a damaged message): one line naming the aggregator.
    """
    if request is None:
        return None
    send = request.get("send") if isinstance(request, dict) else None
    info_inv = request.get("info_inv") if isinstance(request, dict) else None
    valid = send in ("third", "terms") and info_inv is None
    if send == "hat" and isinstance(info_inv, np.ndarray):
        valid = info_inv.shape == (n_params, n_params) and bool(np.all(np.isfinite(info_inv)))
    if not valid:
        raise OutOfStepError(
            "the aggregator's broadcast asks for Firth's sums in no known form (expected "
            f"'third', 'terms', or 'hat' with a finite {n_params} x {n_params} inverse "
            "information): the message is damaged. Start the analysis again."
        )
    return request
