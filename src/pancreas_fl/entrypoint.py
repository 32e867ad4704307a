"""The FLAME entrypoint: start this node of the analysis, as the tutorial's ``main()`` does."""

from __future__ import annotations

from pancreas_fl.analysis import FederatedLogisticRegression, PancreasAnalyzer
from pancreas_fl.params import default
from pancreas_fl.s3 import s3_query
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

    A ``dataset`` glob pattern (e.g. ``"synthetic_*_labeled.csv"``) is passed as
    ``query=[]``: the node then downloads *every* object of the hospital's bucket, once, in
    the first round (transfer and memory for all of them, however large), and the analysis
    picks the one key that matches (:func:`pancreas_fl.s3.resolve_key`). Where buckets hold
    other large files, ask each data owner for the exact key instead.
    """
    kwargs = params or None
    # Only the analysis's own object is fetched; a glob pattern cannot be queried, so its node
    # fetches every object of the bucket and the hospital picks the one match. A malformed
    # ``dataset`` fetches nothing extra and is refused by the hospital's parameter check.
    query = s3_query(params.get("dataset") or default("dataset"))
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
