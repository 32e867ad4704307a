"""The analysis parameters, validated once, with scikit-learn style messages.

Analysts pass parameters to FLAME as ``analyzer_kwargs`` and ``aggregator_kwargs``; both node
classes accept the same set (so one dict can be given to both), and each role uses the ones it
needs. :func:`resolve_params` checks them all at the boundary and fills in the defaults of the
chosen strategy.
"""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, fields

from pancreas_fl._validation import check_bool, check_choice, check_int, check_real
from pancreas_fl.data import DEFAULT_DATASET
from pancreas_fl.errors import ConfigError
from pancreas_fl.privacy import (
    DEFAULT_MAX_PARAM_RATIO,
    DEFAULT_MIN_PATIENTS,
    validate_privacy_params,
)
from pancreas_fl.stats import DEFAULT_TOL as EXACT_DEFAULT_TOL

__all__ = ["LBFGS_MAX_ITER", "SHARED_PARAMS", "STRATEGIES", "Params", "resolve_params"]

STRATEGIES = ("fedavg", "exact")
SOLVERS = ("auto", "newton", "lbfgs")
OUTPUTS = ("coef", "model")

#: Defaults that depend on the strategy (the FedAvg ones are the tutorial's).
_STRATEGY_DEFAULTS = {
    "fedavg": {"max_iter": 10, "tol": 1e-8, "output": "coef"},
    "exact": {"max_iter": 50, "tol": EXACT_DEFAULT_TOL, "output": "model"},
}
#: The exact strategy's default ``max_iter`` when it uses the gradient-only solver (many
#: features, or ``solver='lbfgs'``): every line-search step costs one round.
LBFGS_MAX_ITER = 500

#: Parameters both roles must agree on; the aggregator checks them in the first round.
SHARED_PARAMS = ("strategy", "C", "fit_intercept", "standardize", "local_steps", "solver")


@dataclass(frozen=True)
class Params:
    """Validated parameters of one node (see the README's parameter table).

    Attributes
    ----------
    strategy : {'fedavg', 'exact'}
        ``'fedavg'``: the tutorial's averaging of one-step local fits. ``'exact'``: federated
        Newton on the pooled objective, equal to the pooled scikit-learn fit.
    dataset : str
        The s3 object key of each hospital's CSV file.
    label : str, int or None
        The label column by name or position; ``None`` means the last column.
    max_iter : int
        Rounds after the first before the analysis stops (``max_iter + 1`` rounds in all).
    tol : float
        FedAvg: stop when the L2 change of the global coefficients is at most ``tol``.
        Exact: the solver's scale-free step tolerance.
    C : float
        Inverse L2 regularization strength as in scikit-learn; ``inf`` means no penalty.
    fit_intercept : bool
        Fit an intercept (not penalized).
    weighted : bool
        FedAvg only: average by hospital sample counts instead of the plain mean.
    local_steps : int
        FedAvg only: lbfgs iterations per hospital and round.
    standardize : bool
        Exact only: standardize features with federated pooled means and variances.
    solver : {'auto', 'newton', 'lbfgs'}
        Exact only: Newton with shared Hessians, or gradient-only L-BFGS (``'auto'`` picks
        L-BFGS when the Hessian would be too large).
    min_patients : int
        A hospital with fewer patients refuses to share a model update.
    max_param_ratio : float
        A hospital refuses when parameters / patients exceeds this ratio.
    output : {'coef', 'model'}
        The final result: the bare ``(1, n_features)`` coefficient array (the tutorial's;
        FedAvg's default without intercept) or a portable dict with coefficients, intercept,
        feature names, history and statistics (the default otherwise).
    """

    strategy: str = "fedavg"
    dataset: str = DEFAULT_DATASET
    label: str | int | None = None
    max_iter: int | None = None
    tol: float | None = None
    C: float = 1.0
    fit_intercept: bool = False
    weighted: bool = False
    local_steps: int = 1
    standardize: bool = False
    solver: str = "auto"
    min_patients: int = DEFAULT_MIN_PATIENTS
    max_param_ratio: float = DEFAULT_MAX_PARAM_RATIO
    output: str | None = None

    def shared(self) -> dict:
        """The parameters both roles must agree on, as a plain dict (sent to the aggregator)."""
        values = asdict(self)
        return {name: values[name] for name in SHARED_PARAMS}


