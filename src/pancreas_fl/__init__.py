"""pancreas-fl: the FLAME pancreas tutorial's federated logistic regression, and beyond.

Hospitals (FLAME analyzer nodes) fit a logistic regression on their own patients; an
aggregator node combines only aggregates; no patient record leaves a hospital.

* :class:`PancreasAnalyzer` and :class:`FederatedLogisticRegression`: the FLAME node classes
  (subclasses of the star-pattern bases chosen by :mod:`pancreas_fl.sdk`).
* :func:`main`: the FLAME entrypoint (``python -m pancreas_fl``).
* :func:`load_model`: a result file as a fitted scikit-learn ``LogisticRegression``.
"""

from pancreas_fl.analysis import FederatedLogisticRegression, PancreasAnalyzer
from pancreas_fl.entrypoint import main
from pancreas_fl.results import load_model

__all__ = [
    "FederatedLogisticRegression",
    "PancreasAnalyzer",
    "__version__",
    "load_model",
    "main",
]

__version__ = "0.1.0"
