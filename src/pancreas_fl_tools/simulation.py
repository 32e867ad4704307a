"""Run the federated analysis on this machine: hospitals from folders, the offline engine.

This is what ``pancreas-fl simulate`` does, as a library: :func:`read_hospital` turns a folder
into a hospital's s3 data (:func:`read_hospitals` every folder, :func:`locate_datasets` finds
every hospital's file first), :func:`simulate` runs :class:`~pancreas_fl.PancreasAnalyzer` and
:class:`~pancreas_fl.FederatedLogisticRegression` on the offline engine's
``StarModelTester``, and :func:`evaluate` scores the final model at each hospital.
"""

from __future__ import annotations

import fnmatch
import math
import os
import stat
from pathlib import Path

from sklearn.pipeline import Pipeline

from flame_offline import StarModelTester
from pancreas_fl.analysis import FederatedLogisticRegression, PancreasAnalyzer
from pancreas_fl.column_options import prepare_table
from pancreas_fl.encoding import Encoding
from pancreas_fl.errors import DataError, HospitalProblemsError, UsageError, quote_path
from pancreas_fl.files import NotARegularFileError, read_regular_file
from pancreas_fl.params import DEFAULT_DATASET, resolve_params
from pancreas_fl.reader import HospitalData, in_tutorial_format, load_hospital_data
from pancreas_fl.results import model_from_result
from pancreas_fl.s3 import is_pattern, resolve_key, s3_query
from pancreas_fl_tools.metrics import accuracy, roc_auc

__all__ = [
    "dataset_path",
    "evaluate",
    "hospital_names",
    "locate_datasets",
    "read_hospital",
    "read_hospitals",
    "simulate",
]

_MAX_LISTED = 20  # file names listed in one message


def read_hospital(folder, dataset: str = DEFAULT_DATASET) -> list[dict[str, bytes]]:
    """Read a hospital folder as FLAME's s3 data for a query of one key: ``[{dataset: bytes}]``.

    Like a production FLAME node, which fetches only the objects the analysis queries (the
    entrypoint passes ``query=[dataset]``), only the dataset's file is read: other files in
    the folder are neither opened nor loaded into memory, and are only named when the dataset
    is missing. For a glob pattern only the one matching file is read (see
    :func:`dataset_path`), under its own name as the key; a FLAME node instead fetches every
    object of the bucket (``query=[]``), see :func:`s3_query`.

    Parameters
    ----------
    folder : str or os.PathLike
        The hospital's folder.
    dataset : str, default "pancreasData.csv"
        The object key: a file name inside ``folder``.

    Raises
    ------
    DataError
        When the folder does not exist, the file is missing, outside the folder, not a
        regular file or unreadable. ``file`` is the file's path.
    """
    target = dataset_path(folder, dataset)
    file, path = str(target), Path(folder)
    try:
        raw = read_regular_file(target)
    except NotARegularFileError:
        raise DataError(
            "not a regular file", file=file, hint="Give the hospital's CSV file itself"
        ) from None
    except FileNotFoundError:
        others = _file_names(path)
        found = _listed(others)
        raise DataError(
            f"not found; the folder holds {found}" if others else "not found; the folder is empty",
            file=file,
            hint="Pass the data file's name (--dataset, or dataset=...) or add the file",
        ) from None
    except OSError as exc:
        raise DataError(
            f"cannot read the file ({exc.strerror})",
            file=file,
            hint="Check the file's permissions",
        ) from None
    return [{target.name if is_pattern(dataset) else dataset: raw}]


def dataset_path(folder, dataset: str = DEFAULT_DATASET) -> Path:
    """Return the path of a hospital's data file.

    That is ``folder/dataset``, or the one file in ``folder`` whose name matches the glob
    pattern ``dataset`` (as :func:`pancreas_fl.s3.resolve_key` matches object keys; a file
    named like the pattern itself wins).

    Only names are listed, nothing is read.

    Raises
    ------
    DataError
        When the folder does not exist, the key is not a file name inside it, or no file or
        several files match the pattern (listed).
    """
    shown = quote_path(folder)
    hint = "Give one folder per hospital, holding its files (e.g. data/sample/node1)"
    if os.fspath(folder) == "":
        raise DataError(
            "hospital folder '': an empty path (it would silently mean the current folder)",
            hint="Give the folder's name, or '.' for the current folder",
        )
    path = Path(folder)
    if not path.is_dir():
        raise DataError(f"hospital folder {shown}: not a directory", hint=hint)
    target = path / dataset
    if not dataset or path.resolve() not in target.resolve().parents:
        raise DataError(
            f"the dataset key {dataset!r} does not name a file inside the hospital folder",
            file=str(target),
            hint="Pass the name of the data file inside each hospital folder",
        )
    if not is_pattern(dataset) or target.is_file():
        return target
    names = _file_names(path)
    matches = [name for name in names if fnmatch.fnmatchcase(name, dataset)]
    if len(matches) == 1:
        return path / matches[0]
    listed = _listed(matches if matches else names)
    problem = (
        f"{len(matches)} files match the pattern: {listed}"
        if matches
        else (
            f"no file matches the pattern; the folder holds {listed}"
            if names
            else "no file matches the pattern; the folder is empty"
        )
    )
    raise DataError(
        problem,
        file=str(target),
        hint="Pass a --dataset name or pattern that matches exactly one file per hospital",
    )