_NAMES = tuple(f.name for f in fields(Params))


def resolve_params(**kwargs) -> Params:
    """Validate the keyword arguments of a node and fill in the strategy's defaults.

    Parameters
    ----------
    **kwargs
        Any of the fields of :class:`Params`.

    Returns
    -------
    Params
        With ``max_iter``, ``tol`` and ``output`` resolved.

    Raises
    ------
    ConfigError
        For an unknown parameter, a value of the wrong type or range, or a parameter that does
        not apply to the chosen strategy.
    """
    unknown = sorted(set(kwargs) - set(_NAMES))
    if unknown:
        raise ConfigError(
            f"unknown parameter(s) {', '.join(repr(u) for u in unknown)}; "
            f"valid parameters are {', '.join(_NAMES)}."
        )
    p = Params(**kwargs)
    strategy = check_choice("strategy", p.strategy, STRATEGIES)
    if not isinstance(p.dataset, str) or not p.dataset:
        raise ConfigError(
            f"'dataset' must be a non-empty str (the s3 object key). Got {p.dataset!r} instead."
        )
    if isinstance(p.label, bool) or not isinstance(p.label, (str, numbers.Integral, type(None))):
        raise ConfigError(
            "'label' must be a column name (str), a column position (int) or None. "
            f"Got {p.label!r} instead."
        )
    solver = check_choice("solver", p.solver, SOLVERS)
    defaults = _STRATEGY_DEFAULTS[strategy]
    max_iter = defaults["max_iter"] if p.max_iter is None else check_int("max_iter", p.max_iter, 1)
    tol = defaults["tol"] if p.tol is None else check_real("tol", p.tol)
    fit_intercept = check_bool("fit_intercept", p.fit_intercept)
    standardize = check_bool("standardize", p.standardize)
    # the bare array cannot carry an intercept (a standardized fit has one in raw space)
    has_intercept = fit_intercept or standardize
    if p.output is None:
        output = "model" if has_intercept else defaults["output"]
    else:
        output = check_choice("output", p.output, OUTPUTS)
    if has_intercept and output == "coef":
        raise ConfigError(
            "output='coef' (the bare coefficient array) cannot carry an intercept; "
            "use output='model' with fit_intercept=True or standardize=True."
        )
    resolved = Params(
        strategy=strategy,
        dataset=p.dataset,
        label=p.label,
        max_iter=max_iter,
        tol=tol,
        C=check_real("C", p.C, closed="right"),
        fit_intercept=fit_intercept,
        weighted=check_bool("weighted", p.weighted),
        local_steps=check_int("local_steps", p.local_steps, 1),
        standardize=standardize,
        solver=solver,
        min_patients=p.min_patients,
        max_param_ratio=p.max_param_ratio,
        output=output,
    )
    validate_privacy_params(resolved.min_patients, resolved.max_param_ratio)
    _check_strategy_scope(resolved)
    return resolved


def _check_strategy_scope(p: Params) -> None:
    """Refuse parameters set away from their default for a strategy that ignores them."""
    default = Params()
    scope = {
        "fedavg": ("weighted", "local_steps"),
        "exact": ("standardize", "solver"),
    }
    for strategy, names in scope.items():
        if p.strategy == strategy:
            continue
        for name in names:
            if getattr(p, name) != getattr(default, name):
                raise ConfigError(
                    f"{name!r} applies to strategy={strategy!r} only; "
                    f"got {name}={getattr(p, name)!r} with strategy={p.strategy!r}."
                )
