"""The column options: a hospital's own table, its columns chosen, blanks filled, rows complete.

The tutorial's CSV is numeric, complete and laid out alike at every hospital; real hospital
exports are not. With the parameters ``features``, ``categorical``, ``missing`` and ``fill``
(see :mod:`pancreas_fl.params`) the reader (:func:`pancreas_fl.reader.read_hospital`) prepares
a hospital's table here instead of reading it as the tutorial does:

1. the file passes the same structural checks (:func:`pancreas_fl.csvfile.read_table`); a
   file that fails them has one problem and no table;
2. only the chosen columns are taken, by name (``features``, default every column but the
   label; columns not chosen are never checked nor used);
3. ``fill`` replaces blanks in its columns by the value a blank stands for;
4. with ``missing="complete-case"`` rows with a missing value in any used column are dropped
   (R's ``na.omit``), and counted;
5. every check runs and every problem is collected (missing columns, non-numeric columns,
   missing, infinite or huge values, the label's coding, levels held by fewer than
   ``min_cell`` patients), so that the aggregator can report all of them, for all hospitals,
   in one run. The reader then checks the disclosure guards on the rows used.

Problems name columns and count rows; never a value, never a level. This module is imported
only when a column option is set: the tutorial's run never loads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from io import BytesIO

import numpy as np
import pandas as pd

from pancreas_fl._memory import one_file_at_a_time
from pancreas_fl._warnings import ignoring
from pancreas_fl.columns import MAX_ABS_VALUE, check_labels, label_position
from pancreas_fl.csvfile import read_table
from pancreas_fl.encoding import as_levels
from pancreas_fl.errors import DataError, PrivacyError
from pancreas_fl.params import Params
from pancreas_fl.s3 import find_object, resolve_key
from pancreas_fl.wording import listed, listed_counts

__all__ = [
    "PreparedTable",
    "categorical_text",
    "prepare_table",
]

_MAX_LISTED = 20
_AGREE = "with the data owner's agreement"


@dataclass(eq=False)
class PreparedTable:
    """A hospital's rows as the analysis uses them, before categorical encoding.

    Attributes
    ----------
    file : str
        The object key read.
    features : tuple of str
        The chosen feature columns (raw, before encoding).
    label : str
        The label column's name.
    frame : pandas.DataFrame or None
        The used rows of the feature columns: numeric ones as numbers, categorical ones as
        level names. ``None`` when there are problems.
    labels : pandas.Series or None
        The used rows' labels (int64 0/1).
    n_rows : int
        Rows in the file.
    n_dropped : int
        Rows dropped for a missing value (``missing="complete-case"``).
    levels : dict of str to list of str
        Categorical column -> the level names held here, sorted (what is sent).
    problems : list of DataError
        Every problem found (counts and column names only).
    """

    file: str
    features: tuple[str, ...] = ()
    label: str = ""
    frame: pd.DataFrame | None = None
    labels: pd.Series | None = None
    n_rows: int = 0
    n_dropped: int = 0
    levels: dict[str, list[str]] = field(default_factory=dict)
    problems: list[DataError] = field(default_factory=list)

    @property
    def n_used(self) -> int:
        """Rows the analysis uses."""
        return 0 if self.labels is None else len(self.labels)

    @property
    def n_positive(self) -> int:
        """Used rows with label 1."""
        return 0 if self.labels is None else int((self.labels == 1).sum())

    def problem(self, text: str, hint: str | None = None, *, privacy: bool = False) -> None:
        """Record a problem."""
        cls = PrivacyError if privacy else DataError
        self.problems.append(cls(text, file=self.file, hint=hint))


def prepare_table(data: object, params: Params, *, require_both_classes: bool) -> PreparedTable:
    """Read a hospital's table with the analysis's column options, collecting every problem.

    Parameters
    ----------
    data : list of dict
        FLAME's s3 data.
    params : Params
        ``dataset``, ``label``, ``features``, ``categorical``, ``missing``, ``fill``,
        ``min_cell``, ``min_patients``, ``max_param_ratio``, ``fit_intercept`` are used.
    require_both_classes : bool
        Whether a hospital with one class is a problem (FedAvg).

    Returns
    -------
    PreparedTable
        With ``problems`` empty when the table can be used.
    """
    with one_file_at_a_time():
        return _prepare(data, params, require_both_classes)


def _prepare(data: object, params: Params, require_both_classes: bool) -> PreparedTable:
    table = PreparedTable(file=params.dataset)
    read = _read_file(table, data, params.dataset)
    if read is None:
        return table
    raw, df = read
    if not _choose_columns(table, params, [str(c) for c in df.columns]):
        return table
    frame, labels, numeric = _take_columns(table, params, raw, df)
    frame, labels = _complete_rows(table, frame, labels, params.missing)
    _check_rows(table, frame, labels, numeric, require_both_classes)
    table.levels = _held_levels(table, frame, params.categorical or (), params.min_cell)
    if table.problems:
        return table
    table.frame = frame.reset_index(drop=True)
    table.labels = labels.reset_index(drop=True).astype(np.int64)
    return table


def _read_file(
    table: PreparedTable, data: object, dataset: str
) -> tuple[bytes, pd.DataFrame] | None:
    """Find and parse the hospital's file, or record why it cannot be read (``None``)."""
    try:
        file = table.file = resolve_key(data, dataset)
        raw = find_object(data, file)
        _, df = read_table(
            raw,
            file,
            no_rows_hint="Export the patients' rows too, or leave this hospital out",
            check_width=lambda header, max_rows: None,
        )
    except DataError as err:
        table.problems.append(err)
        return None
    table.n_rows = len(df)
    return raw, df