def _file_names(path: Path) -> list[str]:
    return sorted(
        entry.name for entry in path.iterdir() if not entry.name.startswith(".") and entry.is_file()
    )


def _listed(names: list[str]) -> str:
    found = ", ".join(repr(name) for name in names[:_MAX_LISTED])
    if len(names) > _MAX_LISTED:
        found += f" and {len(names) - _MAX_LISTED} more files"
    return found


def hospital_names(folders) -> list[str]:
    """Node ids for hospital folders: their names, or their paths where names repeat.

    Raises
    ------
    UsageError
        For an empty path, a folder that does not exist, the same folder twice (also through
        a link or a trailing slash) and a hospital named like the aggregator.
    """
    from flame_offline.tester import AGGREGATOR_ID

    seen: dict[tuple[int, int], str] = {}
    for folder in folders:
        if folder == "":
            raise UsageError(
                "hospital folder '': an empty path (it would silently mean the current "
                "folder). Give the folder's name, or '.' for the current folder."
            )
        try:
            info = os.stat(folder)
        except OSError:
            info = None
        if info is None or not stat.S_ISDIR(info.st_mode):
            raise UsageError(
                f"hospital folder {quote_path(folder)}: not a directory. Give one folder per "
                "hospital, holding its files (e.g. data/sample/node1)."
            )
        key = (info.st_dev, info.st_ino)
        if key in seen:
            raise UsageError(
                f"hospital folders {quote_path(seen[key])} and {quote_path(folder)} are the "
                "same folder; give each hospital once (its patients would be counted twice)."
            )
        seen[key] = folder
    paths = [Path(folder) for folder in folders]
    names = [
        path.name if path.name not in ("", "..") else path.resolve().name or str(path.resolve())
        for path in paths
    ]
    if len(set(names)) != len(names) or AGGREGATOR_ID in names:
        names = [str(path) for path in paths]
    if AGGREGATOR_ID in names:
        raise UsageError(
            f"hospital folder {AGGREGATOR_ID!r}: the name is the aggregator's node id. Rename "
            "the folder, or give it by a longer path (e.g. sites/aggregator)."
        )
    return names


def locate_datasets(folders, names, dataset: str = DEFAULT_DATASET) -> list[Path]:
    """Return every hospital's data file (:func:`dataset_path`), naming every hospital without.

    Every file is found (a ``dataset`` pattern matched) before anything is read.

    Raises
    ------
    DataError
        One hospital has no such file (or several match), named with its node.
    HospitalProblemsError
        Several hospitals have none: one report per hospital.
    """
    return _at_each_hospital(dataset_path, folders, names, dataset)


def read_hospitals(folders, names, dataset: str = DEFAULT_DATASET) -> list[list[dict]]:
    """Return every hospital's s3 data (:func:`read_hospital`), naming every folder that fails.

    Raises
    ------
    DataError
        One hospital's folder cannot be read, named with its node.
    HospitalProblemsError
        Several cannot: one report per hospital.
    """
    return _at_each_hospital(read_hospital, folders, names, dataset)


def _at_each_hospital(read, folders, names, dataset: str) -> list:
    """Return ``read(folder, dataset)`` for every hospital, collecting the hospitals' errors."""
    found, problems = [], []
    for name, folder in zip(names, folders, strict=True):
        try:
            found.append(read(folder, dataset))
        except DataError as err:
            problems.append(err.with_context(node=name))
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise HospitalProblemsError(problems)
    return found


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
        query=s3_query(params.get("dataset", DEFAULT_DATASET)),
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


def evaluate(
    result, splits, names, *, dataset=DEFAULT_DATASET, label=None, dialect=None
) -> list[dict]:
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
    dialect : dict, optional
        The ``sep``, ``decimal`` and ``encoding`` parameters of the analysis (``None``:
        detected, as the hospitals detected them).

    Returns
    -------
    list of dict
        Per hospital: ``hospital``, ``patients``, ``positives``, ``accuracy``, ``roc_auc``
        (``None`` where the hospital has one class only).
    """
    clf = model_from_result(result)
    encoding = result.get("encoding") if isinstance(result, dict) else None
    rows = []
    for name, split in zip(names, splits, strict=True):
        key = resolve_key(split, dataset)
        split, _ = in_tutorial_format(split, key, **(dialect or {}))  # as the hospital read it
        if encoding is None:
            data = load_hospital_data(split, dataset=key, label=label, require_both_classes=False)
        else:
            data = _encoded_data(split, Encoding.from_dict(encoding), dataset=dataset, label=label)
        model = clf[-1] if isinstance(clf, Pipeline) else clf  # on the encoded columns
        X = data.features if hasattr(model, "feature_names_in_") else data.to_numpy()[0]
        proba = model.predict_proba(X)[:, 1]
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


def _encoded_data(split, encoding: Encoding, *, dataset: str, label) -> HospitalData:
    """Prepare and encode a hospital's rows as the analysis did (the model's encoding)."""
    params = resolve_params(
        strategy="exact",
        dataset=dataset,
        label=label,
        features=encoding.features,
        categorical=tuple(encoding.levels) or None,
        fill=encoding.fill or None,
        missing=encoding.missing,
        min_patients=1,
        max_param_ratio=1.0,
        min_cell=1,
    )
    table = prepare_table(split, params, require_both_classes=False)
    if table.problems:
        raise table.problems[0]
    return HospitalData.from_table(table, encoding)
