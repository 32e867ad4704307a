"""The FLAME entrypoint: start this node of the analysis, as the tutorial's ``main()`` does."""

from __future__ import annotations

from pancreas_fl.analysis import FederatedLogisticRegression, PancreasAnalyzer
from pancreas_fl.sdk import StarModel

__all__ = ["main"]


def main(**params) -> None:
    """Start the node's part of the analysis with FLAME's ``StarModel``.

    Parameters
    ----------
    **params
        Analysis parameters given to both roles as ``analyzer_kwargs`` and
        ``aggregator_kwargs`` (see :class:`pancreas_fl.params.Params`), for example
        ``main(strategy="exact", fit_intercept=True)``. Without any, the analysis is the
        tutorial's.

    Notes
    -----
    Inside FLAME the real SDK is used: ``StarModel`` fetches the hospital's s3 objects, runs
    the rounds and, at the aggregator, submits the pickled final result. Outside FLAME there
    is no node to run; use ``pancreas-fl simulate`` or a ``StarModelTester``.
    """
    kwargs = params or None
    StarModel(
        PancreasAnalyzer,
        FederatedLogisticRegression,
        "s3",
        simple_analysis=False,
        output_type="pickle",
        analyzer_kwargs=kwargs,
        aggregator_kwargs=kwargs,
    )