def _choose_columns(table: PreparedTable, params: Params, names: list[str]) -> bool:
    """Set the label and feature columns, or record why they cannot be used (``False``)."""
    try:
        position = label_position(params.label, names, table.file)
    except DataError as err:
        table.problems.append(err)
        return False
    label = table.label = names[position]
    features = params.features or tuple(n for n in names if n != label)
    table.features = tuple(features)
    absent = [c for c in (*features, *(params.fill or {})) if c not in names]
    if absent:
        table.problem(
            f"lacks column(s) {listed(list(dict.fromkeys(absent)))}",
            "Check the column names (they are case-sensitive) or export those columns",
        )
        return False
    if label in features:
        table.problem(
            f"the label column {label!r} is also a feature",
            "Leave the label out of 'features'",
        )
        return False
    if not features:
        table.problem(
            f"has no feature column (only the label column {label!r})",
            "Export the measurements next to the label column",
        )
        return False
    return True


def _take_columns(
    table: PreparedTable, params: Params, raw: bytes, df: pd.DataFrame
) -> tuple[pd.DataFrame, pd.Series, list[str]]:
    """Return the chosen features (categorical ones as levels), the labels and numeric columns.

    Blanks are filled as ``fill`` says; only the numeric columns that really are numeric are
    returned (the others are recorded as a problem).
    """
    categorical = params.categorical or ()
    fill = params.fill or {}
    frame = df[list(table.features)].copy()
    if categorical:
        text = categorical_text(raw, categorical)
        for column in categorical:
            frame[column] = as_levels(text[column])
    labels = df[table.label]
    _fill(table, frame, fill, categorical)
    if table.label in fill:
        labels = labels.fillna(fill[table.label])
    numeric = [c for c in table.features if c not in categorical]
    _check_numeric(table, frame, numeric)
    numeric = [c for c in numeric if _is_numeric(frame[c])]
    return frame, labels, numeric


def _complete_rows(
    table: PreparedTable, frame: pd.DataFrame, labels: pd.Series, missing: str
) -> tuple[pd.DataFrame, pd.Series]:
    """Return the rows without a missing value, or record the missing values as a problem."""
    used = pd.concat([frame, labels.rename("\0label")], axis=1)
    incomplete = used.isna()
    if not incomplete.to_numpy().any():
        return frame, labels
    counts = incomplete.sum()
    counts = {
        (table.label if name == "\0label" else name): int(n) for name, n in counts.items() if n
    }
    rows = incomplete.any(axis=1)
    if missing == "error":
        table.problem(
            f"has {sum(counts.values())} missing value(s) in {int(rows.sum())} row(s), in "
            f"column(s) {listed_counts(counts)}",
            "Pass missing='complete-case' (--missing complete-case) to drop incomplete "
            "rows, or fill={column: value} (--fill NAME=VALUE) where a blank means a value",
        )
        return frame, labels
    table.n_dropped = int(rows.sum())
    frame, labels = frame[~rows], labels[~rows]
    if len(frame) == 0:
        table.problem(
            f"has no complete row: each of its {table.n_rows} row(s) has a missing "
            f"value, in column(s) {listed_counts(counts)}",
            "Fill the columns where a blank means a value (fill={column: value}), or "
            "leave the columns with many blanks out of 'features'",
        )
    return frame, labels


