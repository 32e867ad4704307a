"""exact: the pooled fit by federated Newton (or L-BFGS) on exact sums, with GLM statistics.

Imported only when ``strategy="exact"``: the default (FedAvg, the tutorial) loads none of it.

* :mod:`~pancreas_fl.exact.strategy`: the hospital side and the aggregator side of the
  strategy (what the FLAME node classes call each round).
* :mod:`~pancreas_fl.exact.messages`: what crosses, both ways.
* :mod:`~pancreas_fl.exact.sums`: the sums over a hospital's patients (log-loss, gradient,
  curvature); :mod:`~pancreas_fl.exact.standardize`: the pooled standardization's moments.
* :mod:`~pancreas_fl.exact.solver`: the aggregator's solver, one round per call;
  :mod:`~pancreas_fl.exact.curvature`: what ``solver="auto"`` chooses and how the curvature
  crosses; :mod:`~pancreas_fl.exact.packed`: the packed triangle at the aggregator;
  :mod:`~pancreas_fl.exact.reuse`: when Newton keeps its last Hessian;
  :mod:`~pancreas_fl.exact.bohning`: Böhning's bound, L-BFGS's preconditioner above the budget;
  :mod:`~pancreas_fl.exact.cholesky`: the factors these two keep.
* :mod:`~pancreas_fl.exact.firth`: Firth's penalized likelihood (``penalty="firth"``): the
  hospitals' third-moment sums, the penalized objective, its statistics;
  :mod:`~pancreas_fl.exact.firth_rounds`: its rounds at the aggregator.
* :mod:`~pancreas_fl.exact.glm`: the GLM statistics of the pooled fit, with
  :mod:`~pancreas_fl.exact.aliasing` (collinear terms) and
  :mod:`~pancreas_fl.exact.separation` ((quasi-)separation).

No FLAME import here.
"""

from pancreas_fl.exact.glm import Z_975, format_summary, glm_summary, null_deviance
from pancreas_fl.exact.solver import (
    DEFAULT_TOL,
    HESSIAN_LIMIT,
    FederatedSolver,
    SolverStep,
    objective,
    resolve_method,
    validate_solver_params,
)
from pancreas_fl.exact.standardize import (
    combine_moments,
    local_moments,
    raw_space_jacobian,
    scale_from_var,
    standardize,
    to_raw_space,
)
from pancreas_fl.exact.strategy import ExactAggregator, ExactHospital
from pancreas_fl.exact.sums import aggregate_terms, design_matrix, local_terms, sigmoid
from pancreas_fl.logistic import log_loss_terms

__all__ = [
    "DEFAULT_TOL",
    "HESSIAN_LIMIT",
    "Z_975",
    "ExactAggregator",
    "ExactHospital",
    "FederatedSolver",
    "SolverStep",
    "aggregate_terms",
    "combine_moments",
    "design_matrix",
    "format_summary",
    "glm_summary",
    "local_moments",
    "local_terms",
    "log_loss_terms",
    "null_deviance",
    "objective",
    "raw_space_jacobian",
    "resolve_method",
    "scale_from_var",
    "sigmoid",
    "standardize",
    "to_raw_space",
    "validate_solver_params",
]
