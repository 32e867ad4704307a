"""Pure statistics of pancreas-fl: federated logistic regression (numpy only).

Hospital side: :func:`local_terms`, :func:`local_moments`. Aggregator side:
:func:`aggregate_terms`, :class:`FederatedSolver`, :func:`combine_moments`,
:func:`glm_summary`. FedAvg (the tutorial's strategy): :mod:`pancreas_fl.stats.fedavg`.
No FLAME code here; the FLAME adapters call these functions.
"""

from pancreas_fl.stats.fedavg import (
    federated_mean,
    l2_change,
    local_step,
    make_local_model,
    stop_reason,
)
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
    "federated_mean",
    "format_summary",
    "glm_summary",
    "l2_change",
    "local_moments",
    "local_step",
    "local_terms",
    "log_loss_mean",
    "log_loss_terms",
    "make_local_model",
    "null_deviance",
    "objective",
    "predict_proba",
    "raw_space_jacobian",
    "resolve_method",
    "roc_auc",
    "scale_from_var",
    "sigmoid",
    "standardize",
    "stop_reason",
    "to_raw_space",
    "validate_solver_params",
]
