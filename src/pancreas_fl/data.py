"""Load and validate one hospital's data exactly as the FLAME pancreas tutorial reads it.

A FLAME analyzer node receives its data in the *s3* format: a list with one dict per data
source, each mapping an object key (file name) to the object's content as ``bytes``. The
tutorial does::

    df = pd.read_csv(BytesIO(data[0]["pancreasData.csv"]))
    X, y = df.iloc[:, :-1], df.iloc[:, -1]

:func:`load_hospital_data` makes the *same* ``pd.read_csv(BytesIO(raw))`` call and the *same*
``iloc`` slicing for the default (last-column) label, so a model fitted on
``HospitalData.features`` / ``HospitalData.labels`` is bit-identical to the tutorial's. It
parses the file once and checks it first, so that a bad file gives one clear line (what is
wrong, where, and what to do) instead of a pandas or scikit-learn traceback.

Every message contains counts, line numbers and column names only, never a patient value.
The only values ever named are distinct *label* values when the label is not 0/1 (at most 10),
because the data owner needs them to fix the encoding.

Checks, in order (cheap structural checks first):

1. ``data`` is a non-empty list of dicts (what FLAME delivers for ``data_type='s3'``);
2. one source holds the dataset key (the first such source is used, as ``data[0]`` is in the
   tutorial when it holds the key);
3. the object is bytes, not empty, and valid UTF-8 (a UTF-8 byte-order mark is fine);
4. the header (read with :mod:`csv`, because pandas silently renames duplicates to ``x.1``
   and empty names to ``Unnamed: 1``) uses commas, has no empty and no duplicate names;
5. pandas parses it (ragged rows are reported by line), and it has at least one row;
6. the label column exists and at least one feature column remains;
7. every feature is numeric, nothing is missing or infinite;
8. the label is 0/1 (ints, floats 0.0/1.0 or booleans) and, unless disabled, both classes are
   present.

Boolean feature columns (``True``/``False`` in the file, parsed by pandas as ``bool``) are
accepted: scikit-learn converts them to 0.0/1.0 exactly as it would a 0/1 column, so they are
numeric for the model.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from io import BytesIO

import numpy as np
import pandas as pd

from pancreas_fl._warnings import ignoring
from pancreas_fl.errors import ConfigError, DataError

__all__ = [
    "DEFAULT_DATASET",
    "HospitalData",
    "check_same_columns",
    "load_feature_table",
    "load_hospital_data",
]

DEFAULT_DATASET = "pancreasData.csv"
"""The object key of the tutorial's data file."""

_MAX_LISTED = 20  # object keys / column names listed in one message
_MAX_LABEL_VALUES = 10  # distinct label values listed in one message
_OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}


