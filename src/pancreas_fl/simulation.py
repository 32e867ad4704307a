"""Run the federated analysis on this machine: hospitals from folders, the offline engine.

This is what ``pancreas-fl simulate`` does, as a library: :func:`read_hospital` turns a folder
into a hospital's s3 data, :func:`simulate` runs :class:`~pancreas_fl.PancreasAnalyzer` and
:class:`~pancreas_fl.FederatedLogisticRegression` on the offline engine's
``StarModelTester``, and :func:`evaluate` scores the final model at each hospital.
"""

from __future__ import annotations

import math
from pathlib import Path

from pancreas_fl.analysis import FederatedLogisticRegression, PancreasAnalyzer
from pancreas_fl.data import DEFAULT_DATASET, load_hospital_data
from flame_offline import StarModelTester
from pancreas_fl.errors import DataError
from pancreas_fl.results import model_from_result
from pancreas_fl.stats import accuracy, roc_auc

__all__ = ["evaluate", "read_hospital", "simulate"]


def read_hospital(folder) -> list[dict[str, bytes]]:
    """A hospital folder as FLAME's s3 data: one source mapping each file name to its bytes.

    Hidden files (starting with ``.``) and subfolders are left out.

    Raises
    ------
    DataError
        When the folder does not exist or holds no file.
    """
    path = Path(folder)
    hint = "Give one folder per hospital, holding its files (e.g. data/sample/node1)"
    if not path.is_dir():
        raise DataError(f"hospital folder {folder}: not a directory", hint=hint)
    objects = {
        entry.name: entry.read_bytes()
        for entry in sorted(path.iterdir())
        if entry.is_file() and not entry.name.startswith(".")
    }
    if not objects:
        raise DataError(f"hospital folder {folder}: contains no files", hint=hint)
    return [objects]


def simulate(
    splits,
    *,
    node_ids=None,
    isolation: str = "thread",
    timeout: float | None = 300.0,
    log_handler=None,
    stream_log_level: int = 20,
    analyzer: type = PancreasAnalyzer,
    aggregator: type = FederatedLogisticRegression,
    **params,
) -> StarModelTester:
    """Run the analysis with every hospital as a node of the offline engine.

    Parameters
    ----------
    splits : list
        One entry per hospital, each FLAME's s3 data (a list of dicts of file name -> bytes).
    node_ids : list of str, optional
        Hospital names (default ``node-1`` ... ``node-N``).
    isolation : {'thread', 'process'}
        See :class:`flame_offline.StarModelTester`.
    timeout : float or None
        Longest wait of a node for messages, in seconds.
    log_handler : callable, optional
        Receives every log record as it happens (else records from ``stream_log_level`` up
        go to stderr).
    stream_log_level : int
        See above.
    analyzer, aggregator : type
        The node classes (for comparisons, e.g. with the tutorial's own classes).
    **params
        The analysis parameters (see :class:`pancreas_fl.params.Params`), given to both roles.

    Returns
    -------
    StarModelTester
        Finished; ``.result`` holds the final result, ``.logs`` every log record.

    Raises
    ------
    flame_offline.NodeFailedError
        A node failed; ``.error`` is its exception (for example a
        :class:`~pancreas_fl.errors.DataError` naming the hospital and file).
    flame_offline.NodeTimeoutError
        A node waited longer than ``timeout``.
    """
    kwargs = params or None
    return StarModelTester(
        splits,
        analyzer,
        aggregator,
        "s3",
        simple_analysis=False,
        output_type="pickle",
        analyzer_kwargs=kwargs,
        aggregator_kwargs=kwargs,
        isolation=isolation,
        timeout=timeout,
        node_ids=node_ids,
        log_handler=log_handler,
        stream_log_level=stream_log_level,
        print_failures=False,
        print_result=False,
    )


def evaluate(result, splits, names, *, dataset=DEFAULT_DATASET, label=None) -> list[dict]:
    """Accuracy and ROC AUC of a final result at each hospital, on that hospital's data.

    Parameters
    ----------
    result : ndarray or dict
        The final result (bare coefficients or model dict).
    splits : list
        The hospitals' s3 data, as given to :func:`simulate`.
    names : list of str
        The hospitals' names, for the rows.
    dataset, label
        As in the analysis.

    Returns
    -------
    list of dict
        Per hospital: ``hospital``, ``patients``, ``positives``, ``accuracy``, ``roc_auc``
        (``None`` where the hospital has one class only).
    """
    clf = model_from_result(result)
    rows = []
    for name, split in zip(names, splits, strict=True):
        data = load_hospital_data(split, dataset=dataset, label=label, require_both_classes=False)
        X = data.features if hasattr(clf, "feature_names_in_") else data.to_numpy()[0]
        proba = clf.predict_proba(X)[:, 1]
        y = data.to_numpy()[1]
        auc = roc_auc(y, proba)
        rows.append(
            {
                "hospital": name,
                "patients": data.n_samples,
                "positives": data.n_positive,
                "accuracy": float(accuracy(y, proba)),
                "roc_auc": None if math.isnan(auc) else float(auc),  # NaN: one class only
            }
        )
    return rows
