"""The FLAME entrypoint: start this node of the analysis, as the tutorial's ``main()`` does."""

from __future__ import annotations

from pancreas_fl.analysis import FederatedLogisticRegression, PancreasAnalyzer
from pancreas_fl.params import default
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
    Inside FLAME the real SDK is used: ``StarModel`` fetches the hospital's s3 object named by
    ``dataset``, runs the rounds and, at the aggregator, submits the pickled final result.
    Outside FLAME there is no node to run; use ``pancreas-fl simulate`` or a
    ``StarModelTester``.

    The s3 query is explicit on purpose. The tutorial's ``main()`` passes none, and on a
    production node (flamesdk 0.4 and later) ``get_s3_data(None)`` returns ``None``: every
    hospital would get ``data=None``. The SDK's local mock ignores the query, so only a
    production-like run (``make flame-node``) shows the difference.
    """
    kwargs = params or None
    dataset = params.get("dataset") or default("dataset")
    # Only the analysis's own object is fetched; a malformed ``dataset`` fetches nothing
    # extra here and is refused, in one line, by the hospital's parameter check.
    query = [dataset] if isinstance(dataset, str) else []
    StarModel(
        PancreasAnalyzer,
        FederatedLogisticRegression,
        "s3",
        query=query,
        simple_analysis=False,
        output_type="pickle",
        analyzer_kwargs=kwargs,
        aggregator_kwargs=kwargs,
    )
