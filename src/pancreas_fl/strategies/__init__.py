"""The two strategies, each with its hospital side and its aggregator side in one module.

* :mod:`~pancreas_fl.strategies.fedavg`: the FLAME tutorial's federated averaging of
  one-step local fits (the default).
* :mod:`~pancreas_fl.strategies.exact`: the pooled fit by federated Newton or L-BFGS on exact
  sums, with GLM statistics.

The FLAME node classes in :mod:`pancreas_fl.analysis` pick one by the ``strategy`` parameter
and delegate each round to it. A hospital side has ``update(broadcast)`` and the class
attribute ``requires_both_classes``; an aggregator side has ``aggregate(updates,
num_iterations)``, ``stop_reason(result, last_result, num_iterations)`` and
``stop_message(reason)``. No FLAME import here.
"""

from pancreas_fl.strategies.exact import ExactAggregator, ExactHospital
from pancreas_fl.strategies.fedavg import FedAvgAggregator, FedAvgHospital

__all__ = ["ExactAggregator", "ExactHospital", "FedAvgAggregator", "FedAvgHospital"]
