"""Pure statistics of pancreas-fl: federated logistic regression (numpy only).

Hospital side: :func:`local_terms`, :func:`local_moments`. Aggregator side:
:func:`aggregate_terms`, :class:`FederatedSolver` (with :mod:`~pancreas_fl.stats.newton`,
:mod:`~pancreas_fl.stats.lbfgs` and :mod:`~pancreas_fl.stats.line_search`),
:func:`combine_moments`, :func:`glm_summary`. No FLAME code here; the strategies
(:mod:`pancreas_fl.strategies`) call these functions.
"""

from pancreas_fl.stats.glm import Z_975, format_summary, glm_summary, null_deviance
from pancreas_fl.stats.logistic import (
    aggregate_terms,
    design_matrix,
    local_terms,
    log_loss_terms,
    sigmoid,
)
from pancreas_fl.stats.metrics import accuracy, log_loss_mean, predict_proba, roc_auc
from pancreas_fl.stats.solver import (
    DEFAULT_TOL,
    HESSIAN_LIMIT,
    FederatedSolver,
    SolverStep,
    objective,
    resolve_method,
    validate_solver_params,
)
from pancreas_fl.stats.standardize import (
    combine_moments,
    local_moments,
    raw_space_jacobian,
    scale_from_var,
    standardize,
    to_raw_space,
)

__all__ = [
    "DEFAULT_TOL",
    "HESSIAN_LIMIT",
    "Z_975",
    "FederatedSolver",
    "SolverStep",
    "accuracy",
    "aggregate_terms",
    "combine_moments",
    "design_matrix",
    "format_summary",
    "glm_summary",
    "local_moments",
    "local_terms",
    "log_loss_mean",
    "log_loss_terms",
    "null_deviance",
    "objective",
    "predict_proba",
    "raw_space_jacobian",
    "resolve_method",
    "roc_auc",
    "scale_from_var",
    "sigmoid",
    "standardize",
    "to_raw_space",
    "validate_solver_params",
]
