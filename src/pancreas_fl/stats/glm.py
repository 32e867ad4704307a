r"""GLM statistics of the (federated) logistic regression from the pooled information matrix.

With :math:`\hat\theta` the fitted parameters and
:math:`\mathcal I = \sum_i \hat p_i (1 - \hat p_i) \tilde x_i \tilde x_i^\top` the Fisher
information (the Hessian of the negative log-likelihood, *not* multiplied by ``C``; the sum of
the hospitals' ``hess`` at :math:`\hat\theta`):

* unpenalized (``C=inf`` or ``penalty=None``): :math:`\widehat{\operatorname{Cov}}(\hat\theta) =
  \mathcal I^{-1}`, Wald :math:`z = \hat\theta_j / \mathrm{se}_j`, two-sided
  :math:`p = \operatorname{erfc}(|z| / \sqrt 2)`, 95% CI :math:`\hat\theta_j \pm
  1.959964\, \mathrm{se}_j` (as statsmodels' ``Logit``);
* L2-penalized: :math:`(\mathcal I + P / C)^{-1}` with :math:`P = \operatorname{diag}(1,
  \dots, 1, 0)` -- the Laplace approximation of the posterior covariance under the implied
  Gaussian prior :math:`w \sim N(0, C I)`. It is reported *approximately* and labelled so:
  the penalized estimate is biased towards 0 and the Wald tests are not valid frequentist
  tests; refit without penalty (``C=inf``) for inference.

Deviance :math:`D = 2 \sum_i \ell_i(\hat\theta)`; null deviance from the intercept-only
model :math:`\hat p = n_{pos} / n` (or :math:`p = 1/2` without intercept); AIC
:math:`= D + 2 k` with :math:`k` the number of parameters.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "Z_975",
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
) -> dict[str, Any]:
    r"""Coefficient table and fit statistics (plain Python values).

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
        See :func:`null_deviance`; ``None`` leaves it out (reported as NaN).
    C : float, default=1.0
    penalty : {"l2", None}, default="l2"
        ``None`` or ``C=inf``: unpenalized, exact Wald statistics.
    rounds : int, optional
        Number of federated rounds, shown in the header of :func:`format_summary`.
    intercept_name : str, default="intercept"

    Returns
    -------
    dict
        ``terms``, ``coef``, ``std_err``, ``z``, ``p_value``, ``ci_lower``, ``ci_upper``
        (lists, one entry per term, the intercept last), ``cov`` (list of lists), ``n``,
        ``deviance``, ``null_deviance``, ``aic``, ``df_model`` (number of parameters
        :math:`k`), ``df_resid`` (:math:`n - k`), ``edf`` (effective degrees of freedom
        :math:`\operatorname{tr}[(\mathcal I + P/C)^{-1}\mathcal I]`, equal to :math:`k`
        when unpenalized), ``penalized``, ``penalty``, ``C``, ``rounds``, ``singular``
        (information matrix not invertible: pseudo-inverse used) and ``note``.
    """
    theta = np.asarray(theta, dtype=np.float64).reshape(-1)
    p = theta.shape[0]
    info = np.asarray(hess_loglik, dtype=np.float64)
    if info.shape != (p, p):
        raise ValueError(f"hess_loglik must have shape ({p}, {p}). Got {info.shape}.")
    names = [str(f) for f in feature_names]
    if len(names) != p - int(fit_intercept):
        raise ValueError(
            f"feature_names has {len(names)} names but theta has {p - int(fit_intercept)} "
            "feature coefficients."
        )
    C = float(C)
    penalized = penalty is not None and math.isfinite(C)
    cov, singular = _covariance(info, fit_intercept=fit_intercept, C=C, penalized=penalized)
    note = _PENALIZED_NOTE.format(C=C) if penalized else _UNPENALIZED_NOTE
    if singular:
        note += " The information matrix is singular (e.g. separation): pseudo-inverse used."
    deviance = float(deviance)
    return {
        **_table(theta, cov, [*names, intercept_name] if fit_intercept else names),
        "n": int(n),
        "deviance": deviance,
        "null_deviance": math.nan if null_deviance is None else float(null_deviance),
        "aic": deviance + 2.0 * p,
        "df_model": int(p),
        "df_resid": int(n) - int(p),
        "edf": float(np.trace(cov @ info)) if penalized else float(p),
        "penalized": bool(penalized),
        "penalty": "l2" if penalized else None,
        "C": C,
        "rounds": None if rounds is None else int(rounds),
        "singular": singular,
        "note": note,
    }


def _covariance(
    info: np.ndarray, *, fit_intercept: bool, C: float, penalized: bool
) -> tuple[np.ndarray, bool]:
    r""":math:`(\mathcal I + P/C)^{-1}` (or :math:`\mathcal I^{-1}`), symmetrised, and whether
    the matrix was singular (then the pseudo-inverse)."""
    pen = np.ones(info.shape[0])
    if fit_intercept:
        pen[-1] = 0.0
    A = info + np.diag(pen / C) if penalized else info
    A = 0.5 * (A + A.T)
    singular = False
    try:
        cov = np.linalg.inv(A)
        if not np.all(np.isfinite(cov)) or np.linalg.cond(A) > 1.0 / np.finfo(float).eps:
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        cov = np.linalg.pinv(A, hermitian=True)
        singular = True
    return 0.5 * (cov + cov.T), singular


def _table(theta: np.ndarray, cov: np.ndarray, terms: list[str]) -> dict[str, Any]:
    """The coefficient table: Wald standard errors, z, p-values and 95% intervals."""
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
        "cov": cov.tolist(),
    }


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
    """Fixed-width coefficient table (like statsmodels' ``Logit.summary()``).

    Parameters
    ----------
    summary : dict
        Output of :func:`glm_summary`.
    title : str, optional

    Returns
    -------
    str
        A header (n, deviance, null deviance, AIC, df, penalty, rounds), one row per term
        (intercept included) with ``coef``, ``std err``, ``z``, ``P>|z|``, ``[0.025``,
        ``0.975]``, and the penalty note, wrapped to the table width.
    """
    name_w = max([len("term"), *(len(t) for t in summary["terms"])])
    header = (
        f"{'term':<{name_w}} {'coef':>10} {'std err':>10} {'z':>8} {'P>|z|':>8} "
        f"{'[0.025':>10} {'0.975]':>10}"
    )
    width = max(len(header), 64)
    rule = "=" * width
    lines = [rule, title.center(width).rstrip(), rule, *_fit_lines(summary, width // 2)]
    lines += [rule, header, "-" * width]
    for j, term in enumerate(summary["terms"]):
        z = summary["z"][j]
        z_txt = f"{'nan':>8}" if math.isnan(z) else f"{z:>8.3f}"
        lines.append(
            f"{term:<{name_w}} {_num(summary['coef'][j])} {_num(summary['std_err'][j])} "
            f"{z_txt} {_pval(summary['p_value'][j])} {_num(summary['ci_lower'][j])} "
            f"{_num(summary['ci_upper'][j])}"
        )
    lines.append(rule)
    return "\n".join([*lines, *_wrap("Note:", summary["note"], width)])


def _fit_lines(summary: dict[str, Any], half: int) -> list[str]:
    """The header's two columns: the data and the penalty left, the fit right."""
    pen = f"L2 (C={summary['C']:g})" if summary["penalized"] else "none"
    left = [
        f"No. observations: {summary['n']}",
        f"Df model: {summary['df_model']}   Df resid: {summary['df_resid']}",
        f"Penalty: {pen}",
    ]
    if summary["penalized"]:
        left.append(f"Effective df: {summary['edf']:.3f}")
    right = [
        f"Deviance: {summary['deviance']:.4f}",
        f"Null deviance: {summary['null_deviance']:.4f}",
        f"AIC: {summary['aic']:.4f}",
    ]
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
