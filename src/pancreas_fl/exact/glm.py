r"""GLM statistics of the (federated) logistic regression from the pooled information matrix.

With :math:`\hat\theta` the fitted parameters and
:math:`\mathcal I = \sum_i \hat p_i (1 - \hat p_i) \tilde x_i \tilde x_i^\top` the Fisher
information (the Hessian of the negative log-likelihood, *not* multiplied by ``C``; the sum of
the hospitals' ``hess`` at :math:`\hat\theta`):

* unpenalized (``C=inf`` or ``penalty=None``): :math:`\widehat{\operatorname{Cov}}(\hat\theta) =
  \mathcal I^{-1}`, Wald :math:`z = \hat\theta_j / \mathrm{se}_j`, two-sided
  :math:`p = \operatorname{erfc}(|z| / \sqrt 2)`, 95% CI :math:`\hat\theta_j \pm
  1.959964\, \mathrm{se}_j` (as statsmodels' ``GLM(family=Binomial())`` and R's ``glm``);
* L2-penalized: :math:`(\mathcal I + P / C)^{-1}` with :math:`P = \operatorname{diag}(1,
  \dots, 1, 0)` -- the Laplace approximation of the posterior covariance under the implied
  Gaussian prior :math:`w \sim N(0, C I)`. It is reported *approximately* and labelled so:
  the penalized estimate is biased towards 0 and the Wald tests are not valid frequentist
  tests; refit without penalty (``C=inf``) for inference.

Odds ratios are :math:`e^{\hat\theta_j}` with the interval :math:`e^{\hat\theta_j \pm
1.959964\, \mathrm{se}_j}` (for the intercept: the odds at :math:`x = 0`).

Aliased terms (:mod:`~pancreas_fl.exact.aliasing`): a term whose column is a linear
combination of earlier ones (R's column order: intercept first) is not estimable. Without a
penalty it is reported as NA, as R's ``glm`` does, and the other coefficients, their standard
errors (:math:`\mathcal I_{KK}^{-1}`) and the fit are those of the model without it (which
predicts the same). With a penalty the fit is unique and the (approximate) table keeps every
term, but the split between aliased terms is the penalty's, not the data's: they are named.
Either way they are left out of the rank :math:`r` (the number of estimable parameters).

Fit statistics, as R's ``glm`` and statsmodels' ``GLMResults``: deviance
:math:`D = 2 \sum_i \ell_i(\hat\theta)`, log-likelihood :math:`\ell = -D/2` (``llf``; Bernoulli
outcomes: no saturated term), null deviance :math:`D_0` of the intercept-only model
:math:`\hat p = n_{pos} / n` (without intercept: :math:`p = 1/2`, :math:`\eta = 0`, as R),
:math:`\ell_0 = -D_0 / 2`, AIC :math:`= D + 2 r`, BIC :math:`= D + r \log n` (statsmodels'
``bic_llf``, not ``bic_deviance``), ``df_model`` :math:`= r - 1` with an intercept and
:math:`r` without (R's null minus residual degrees of freedom; statsmodels' GLM always
subtracts 1), ``df_resid`` :math:`= n - r`, and the likelihood-ratio test against the null
model :math:`G = D_0 - D = 2(\ell - \ell_0)` on ``df_model`` degrees of freedom
(:math:`\chi^2` upper tail), for a converged unpenalized fit.

Without a penalty the maximum-likelihood estimate may not exist ((quasi-)separation; see
:mod:`~pancreas_fl.exact.separation`): when the fit did not converge (in its estimable part),
or fitted probabilities are numerically 0 or 1, no Wald table is given (its entries are NaN),
the terms whose coefficients diverge are named with their direction, and ``penalty="firth"``
(:mod:`~pancreas_fl.exact.firth`) or a finite ``C`` is suggested.
"""

from __future__ import annotations

import math
from operator import itemgetter
from typing import Any

import numpy as np

from pancreas_fl.exact.aliasing import ALIAS_TOL, Aliasing, find_aliased
from pancreas_fl.exact.packed import PackedSymmetric, diagonal
from pancreas_fl.exact.separation import diverging_terms
from pancreas_fl.exact.solver import DEFAULT_TOL

__all__ = [
    "Z_975",
    "chi2_sf",
    "format_aliases",
    "format_summary",
    "glm_summary",
    "null_deviance",
]

#: 97.5% quantile of the standard normal distribution.
Z_975 = 1.959963984540054

