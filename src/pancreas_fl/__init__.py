"""pancreas-fl: the FLAME pancreas tutorial's federated logistic regression, and beyond.

Hospitals (FLAME analyzer nodes) fit a logistic regression on their own patients; an
aggregator node combines only aggregates; no patient record leaves a hospital.

* :class:`PancreasAnalyzer` and :class:`FederatedLogisticRegression`: the FLAME node classes
  (subclasses of the star-pattern bases chosen by :mod:`pancreas_fl.sdk`).
* :func:`main`: the FLAME entrypoint (``src/pancreas_analysis.py`` calls it).
* :func:`load_model`: a result file as a fitted scikit-learn ``LogisticRegression``.

The local tools (the ``pancreas-fl`` command, simulation, reports) are the separate package
:mod:`pancreas_fl_tools`, which the FLAME Hub upload does not hold. Module paths of 0.1 that
moved still import, with a :class:`DeprecationWarning` (:mod:`pancreas_fl._moved`).
"""

from importlib import import_module

from pancreas_fl import _moved

__all__ = [
    "FederatedLogisticRegression",
    "PancreasAnalyzer",
    "__version__",
    "load_model",
    "main",
]

__version__ = "0.1.0"

# Imported on first use: the engine's node processes and ``pancreas_fl.sdk`` users need not
# pay for scikit-learn and pandas unless they touch the analysis.
_LAZY = {
    "FederatedLogisticRegression": "pancreas_fl.analysis",
    "PancreasAnalyzer": "pancreas_fl.analysis",
    "load_model": "pancreas_fl.results",
    "main": "pancreas_fl.entrypoint",
}


_moved.install()


def __getattr__(name):
    if name in _LAZY:
        try:
            module = import_module(_LAZY[name])
        except AttributeError as exc:
            # ``from pancreas_fl import main`` would otherwise report an AttributeError raised
            # while importing the module as "cannot import name 'main'", hiding the cause.
            raise ImportError(f"importing {_LAZY[name]} failed: {exc}") from exc
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pancreas_fl' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