def _check_rows(
    table: PreparedTable,
    frame: pd.DataFrame,
    labels: pd.Series,
    numeric: list[str],
    require_both_classes: bool,
) -> None:
    """Record infinite or huge values and a badly coded label in the rows used."""
    if len(frame) and numeric:
        _check_values(table, frame[numeric])
    if len(frame) and not labels.isna().any():
        try:
            check_labels(labels, table.file, require_both_classes)
        except DataError as err:
            table.problems.append(err)


def _held_levels(
    table: PreparedTable, frame: pd.DataFrame, categorical, min_cell: int
) -> dict[str, list[str]]:
    """Return each categorical column's levels held here, recording levels that are too rare."""
    levels = {}
    if not len(frame):
        return levels
    for column in categorical:
        counts = frame[column].dropna().value_counts()
        rare = int((counts < min_cell).sum())
        if rare:
            table.problem(
                f"categorical column {column!r} has {rare} level(s) held by fewer than "
                f"{min_cell} patients (not named here)",
                f"Merge rare levels into a larger one, or leave those patients out; "
                f"min_cell={min_cell} can be lowered only {_AGREE}",
                privacy=True,
            )
        levels[column] = sorted(str(level) for level in counts.index)
    return levels


def categorical_text(raw, columns) -> pd.DataFrame:
    """Return the categorical columns as the text in the file.

    pandas would read ``1``, ``2`` and a blank as floats ``1.0``, ``2.0``, ``NaN``, and one
    hospital's ``2`` would not be another's ``2.0``.
    """
    with ignoring(pd.errors.ParserWarning, pd.errors.DtypeWarning):
        return pd.read_csv(BytesIO(raw), usecols=list(columns), dtype=str)


def _fill(table: PreparedTable, frame: pd.DataFrame, fill: Mapping, categorical) -> None:
    for column, value in fill.items():
        if column not in frame.columns:
            continue  # the label: filled by the caller
        if column in categorical:
            text = value if isinstance(value, str) else _number_text(value)
            frame[column] = frame[column].fillna(text.strip())
        elif isinstance(value, str):
            table.problem(
                f"fill value for the numeric column {column!r} is text",
                "Give a number to fill a numeric column with",
            )
        elif _is_numeric(frame[column]) or frame[column].isna().all():
            frame[column] = frame[column].fillna(value)
        # else: a text column, reported as not numeric (a number cannot fill text)


def _number_text(value) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _is_numeric(values: pd.Series) -> bool:
    dtype = values.dtype
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype)


def _check_numeric(table: PreparedTable, frame: pd.DataFrame, numeric) -> None:
    bad = [c for c in numeric if not _is_numeric(frame[c])]
    if bad:
        table.problem(
            f"{len(bad)} feature column(s) {listed(bad)} are not numeric",
            "Pass text columns as categorical (--categorical NAME), leave them out of "
            "'features', or export numbers only ('.' as decimal separator)",
        )


def _check_values(table: PreparedTable, frame: pd.DataFrame) -> None:
    values = frame.to_numpy(dtype=np.float64)
    infinite = np.isinf(values).sum(axis=0)
    huge = (np.abs(values) > MAX_ABS_VALUE).sum(axis=0) - infinite
    for counts, what, hint in (
        (infinite, "infinite value(s)", "Replace 'inf' values before export"),
        (
            huge,
            f"value(s) beyond ±{MAX_ABS_VALUE:g}".replace("e+", "e"),
            "Rescale those columns (other units, or a log scale) before export",
        ),
    ):
        named = {c: int(n) for c, n in zip(frame.columns, counts, strict=True) if n}
        if named:
            table.problem(
                f"has {sum(named.values())} {what} in column(s) {listed_counts(named)}", hint
            )