@dataclass(frozen=True, eq=False)
class HospitalData:
    """One hospital's validated data.

    Parameters
    ----------
    features : pandas.DataFrame
        The feature columns. For the default label (the last column) this is exactly the
        tutorial's ``df.iloc[:, :-1]``: same dtypes, same memory, no conversion.
    labels : pandas.Series
        The label column (``df.iloc[:, -1]`` for the default label), 0/1 valued.
    feature_names : tuple of str
        The feature column names, in file order.
    label_name : str
        The label column name.

    Notes
    -----
    Instances compare and hash by identity (``eq=False``): two frames have no single truth
    value. :meth:`to_numpy` returns arrays computed once at construction; they are read-only
    so that the cached copy cannot be changed by accident.
    """

    features: pd.DataFrame
    labels: pd.Series
    feature_names: tuple[str, ...]
    label_name: str
    _X: np.ndarray = field(init=False, repr=False)
    _y: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if tuple(str(c) for c in self.features.columns) != tuple(self.feature_names):
            raise ValueError("feature_names must equal the columns of features, in order")
        if str(self.labels.name) != self.label_name:
            raise ValueError("label_name must equal the name of labels")
        if len(self.features) != len(self.labels):
            raise ValueError("features and labels must have the same number of rows")
        X = np.ascontiguousarray(self.features.to_numpy(dtype=np.float64))
        y = np.ascontiguousarray(self.labels.to_numpy().astype(np.int64))
        X.setflags(write=False)
        y.setflags(write=False)
        object.__setattr__(self, "_X", X)
        object.__setattr__(self, "_y", y)

    @property
    def n_samples(self) -> int:
        """Number of patients (rows)."""
        return len(self._y)

    @property
    def n_features(self) -> int:
        """Number of feature columns."""
        return len(self.feature_names)

    @property
    def n_positive(self) -> int:
        """Number of patients with label 1."""
        return int(np.count_nonzero(self._y == 1))

    @property
    def columns(self) -> tuple[str, ...]:
        """Feature names followed by the label name: what :func:`check_same_columns` compares."""
        return (*self.feature_names, self.label_name)

    def to_numpy(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the data as arrays.

        Returns
        -------
        X : numpy.ndarray of shape (n_samples, n_features)
            float64, C-contiguous, read-only.
        y : numpy.ndarray of shape (n_samples,)
            int64 0/1 labels, read-only.
        """
        return self._X, self._y


def load_hospital_data(
    data: object,
    *,
    dataset: str = DEFAULT_DATASET,
    label: str | int | None = None,
    require_both_classes: bool = True,
) -> HospitalData:
    """Read and validate one hospital's CSV from FLAME's s3 data.

    Parameters
    ----------
    data : list of dict
        What FLAME hands to ``analysis_method`` for ``data_type='s3'``: one dict per data
        source, mapping object keys to ``bytes``.
    dataset : str, default "pancreasData.csv"
        The object key of the CSV file.
    label : str, int or None, default None
        The label column: ``None`` for the last column (the tutorial), a column name, or a
        column position (negative positions count from the end). All other columns are
        features, in file order.
    require_both_classes : bool, default True
        Refuse a hospital whose patients all have the same label (FedAvg needs both classes
        at every hospital).

    Returns
    -------
    HospitalData

    Raises
    ------
    DataError
        When the data cannot be used; the message names the file, the problem (counts and
        column names only) and what to do.
    ConfigError
        When ``dataset`` or ``label`` has an invalid type.
    """
    if not isinstance(dataset, str):
        raise ConfigError(f"'dataset' must be a str. Got {dataset!r} instead.")
    if label is not None and (isinstance(label, bool) or not isinstance(label, (str, int))):
        raise ConfigError(f"'label' must be a str, an int or None. Got {label!r} instead.")

    raw = _find_object(data, dataset)
    text, header, df = _read_table(
        raw, dataset, no_rows_hint="Export the patients' rows too, or leave this hospital out"
    )
    names = [str(c) for c in df.columns]
    position = _label_position(label, names, dataset)
    if len(names) < 2:
        raise DataError(
            f"has no feature column (only the label column {names[position]!r})",
            file=dataset,
            hint="Export the measurements next to the label column",
        )
    if position == len(names) - 1:
        # exactly the tutorial's slicing: no copy, no conversion
        features, labels = df.iloc[:, :-1], df.iloc[:, -1]
    else:
        features = df.iloc[:, [i for i in range(len(names)) if i != position]]
        labels = df.iloc[:, position]

    _check_features(features, dataset)
    _check_missing(df, text, len(header), dataset)
    _check_infinite(features, dataset)
    _check_labels(labels, dataset, require_both_classes)

    return HospitalData(
        features=features,
        labels=labels,
        feature_names=tuple(str(c) for c in features.columns),
        label_name=str(labels.name),
    )


def load_feature_table(
    raw: bytes,
    *,
    dataset: str,
    n_features: int,
    feature_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Read and validate a CSV of patients to predict for.

    Parameters
    ----------
    raw : bytes
        The CSV file's content.
    dataset : str
        The file's name, for messages.
    n_features : int
        The model's number of features.
    feature_names : sequence of str, optional
        The model's feature names; the columns are then taken by name (other columns, such as
        the label, are ignored). Without names the file holds the features in training order,
        optionally followed by the label column (as the training files do).

    Returns
    -------
    pandas.DataFrame
        The feature columns, numeric and complete.

    Raises
    ------
    DataError
        When the file cannot be read or lacks the model's features.
    """
    text, header, df = _read_table(raw, dataset, no_rows_hint="Give at least one patient's row")
    names = [str(c) for c in df.columns]
    if feature_names is not None:
        missing = [name for name in feature_names if name not in names]
        if missing:
            raise DataError(
                f"lacks the model's feature column(s) {_names(missing)}",
                file=dataset,
                hint="Give the columns the model was trained on, with the same names",
            )
        features = df[list(feature_names)]
    elif len(names) in (n_features, n_features + 1):
        features = df.iloc[:, :n_features]
    else:
        raise DataError(
            f"has {len(names)} columns but the model has {n_features} features",
            file=dataset,
            hint="Give the features in training order, optionally followed by the label",
        )
    _check_features(features, dataset)
    _check_missing(features, text, len(header), dataset)
    _check_infinite(features, dataset)
    return features


def check_same_columns(
    columns_by_node: Mapping[str, Sequence[str]], *, file: str = DEFAULT_DATASET
) -> None:
    """Check that all hospitals have the same columns in the same order.

    Called by the aggregator with each hospital's column names (only names cross the
    network, never data).

    Parameters
    ----------
    columns_by_node : dict of str to tuple of str
        Hospital (node id) → its column names, e.g. ``HospitalData.columns``.
    file : str, default "pancreasData.csv"
        The dataset key, for the message.

    Raises
    ------
    DataError
        Naming every hospital that differs from the most common column layout and how
        (missing, extra or reordered columns).
    """
    layouts = {str(node): tuple(str(c) for c in cols) for node, cols in columns_by_node.items()}
    if len(set(layouts.values())) <= 1:
        return
    counts = Counter(layouts.values())
    reference = max(layouts.values(), key=lambda cols: counts[cols])
    agreeing = [node for node, cols in layouts.items() if cols == reference]
    # Without a strict majority nobody can tell which hospital is "wrong": the first one is
    # only a point of comparison, and the message says so.
    majority = len(agreeing) * 2 > len(layouts)
    first = agreeing[0]
    differences = []
    for node, cols in layouts.items():
        if cols == reference:
            continue
        missing = [c for c in reference if c not in cols]
        extra = [c for c in cols if c not in reference]
        if not missing and not extra:
            differences.append(
                f"hospital {node!r} has the same columns as {first!r} in a different order"
            )
        elif majority:
            parts = [f"lacks {_names(missing)}"] if missing else []
            parts += [f"has extra {_names(extra)}"] if extra else []
            differences.append(f"hospital {node!r} " + " and ".join(parts))
        elif missing and extra:
            differences.append(
                f"hospital {node!r} has {_names(extra)} where {first!r} has {_names(missing)}"
            )
        elif missing:
            differences.append(f"hospital {node!r} lacks {_names(missing)} (which {first!r} has)")
        else:
            differences.append(
                f"hospital {node!r} has extra {_names(extra)} (which {first!r} lacks)"
            )
    compared = f"compared with {_names(agreeing, kind='hospital')}" if majority else "no majority"
    raise DataError(
        f"hospitals' columns differ: {'; '.join(differences)} ({compared})",
        file=file,
        hint="All hospitals must export the same columns in the same order",
    )


# --------------------------------------------------------------------------------------------
# checks


def _find_object(data: object, dataset: str) -> bytes | bytearray | memoryview:
    what = (
        "FLAME delivers s3 data as a list with one dict per data source, "
        "mapping object keys (file names) to bytes"
    )
    if not isinstance(data, (list, tuple)) or not all(isinstance(d, Mapping) for d in data):
        raise DataError(
            f"data must be a list of dicts, got {_type_name(data)}",
            file=dataset,
            hint=f"{what}; run the analysis with data_type='s3'",
        )
    if len(data) == 0:
        raise DataError(
            "data is an empty list (this hospital has no data source)",
            file=dataset,
            hint=f"{what}; ask the data owner to attach the dataset to the project",
        )
    for source in data:
        if dataset in source:
            raw = source[dataset]
            break
    else:
        keys = sorted({str(k) for source in data for k in source})
        found = _names(keys, kind="object key") if keys else "no object at all"
        raise DataError(
            f"object key {dataset!r} not found in {len(data)} data source(s); found {found}",
            file=dataset,
            hint="Pass dataset=<one of the keys found>, or ask the data owner to upload the file",
        )
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise DataError(
            f"the object is {_type_name(raw)}, not bytes",
            file=dataset,
            hint="FLAME's s3 data maps each key to the file's raw bytes; pass bytes "
            "(e.g. Path(...).read_bytes())",
        )
    if len(bytes(raw).strip()) == 0:
        raise DataError(
            f"the file is empty ({len(raw)} bytes, no header)",
            file=dataset,
            hint="Export the data again with a header row and one row per patient",
        )
    return raw


def _read_table(raw, dataset: str, *, no_rows_hint: str):
    """Decode, check the header, parse: ``(text, header, DataFrame)`` with at least one row."""
    text = _decode(raw, dataset)
    header = _read_header(text, dataset)
    df = _parse(raw, text, len(header), dataset)
    if len(df) == 0:
        raise DataError(
            f"has a header ({len(header)} columns) but no data rows",
            file=dataset,
            hint=no_rows_hint,
        )
    return text, header, df


def _decode(raw: bytes | bytearray | memoryview, dataset: str) -> str:
    raw = bytes(raw)
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise DataError(
            "is UTF-16 text (byte-order mark at byte 0), not UTF-8",
            file=dataset,
            hint='Re-save the file as "CSV UTF-8 (comma delimited)"',
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"is not UTF-8 text (invalid byte at offset {exc.start}, line {line})",
            file=dataset,
            hint='Re-save the file as "CSV UTF-8 (comma delimited)"',
        ) from None


def _read_header(text: str, dataset: str) -> list[str]:
    rows = (row for row in csv.reader(io.StringIO(text, newline="")) if row)
    header = next(rows, None)
    if header is None:  # only blank lines; kept for safety, the emptiness check catches it
        raise DataError("the file has no header row", file=dataset, hint="Export it again")
    if len(header) == 1:
        for delimiter, name in _OTHER_DELIMITERS.items():
            if delimiter in header[0]:
                raise DataError(
                    f"is not comma-separated: the header is one column containing "
                    f"{header[0].count(delimiter)} {name} ({delimiter!r}) delimiter(s)",
                    file=dataset,
                    hint="Export as comma-separated CSV (German spreadsheet exports use ';' "
                    "and decimal commas)",
                )
    empty = [i + 1 for i, name in enumerate(header) if name.strip() == ""]
    if empty:
        raise DataError(
            f"header has {len(empty)} column(s) without a name (position(s) "
            f"{', '.join(map(str, empty[:_MAX_LISTED]))})",
            file=dataset,
            hint="Name every column; a leading unnamed column is usually a row index "
            "written by DataFrame.to_csv() without index=False",
        )
    duplicated = sorted(name for name, n in Counter(header).items() if n > 1)
    if duplicated:
        raise DataError(
            f"header has duplicate column name(s) {_names(duplicated)}",
            file=dataset,
            hint="Give every column a unique name",
        )
    first_row = next(rows, None)
    if first_row is not None and len(first_row) > len(header):
        # pandas would silently take the extra leading field(s) as the row index
        raise _ragged_error(text, len(header), dataset, "")
    return header


def _parse(raw: bytes | bytearray | memoryview, text: str, n_header: int, dataset: str):
    try:
        with ignoring(pd.errors.ParserWarning, pd.errors.DtypeWarning):
            df = pd.read_csv(BytesIO(raw))
    except pd.errors.ParserError as exc:
        raise _ragged_error(text, n_header, dataset, str(exc)) from None
    except (pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(
            f"could not be parsed as CSV ({type(exc).__name__})",
            file=dataset,
            hint="Check that it is a comma-separated text file with a header row",
        ) from None
    return df


def _ragged_error(text: str, n_header: int, dataset: str, pandas_message: str) -> DataError:
    hint = "Every row must have as many comma-separated fields as the header"
    reader = csv.reader(io.StringIO(text, newline=""))
    seen_header = False
    bad = []
    for row in reader:
        if not row:
            continue
        if not seen_header:
            seen_header = True
            continue
        if len(row) > n_header:
            bad.append((reader.line_num, len(row)))
    if bad:
        line, n = bad[0]
        more = f" ({len(bad)} such rows in all)" if len(bad) > 1 else ""
        return DataError(
            f"line {line} has {n} fields, header has {n_header}{more}",
            file=dataset,
            hint=f"{hint}; quote values that contain commas",
        )
    match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", pandas_message)
    if match:
        expected, line, saw = match.groups()
        return DataError(
            f"line {line} has {saw} fields, header has {expected}", file=dataset, hint=hint
        )
    if "EOF inside string" in pandas_message:
        return DataError(
            f"a quoted field starting on line {_unclosed_quote_line(text)} is never closed",
            file=dataset,
            hint="Close every opening double quote",
        )
    return DataError("could not be parsed as comma-separated CSV", file=dataset, hint=hint)


def _unclosed_quote_line(text: str) -> int:
    """The line on which the double quote that is never closed opens (1-based)."""
    inside, opened = False, 0
    for number, line in enumerate(text.splitlines(), start=1):
        for char in line:
            if char == '"':
                inside = not inside
                if inside:
                    opened = number
    return opened


def _label_position(label: str | int | None, names: list[str], dataset: str) -> int:
    n = len(names)
    if label is None:
        return n - 1
    if isinstance(label, str):
        if label not in names:
            raise DataError(
                f"label column {label!r} not found; columns are {_names(names)}",
                file=dataset,
                hint="Pass label=<column name> or a column position; the default is the "
                "last column",
            )
        return names.index(label)
    if not -n <= label < n:
        raise DataError(
            f"label position {label} is out of range for {n} columns",
            file=dataset,
            hint=f"Pass a position in [{-n}, {n - 1}] or a column name",
        )
    return label % n


def _check_features(features: pd.DataFrame, dataset: str) -> None:
    bad = [
        str(name)
        for name, dtype in features.dtypes.items()
        if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_complex_dtype(dtype)
    ]
    if bad:
        raise DataError(
            f"{len(bad)} feature column(s) {_names(bad)} are not numeric",
            file=dataset,
            hint="Export numbers only ('.' as decimal separator), encode categories as 0/1 "
            "columns, or drop those columns",
        )


def _check_missing(df: pd.DataFrame, text: str, n_header: int, dataset: str) -> None:
    counts = df.isna().sum()
    counts = counts[counts > 0]
    if counts.empty:
        return
    short = _count_short_rows(text, n_header)
    detail = ", ".join(f"{str(name)!r} ({int(n)})" for name, n in counts.iloc[:_MAX_LISTED].items())
    if len(counts) > _MAX_LISTED:
        detail += f" and {len(counts) - _MAX_LISTED} more column(s)"
    extra = f"; {short} row(s) have fewer fields than the header" if short else ""
    raise DataError(
        f"has {int(counts.sum())} missing value(s) in column(s) {detail}{extra}",
        file=dataset,
        hint="Impute or drop incomplete rows before export (logistic regression cannot use "
        "missing values)",
    )


def _count_short_rows(text: str, n_header: int) -> int:
    rows = (row for row in csv.reader(io.StringIO(text, newline="")) if row)
    next(rows, None)
    return sum(1 for row in rows if len(row) < n_header)


def _check_infinite(features: pd.DataFrame, dataset: str) -> None:
    floats = features.select_dtypes(include="floating")
    if floats.shape[1] == 0:
        return
    counts = pd.Series(np.isinf(floats.to_numpy()).sum(axis=0), index=floats.columns)
    counts = counts[counts > 0]
    if counts.empty:
        return
    detail = ", ".join(f"{str(name)!r} ({int(n)})" for name, n in counts.iloc[:_MAX_LISTED].items())
    if len(counts) > _MAX_LISTED:
        detail += f" and {len(counts) - _MAX_LISTED} more column(s)"
    raise DataError(
        f"has {int(counts.sum())} infinite value(s) in column(s) {detail}",
        file=dataset,
        hint="Replace 'inf' values (often a division by zero or a log of 0 upstream) before export",
    )


def _check_labels(labels: pd.Series, dataset: str, require_both_classes: bool) -> None:
    name = str(labels.name)
    dtype = labels.dtype
    values = pd.unique(labels.to_numpy())
    if pd.api.types.is_bool_dtype(dtype):
        ok = True
    elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        ok = all(v in (0, 1) for v in values)
    else:
        ok = False
    if not ok:
        raise DataError(
            f"label column {name!r} must be 0/1, found "
            f"{_describe_label_values(values, len(labels))}",
            file=dataset,
            hint="Encode the diagnosis as 1 (disease) and 0 (control); if the label is "
            "another column, pass label=<column name>",
        )
    if require_both_classes and len(values) < 2:
        present = int(bool(values[0]))
        raise DataError(
            f"all {len(labels)} patients have {name} = {present}; class {1 - present} is absent",
            file=dataset,
            hint="FedAvg needs both classes at every hospital: use strategy='exact' or add "
            "patients of the other class",
        )


# --------------------------------------------------------------------------------------------
# formatting helpers (names and counts only)


def _names(names: Sequence[str], *, kind: str = "column") -> str:
    shown = ", ".join(repr(str(n)) for n in names[:_MAX_LISTED])
    if len(names) > _MAX_LISTED:
        shown += f" and {len(names) - _MAX_LISTED} more {kind}s"
    return shown


def _type_name(obj: object) -> str:
    if isinstance(obj, (list, tuple)):
        inner = sorted({type(d).__name__ for d in obj if not isinstance(d, Mapping)})
        return f"a {type(obj).__name__} containing {', '.join(inner)}"
    return type(obj).__name__


def _sort_key(value: object) -> tuple[int, float, str]:
    if isinstance(value, (bool, np.bool_)):
        return (0, float(value), "")
    if isinstance(value, (int, float, np.integer, np.floating)):
        v = float(value)
        return (0, v if not math.isnan(v) else math.inf, "")
    return (1, 0.0, str(value))


def _describe_label_values(values, n_rows: int) -> str:
    """The label values found, listed only when they are category codes.

    Codes are text or small whole numbers (-9 to 9), at most ``_MAX_LABEL_VALUES`` distinct
    ones, each shared by two patients on average. Anything else (fractional or large numbers,
    values unique to a patient) may be a measurement or an identifier, for example when the
    label column is not last, so only the count is given: listing those would put patient
    values into a message.
    """
    plain = [v.item() if isinstance(v, np.generic) else v for v in values]
    shared = len(plain) <= min(_MAX_LABEL_VALUES, n_rows / 2)
    codes = all(
        isinstance(v, str)
        or (isinstance(v, (int, float)) and float(v).is_integer() and abs(v) <= 9)
        for v in plain
        if not (isinstance(v, float) and math.isnan(v))
    )
    if shared and codes:
        return "value(s) " + ", ".join(_label_repr(v) for v in sorted(values, key=_sort_key))
    return (
        f"{len(plain)} distinct values that may be measurements or identifiers (not listed: "
        "they could be patient values)"
    )


def _label_repr(value: object) -> str:
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        value = value.item()
    return repr(value)