_PENALIZED_NOTE = (
    "L2-penalized fit (C={C:g}): standard errors are approximate, from (I + P/C)^-1 "
    "(posterior under the implied Gaussian prior w ~ N(0, C)); coefficients are shrunk "
    "towards 0 and z, P>|z| and the intervals are not valid frequentist tests. "
    "Refit without penalty (C=inf) for inference."
)
_UNPENALIZED_NOTE = "Unpenalized maximum likelihood fit; Wald standard errors from I^-1."
_SUGGEST_C = (
    "Use penalty='firth' (Firth's bias-reduced fit, as R's logistf: finite estimates with "
    "valid Wald tests), or a finite C (e.g. C=1: the L2-penalized fit always exists and is "
    "unique), or remove or merge the separating term(s)."
)


def null_deviance(n: int, n_pos: int, *, fit_intercept: bool) -> float:
    r"""Deviance of the null model.

    Parameters
    ----------
    n, n_pos : int
        Pooled numbers of patients and of positive labels.
    fit_intercept : bool
        ``True``: intercept-only model, :math:`\hat p = n_{pos}/n`,
        :math:`D_0 = -2[n_{pos}\log\hat p + (n - n_{pos})\log(1-\hat p)]`
        (:math:`0 \log 0 = 0`). ``False``: :math:`p = 1/2`, :math:`D_0 = 2 n \log 2`.

    Returns
    -------
    float
    """
    n, n_pos = int(n), int(n_pos)
    if n < 1 or not 0 <= n_pos <= n:
        raise ValueError(f"Need n >= 1 and 0 <= n_pos <= n. Got n={n}, n_pos={n_pos}.")
    if not fit_intercept:
        return 2.0 * n * math.log(2.0)
    out = 0.0
    p = n_pos / n
    if n_pos > 0:
        out -= 2.0 * n_pos * math.log(p)
    if n_pos < n:
        out -= 2.0 * (n - n_pos) * math.log1p(-p)
    return out


def chi2_sf(x: float, df: int) -> float:
    r"""Upper tail :math:`P(\chi^2_{df} > x)` for an integer ``df`` (closed form, no scipy).

    With :math:`y = x/2`: even ``df`` :math:`= 2k`: :math:`e^{-y} \sum_{i<k} y^i / i!`; odd
    ``df`` :math:`= 2k + 1`: :math:`\operatorname{erfc}(\sqrt y) + e^{-y} \sum_{i=1}^{k}
    y^{i - 1/2} / \Gamma(i + 1/2)`. Every term is positive (no cancellation) and computed in
    logarithms (no overflow).

    Parameters
    ----------
    x : float
    df : int
        Degrees of freedom, at least 1.

    Returns
    -------
    float
        In [0, 1]; NaN for ``df < 1`` or a NaN ``x``.
    """
    x, df = float(x), int(df)
    if df < 1 or math.isnan(x):
        return math.nan
    if x <= 0.0:
        return 1.0
    if math.isinf(x):
        return 0.0
    y = 0.5 * x
    log_y = math.log(y)
    if df % 2 == 0:
        total = sum(math.exp(-y + i * log_y - math.lgamma(i + 1.0)) for i in range(df // 2))
    else:
        total = math.erfc(math.sqrt(y)) + sum(
            math.exp(-y + (i - 0.5) * log_y - math.lgamma(i + 0.5)) for i in range(1, df // 2 + 1)
        )
    return min(1.0, max(0.0, total))


def _p_value(z: float) -> float:
    if math.isnan(z):
        return math.nan
    return min(1.0, max(0.0, math.erfc(abs(z) / math.sqrt(2.0))))


def glm_summary(
    theta: Any,
    hess_loglik: Any,
    *,
    feature_names: list[str] | tuple[str, ...],
    fit_intercept: bool,
    n: int,
    deviance: float,
    null_deviance: float | None = None,
    C: float = 1.0,
    penalty: str | None = "l2",
    rounds: int | None = None,
    intercept_name: str = "intercept",
    grad: Any = None,
    converged: bool = True,
    tol: float = DEFAULT_TOL,
    n_extreme: int | None = None,
    path: Any = None,
    scale: Any = None,
    origin: Any = None,
    design_info: Any = None,
    alias_tol: float = ALIAS_TOL,
) -> dict[str, Any]:
    r"""Coefficient table and fit statistics (plain Python values).

    Everything comes from aggregates: the pooled information, gradient and loss, the counts,
    and the points the aggregator chose.

    Parameters
    ----------
    theta : array_like of shape (p,)
        Fitted :math:`(w, b)`, intercept last when ``fit_intercept``.
    hess_loglik : array_like of shape (p, p)
        Pooled information :math:`\mathcal I` at ``theta`` (the sum of the hospitals'
        ``hess``; not multiplied by ``C``, no penalty added).
    feature_names : sequence of str
        One name per feature (``p - fit_intercept`` names).
    fit_intercept : bool
    n : int
        Pooled number of patients.
    deviance : float
        :math:`2 \sum_i \ell_i(\hat\theta)` (twice the pooled ``loss``).
    null_deviance : float, optional
        See :func:`null_deviance`; ``None`` leaves it out (reported as NaN, and so are the
        null log-likelihood and the likelihood-ratio test).
    C : float, default=1.0
    penalty : {"l2", None}, default="l2"
        ``None`` or ``C=inf``: unpenalized, exact Wald statistics.
    rounds : int, optional
        Number of federated rounds, shown in the header of :func:`format_summary`.
    intercept_name : str, default="intercept"
    grad : array_like of shape (p,), optional
        Pooled gradient :math:`\sum_i (\hat p_i - y_i)\tilde x_i` at ``theta``. Without a
        penalty and with aliased terms, it tells whether the estimable part converged even
        though the solver (whose steps wander along the aliased directions) did not.
    converged : bool, default=True
        Whether the solver converged.
    tol : float, default=DEFAULT_TOL
        The solver's relative step tolerance (for the check above).
    n_extreme : int, optional
        Patients whose fitted probability is numerically 0 or 1 (summed over the hospitals,
        :func:`~pancreas_fl.exact.separation.count_extreme`). Without a penalty, any such
        patient withholds the Wald table (see the module docstring).
    path : array_like of shape (m, p), optional
        The last accepted iterates, oldest first, to name the diverging terms of a fit that
        did not converge (:func:`~pancreas_fl.exact.separation.diverging_terms`).
    scale : array_like of shape (p,), optional
        Root mean square of each design column (:func:`~pancreas_fl.exact.separation.
        column_rms`), to measure the iterates' moves in units of the linear predictor.
    origin : array_like of shape (p,), optional
        The fit's first accepted point: a diverging term's direction is its move from there.
    design_info : array_like of shape (p, p), optional
        The pooled information at the start point :math:`\theta = 0`,
        :math:`\tilde X^\top \tilde X / 4`, on which aliasing is judged: aliasing is a
        property of the design, and this matrix stays informative when the fit diverges
        (then the weights of separated patients vanish from ``hess_loglik``). For a valid
        fit, where every weight is positive, both give the same aliased terms (R judges
        :math:`W^{1/2} X` at the fit). Default: ``hess_loglik``.
    alias_tol : float, default=ALIAS_TOL
        See :func:`~pancreas_fl.exact.aliasing.find_aliased`.

    Returns
    -------
    dict
        ``terms``, ``coef``, ``std_err``, ``z``, ``p_value``, ``ci_lower``, ``ci_upper``,
        ``odds_ratio``, ``or_ci_lower``, ``or_ci_upper`` (lists, one entry per term, the
        intercept last; NaN for an aliased term without penalty, and every entry but ``coef``
        and ``odds_ratio`` NaN when ``wald`` is false), ``cov`` (list of lists), ``n``,
        ``deviance``, ``null_deviance``, ``llf``, ``llnull``, ``aic``, ``bic``, ``rank``
        (estimable parameters :math:`r`), ``n_params`` (all parameters :math:`p`),
        ``df_model`` (:math:`r` minus the intercept), ``df_resid`` (:math:`n - r`), ``edf``
        (effective degrees of freedom :math:`\operatorname{tr}[(\mathcal I + P/C)^{-1}
        \mathcal I]`, equal to :math:`r` when unpenalized), ``lr_stat``, ``lr_df``,
        ``lr_p_value`` (the likelihood-ratio test against the null model; ``None`` unless
        the fit is unpenalized and valid, the p-value also when ``df_model`` is 0),
        ``aliased`` (names of the aliased terms), ``aliases`` (term -> {earlier term:
        multiplier}: the aliased column as a combination of estimable ones), ``wald``
        (whether the Wald table is given), ``diverging`` (term ->
        +1 or -1: the coefficients that diverge towards :math:`\pm\infty`), ``n_extreme``,
        ``penalized``, ``penalty``, ``C``, ``rounds``, ``singular`` (information matrix not
        invertible: aliased terms, or the pseudo-inverse used) and ``note``.
    """
    theta, info, terms = _checked_inputs(
        theta, hess_loglik, feature_names, fit_intercept, intercept_name
    )
    p = theta.shape[0]
    C = float(C)
    penalized = penalty is not None and math.isfinite(C)
    design = _design(design_info, info)
    aliasing = find_aliased(design, fit_intercept=fit_intercept, tol=alias_tol)
    wald, diverging = True, []
    if not penalized:
        wald, diverging = _maximum_likelihood_exists(
            theta, grad, info, aliasing, converged, tol, n_extreme, path, scale, origin
        )
    coef, cov, singular = _estimates(theta, info, aliasing, fit_intercept, C, penalized, wald)
    # before the table: its lists hold p^2 floats, and the product is one more p x p matrix
    edf = float(np.trace(cov @ _dense(info))) if penalized else float(aliasing.rank)
    diverging_names = {terms[j]: sign for j, sign in diverging}
    aliased = aliasing.aliased.tolist()
    aliases = _alias_relations(design, aliasing, terms, aliased)
    table = _table(coef, cov, terms, mirrored=isinstance(info, PackedSymmetric))
    if wald:
        note = _wald_note(C, penalized, singular, aliased, aliases)
    else:
        table = _withhold(table)
        note = _no_wald_note(converged, n_extreme, diverging_names, rounds)
    max_likelihood = wald and not penalized
    return {
        **table,
        **_odds_ratios(table),
        **_fit_statistics(
            n, deviance, null_deviance, aliasing.rank, p, fit_intercept, edf, max_likelihood
        ),
        "aliased": [terms[j] for j in aliased],
        "aliases": aliases,
        "wald": bool(wald),
        "diverging": diverging_names,
        "n_extreme": None if n_extreme is None else int(n_extreme),
        "penalized": bool(penalized),
        "penalty": "l2" if penalized else None,
        "C": C,
        "rounds": None if rounds is None else int(rounds),
        "singular": bool(singular),
        "note": note,
    }


def _checked_inputs(
    theta: Any, hess_loglik: Any, feature_names, fit_intercept: bool, intercept_name: str
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Return the parameters, the information matrix and the term names, checked for shape."""
    theta = np.asarray(theta, dtype=np.float64).reshape(-1)
    p = theta.shape[0]
    info = _matrix(hess_loglik)
    if info.shape != (p, p):
        raise ValueError(f"hess_loglik must have shape ({p}, {p}). Got {info.shape}.")
    names = [str(f) for f in feature_names]
    if len(names) != p - int(fit_intercept):
        raise ValueError(
            f"feature_names has {len(names)} names but theta has {p - int(fit_intercept)} "
            "feature coefficients."
        )
    terms = [*names, intercept_name] if fit_intercept else names
    return theta, info, terms


def _matrix(matrix: Any) -> np.ndarray | PackedSymmetric:
    """Return a dense matrix as float64, a packed one as it is (unpacked where it is used)."""
    if isinstance(matrix, PackedSymmetric):
        return matrix
    return np.asarray(matrix, dtype=np.float64)


def _dense(matrix: np.ndarray | PackedSymmetric) -> np.ndarray:
    """Return the matrix itself, or a packed one unpacked (a new matrix)."""
    return matrix.unpack() if isinstance(matrix, PackedSymmetric) else matrix


def _design(design_info: Any, info: np.ndarray) -> np.ndarray:
    """Return the matrix aliasing is judged on: ``design_info``, by default the information."""
    p = info.shape[0]
    design = info if design_info is None else _matrix(design_info)
    if design.shape != (p, p):
        raise ValueError(f"design_info must have shape ({p}, {p}). Got {design.shape}.")
    return design


def _estimates(
    theta: np.ndarray,
    info: np.ndarray,
    aliasing: Aliasing,
    fit_intercept: bool,
    C: float,
    penalized: bool,
    wald: bool,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Return the reported coefficients, their covariance and whether the matrix is singular.

    Unpenalized with aliased terms and a valid fit: the model without them (NaN for them).
    """
    if penalized or not aliasing.aliased.size or not wald:
        coef = theta
        cov, singular = _covariance(info, fit_intercept=fit_intercept, C=C, penalized=penalized)
        return coef, cov, singular
    coef, cov = _reduced(theta, info, aliasing, fit_intercept=fit_intercept)
    return coef, cov, True


def _wald_note(C: float, penalized: bool, singular: bool, aliased: list, aliases: dict) -> str:
    """Return the note of a summary with its Wald table: the covariance used, aliased terms."""
    note = _PENALIZED_NOTE.format(C=C) if penalized else _UNPENALIZED_NOTE
    if singular and not aliased:
        note += " The information matrix is singular (e.g. separation): pseudo-inverse used."
    if aliased:
        note += " " + _aliased_note(aliases, penalized)
    return note


def _fit_statistics(
    n: int,
    deviance: float,
    null_deviance: float | None,
    rank: int,
    n_params: int,
    fit_intercept: bool,
    edf: float,
    max_likelihood: bool,
) -> dict[str, Any]:
    """Return the fit statistics: deviances, likelihoods, AIC/BIC, degrees of freedom, LR test.

    The likelihood-ratio test is given for a valid unpenalized (``max_likelihood``) fit only.
    """
    df_model = rank - int(fit_intercept)
    deviance = float(deviance)
    null = math.nan if null_deviance is None else float(null_deviance)
    # the likelihood-ratio test needs the maximum-likelihood fit (None: not applicable)
    lr_stat = null - deviance if max_likelihood and not math.isnan(null) else None
    return {
        "n": int(n),
        "deviance": deviance,
        "null_deviance": null,
        "llf": -0.5 * deviance,
        "llnull": -0.5 * null,
        "aic": deviance + 2.0 * rank,
        "bic": deviance + rank * math.log(int(n)) if int(n) > 0 else math.nan,
        "rank": rank,
        "n_params": int(n_params),
        "df_model": df_model,
        "df_resid": int(n) - rank,
        "edf": edf,
        "lr_stat": lr_stat,
        "lr_df": df_model,
        "lr_p_value": None if lr_stat is None or df_model < 1 else chi2_sf(lr_stat, df_model),
    }


def _maximum_likelihood_exists(
    theta: np.ndarray,
    grad: Any,
    info: np.ndarray,
    aliasing: Aliasing,
    converged: bool,
    tol: float,
    n_extreme: int | None,
    path: Any,
    scale: Any,
    origin: Any = None,
) -> tuple[bool, list[tuple[int, int]]]:
    """Return whether an unpenalized fit gives a Wald table, and else its diverging terms.

    It does when its estimable part converged and no fitted probability is numerically 0 or 1.
    """
    wald = _estimable_converged(theta, grad, info, aliasing, converged, tol) and not n_extreme
    diverging = []
    if not wald and path is not None:
        diverging = diverging_terms(path, scale, origin)
    return wald, diverging


def _estimable_converged(
    theta: np.ndarray,
    grad: Any,
    info: np.ndarray,
    aliasing: Aliasing,
    converged: bool,
    tol: float,
) -> bool:
    r"""Whether the estimable part of an unpenalized fit converged.

    The solver's own test, or, with aliased terms, the same test on the reduced model:
    its Newton step :math:`\mathcal I_{KK}^{-1} g_K` at the reduced coefficients (the
    reduced model's gradient is :math:`g_K`: it predicts the same) is at most ``tol``
    relative to them.
    """
    if converged:
        return True
    if grad is None or not aliasing.aliased.size or not aliasing.kept.size:
        return False
    g = np.asarray(grad, dtype=np.float64).reshape(-1)[aliasing.kept]
    K = aliasing.kept
    step = _solve_scaled(_dense(info)[np.ix_(K, K)], g)
    if not np.all(np.isfinite(step)):
        return False
    return bool(np.linalg.norm(step) <= tol * np.linalg.norm(aliasing.reduced(theta)))


def _solve_scaled(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``A^-1 b`` for a symmetric positive definite ``A``, Jacobi-scaled; NaN if singular."""
    scale = np.sqrt(np.diag(A))
    As = A / scale[:, None] / scale[None, :]
    try:
        return np.linalg.solve(0.5 * (As + As.T), b / scale) / scale
    except np.linalg.LinAlgError:
        return np.full_like(b, np.nan)


def _covariance(
    info: np.ndarray, *, fit_intercept: bool, C: float, penalized: bool
) -> tuple[np.ndarray, bool]:
    r"""Return the covariance :math:`(\mathcal I + P/C)^{-1}` or :math:`\mathcal I^{-1}`.

    The matrix is symmetrised; the flag tells whether it was singular (then the covariance is
    the pseudo-inverse).
    """
    pen = np.ones(info.shape[0])
    if fit_intercept:
        pen[-1] = 0.0
    if isinstance(info, PackedSymmetric):  # the same numbers, in the one unpacked matrix
        A = info.unpack()
        if penalized:  # info + diag(pen / C): + 0 off the diagonal (-0 becomes +0)
            A += 0.0
            A[np.diag_indices_from(A)] += pen / C
        A *= 2.0  # 0.5 (A + A^T) of the symmetric A: 2a, then halved
        A *= 0.5
    else:
        A = info + np.diag(pen / C) if penalized else info
        A = 0.5 * (A + A.T)
    singular = False
    try:
        cov = np.linalg.inv(A)
        if not np.all(np.isfinite(cov)) or _condition(A, cov) > 1.0 / np.finfo(float).eps:
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        cov = np.linalg.pinv(A, hermitian=True)
        singular = True
    del A
    return 0.5 * (cov + cov.T), singular


def _condition(A: np.ndarray, inverse: np.ndarray) -> float:
    r"""Return the 2-norm condition number of the symmetric ``A``, or a bound above it.

    For a symmetric matrix :math:`\kappa_2 \le \kappa_1 = \lVert A\rVert_1
    \lVert A^{-1}\rVert_1`, which costs :math:`O(p^2)` with the inverse at hand; only when
    that bound reaches ``1 / eps`` is :math:`\kappa_2` computed, from the eigenvalues
    (as ``numpy.linalg.cond``, whose singular value decomposition took 12.8 s at 1,100
    parameters here, against 0.9 s for the eigenvalues and about 1 ms for the bound).
    """
    bound = float(np.linalg.norm(A, 1) * np.linalg.norm(inverse, 1))
    if bound <= 1.0 / np.finfo(float).eps:
        return bound
    magnitudes = np.abs(np.linalg.eigvalsh(A))
    smallest = magnitudes.min()
    return math.inf if smallest == 0.0 else float(magnitudes.max() / smallest)


def _reduced(
    theta: np.ndarray, info: np.ndarray, aliasing: Aliasing, *, fit_intercept: bool
) -> tuple[np.ndarray, np.ndarray]:
    r"""Return R's table without penalty.

    The reduced model's coefficients :math:`\theta_K + B\theta_A` and covariance
    :math:`\mathcal I_{KK}^{-1}`, NaN for the aliased terms.
    """
    K = aliasing.kept
    coef = np.full(theta.shape, np.nan)
    coef[K] = aliasing.reduced(theta)
    cov = np.full(info.shape, np.nan)
    cov_K, _ = _covariance(
        _dense(info)[np.ix_(K, K)], fit_intercept=False, C=math.inf, penalized=False
    )
    cov[np.ix_(K, K)] = cov_K
    return coef, cov


def _table(
    theta: np.ndarray, cov: np.ndarray, terms: list[str], *, mirrored: bool = False
) -> dict[str, Any]:
    """Build the coefficient table: Wald standard errors, z, p-values and 95% intervals.

    ``mirrored`` (the packed path, many parameters): the covariance's lists share each
    number below the diagonal with its mirror (:func:`_symmetric_lists`).
    """
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, theta / np.where(se > 0, se, 1.0), np.nan)
    return {
        "terms": terms,
        "coef": theta.tolist(),
        "std_err": se.tolist(),
        "z": [float(v) for v in z],
        "p_value": [_p_value(float(v)) for v in z],
        "ci_lower": (theta - Z_975 * se).tolist(),
        "ci_upper": (theta + Z_975 * se).tolist(),
        "cov": _symmetric_lists(cov) if mirrored else cov.tolist(),
    }


def _symmetric_lists(cov: np.ndarray) -> list[list[float]]:
    """Return ``cov.tolist()`` of the exactly symmetric ``cov``, with half the float objects.

    Entry ``[j][k]`` below the diagonal is the float object of ``[k][j]``, the same number:
    the lists are equal (and pickle to the same bytes), and hold 2.5 rather than 4 times
    the matrix's bytes (a float object is 24 bytes, its reference 8). A matrix that is not
    exactly symmetric is listed as it is.
    """
    if not np.array_equal(cov, cov.T, equal_nan=True):
        return cov.tolist()
    rows: list[list[float]] = []
    for j, row in enumerate(cov):
        entries = list(map(itemgetter(j), rows))  # column j of the rows above
        entries += row[j:].tolist()
        rows.append(entries)
    return rows


def _withhold(table: dict[str, Any]) -> dict[str, Any]:
    """Return the table of a fit without valid Wald statistics: only the coefficients remain."""
    p = len(table["coef"])
    nan = [math.nan] * p
    return {
        **table,
        "std_err": list(nan),
        "z": list(nan),
        "p_value": list(nan),
        "ci_lower": list(nan),
        "ci_upper": list(nan),
        "cov": [list(nan) for _ in range(p)],
    }


def _odds_ratios(table: dict[str, Any]) -> dict[str, list[float]]:
    r"""Return :math:`e^{\theta}` and the exponentiated Wald interval (inf beyond float range)."""
    with np.errstate(over="ignore"):
        return {
            key: np.exp(np.asarray(table[src], dtype=np.float64)).tolist()
            for key, src in (
                ("odds_ratio", "coef"),
                ("or_ci_lower", "ci_lower"),
                ("or_ci_upper", "ci_upper"),
            )
        }


def _alias_relations(
    info: np.ndarray, aliasing: Aliasing, terms: list[str], aliased: list[int]
) -> dict[str, dict[str, float]]:
    """Each aliased term as a combination of estimable ones (multipliers that matter)."""
    out: dict[str, dict[str, float]] = {}
    position = {j: i for i, j in enumerate(aliasing.aliased.tolist())}
    norm = np.sqrt(np.clip(diagonal(info), 0.0, None))
    for j in aliased:
        column = aliasing.B[:, position[j]]
        # a multiplier matters when its column contributes to the aliased column's norm
        weight = np.abs(column) * norm[aliasing.kept]
        keep = weight > 1e-6 * max(norm[j], float(np.max(weight, initial=0.0)))
        out[terms[j]] = {
            terms[k]: float(b) for k, b, m in zip(aliasing.kept, column, keep, strict=True) if m
        }
    return out


def _relation_text(term: str, combination: dict[str, float]) -> str:
    """``"a2 = 2 x a"``, ``"bc = b + c"``, ``"z = 0"``."""
    parts = []
    for other, b in combination.items():
        size = abs(b)
        factor = "" if math.isclose(size, 1.0, rel_tol=1e-9) else f"{size:.4g} x "
        sign = "-" if b < 0 else "+"
        parts.append(f"{sign} {factor}{other}")
    if not parts:
        return f"{term} = 0"
    text = " ".join(parts)
    return f"{term} = {text[2:] if text.startswith('+') else '-' + text[1:]}"


def format_aliases(aliases: dict[str, dict[str, float]]) -> str:
    """Format the ``aliases`` of :func:`glm_summary` as text: ``"a2 = 2 x a; bc = b + c"``."""
    return "; ".join(_relation_text(t, c) for t, c in aliases.items())


def _aliased_note(aliases: dict[str, dict[str, float]], penalized: bool) -> str:
    relations = format_aliases(aliases)
    k = len(aliases)
    if penalized:
        return (
            f"Aliased term{'s' if k > 1 else ''}, not identified by the data ({relations}): "
            "the penalty alone splits the effect between the terms of each relation, and "
            "the degrees of freedom, AIC and BIC leave them out; for inference drop them and "
            "refit with C=inf."
        )
    return (
        f"{k} term{'s' if k > 1 else ''} not defined because of singularities (aliased: "
        f"{relations}): NA, as R reports them, and left out of the degrees of freedom, AIC "
        "and BIC; the other coefficients are those of the model without them, which predicts "
        "the same."
    )


def _direction_text(diverging: dict[str, int]) -> str:
    return ", ".join(
        f"{term} (towards {'+' if sign > 0 else '-'}inf)" for term, sign in diverging.items()
    )


def _no_wald_note(
    converged: bool, n_extreme: int | None, diverging: dict[str, int], rounds: int | None
) -> str:
    """Why an unpenalized fit has no Wald table, which terms diverge, and what to do."""
    extreme = (
        f"{n_extreme} patient{'s have' if n_extreme != 1 else ' has'} a fitted probability "
        "numerically 0 or 1"
        if n_extreme
        else ""
    )
    if diverging:
        k = len(diverging)
        grow = "coefficient keeps" if k == 1 else "coefficients keep"
        head = (
            f"No Wald table: the maximum-likelihood estimate does not exist. The {grow} "
            f"growing: {_direction_text(diverging)}; the classes are (quasi-)completely "
            f"separated along {'this term' if k == 1 else 'these terms'}"
        )
        head += f", and {extreme}." if extreme else "."
        return f"{head} Standard errors, z, p-values and intervals would be meaningless. " + (
            _SUGGEST_C
        )
    if not converged:
        when = "" if rounds is None else f" in {rounds} rounds"
        return (
            f"No Wald table: the unpenalized fit did not converge{when}"
            + (f" and {extreme}" if extreme else "")
            + ". Raise max_iter; if it still does not converge, the classes are probably "
            "(quasi-)separated: " + _SUGGEST_C
        )
    return (
        f"No Wald table: {extreme} (R's glm warns of this): without a penalty this signals "
        "(quasi-)separation, where the maximum-likelihood estimate does not exist or is not "
        "resolvable in floating point, and standard errors are meaningless. " + _SUGGEST_C
    )


def _num(x: float, width: int = 10) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return f"{'nan':>{width}}"
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:>{width}.3e}"
    return f"{x:>{width}.4f}"


def _pval(x: float) -> str:
    if math.isnan(x):
        return f"{'nan':>8}"
    if x < 0.001:
        return f"{'<0.001':>8}"
    return f"{x:>8.3f}"


def format_summary(summary: dict[str, Any], *, title: str = "Federated logistic regression") -> str:
    """Fixed-width coefficient table (like statsmodels' ``GLMResults.summary()``).

    Parameters
    ----------
    summary : dict
        Output of :func:`glm_summary` (a summary from an older version, without the odds
        ratios and the newer fit statistics, prints without them).
    title : str, optional

    Returns
    -------
    str
        A header (n, degrees of freedom, penalty; deviance, null deviance, log-likelihood,
        AIC, BIC, the likelihood-ratio test, rounds), one row per term (intercept included)
        with ``coef``, ``std err``, ``z``, ``P>|z|``, ``[0.025``, ``0.975]`` (``NA`` for an
        aliased term, as R prints it), the odds ratios with their intervals, and the note,
        wrapped to the table width. A fit without valid Wald statistics (see
        :func:`glm_summary`) shows why instead of the tables.
    """
    name_w = max([len("term"), *(len(t) for t in summary["terms"])])
    header = (
        f"{'term':<{name_w}} {'coef':>10} {'std err':>10} {'z':>8} {'P>|z|':>8} "
        f"{'[0.025':>10} {'0.975]':>10}"
    )
    width = max(len(header), 64)
    rule = "=" * width
    lines = [rule, title.center(width).rstrip(), rule, *_fit_lines(summary, width // 2), rule]
    if not summary.get("wald", True):
        return "\n".join([*lines, *_wrap("Note:", summary["note"], width)])
    aliased = set(summary.get("aliased", ())) if not summary["penalized"] else set()
    lines += [header, "-" * width]
    for j, term in enumerate(summary["terms"]):
        if term in aliased:
            lines.append(
                f"{term:<{name_w}} {'NA':>10} {'NA':>10} {'NA':>8} {'NA':>8} {'NA':>10} {'NA':>10}"
            )
            continue
        z = summary["z"][j]
        z_txt = f"{'nan':>8}" if math.isnan(z) else f"{z:>8.3f}"
        lines.append(
            f"{term:<{name_w}} {_num(summary['coef'][j])} {_num(summary['std_err'][j])} "
            f"{z_txt} {_pval(summary['p_value'][j])} {_num(summary['ci_lower'][j])} "
            f"{_num(summary['ci_upper'][j])}"
        )
    lines.append(rule)
    if "odds_ratio" in summary:
        lines += [
            f"{'term':<{name_w}} {'odds ratio':>10} {'[0.025':>10} {'0.975]':>10}",
            "-" * width,
        ]
        for j, term in enumerate(summary["terms"]):
            values = (summary[key][j] for key in ("odds_ratio", "or_ci_lower", "or_ci_upper"))
            cells = [f"{'NA':>10}"] * 3 if term in aliased else [_num(v) for v in values]
            lines.append(f"{term:<{name_w}} {' '.join(cells)}")
        lines.append(rule)
    return "\n".join([*lines, *_wrap("Note:", summary["note"], width)])


def _fit_lines(summary: dict[str, Any], half: int) -> list[str]:
    """Lay out the header's two columns: the data and the penalty left, the fit right."""
    firth = summary.get("penalty") == "firth"
    pen = f"L2 (C={summary['C']:g})" if summary["penalized"] else "none"
    pen = "Firth (Jeffreys prior)" if firth else pen
    left = [
        f"No. observations: {summary['n']}",
        f"Df model: {summary['df_model']}   Df resid: {summary['df_resid']}",
        f"Penalty: {pen}",
    ]
    if summary["penalized"] and not firth:
        left.append(f"Effective df: {summary['edf']:.3f}")
    if summary.get("aliased"):
        left.append(f"Aliased terms: {len(summary['aliased'])}")
    if summary.get("n_extreme"):
        left.append(f"Fitted p numerically 0 or 1: {summary['n_extreme']}")
    right = [
        f"Deviance: {summary['deviance']:.4f}",
        f"Null deviance: {summary['null_deviance']:.4f}",
    ]
    if "llf" in summary:
        right.append(f"Log-likelihood: {summary['llf']:.4f}")
    if "penalized_llf" in summary:
        right.append(f"Penalized log-lik: {summary['penalized_llf']:.4f}")
    right.append(f"AIC: {summary['aic']:.4f}")
    if "bic" in summary:
        right.append(f"BIC: {summary['bic']:.4f}")
    if summary.get("lr_p_value") is not None:
        lr = "Penalized LR" if firth else "LR"
        right.append(f"{lr} chi2({summary['lr_df']}): {summary['lr_stat']:.4f}")
        right.append(f"Prob > chi2: {_pval(summary['lr_p_value']).strip()}")
    if summary.get("rounds") is not None:
        right.append(f"Rounds: {summary['rounds']}")
    lines = []
    for i in range(max(len(left), len(right))):
        a = left[i] if i < len(left) else ""
        b = right[i] if i < len(right) else ""
        lines.append(f"{a:<{half}}{b}".rstrip())
    return lines


def _wrap(label: str, text: str, width: int) -> list[str]:
    """``label`` and ``text`` wrapped to ``width``, continuation lines indented."""
    lines = []
    line = label
    for w in text.split():
        if len(line) + 1 + len(w) > width:
            lines.append(line)
            line = " " * len(label) + w
        else:
            line += " " + w
    lines.append(line)
    return lines
