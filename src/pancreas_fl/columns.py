"""The checks of a parsed table's columns: the label, numeric and complete features, the labels.

Each check raises one :class:`~pancreas_fl.errors.DataError` naming the columns and counting
the values at fault, never showing one. The only values ever named are distinct *label*
values when the label is not 0/1 and they are clearly category codes (words or small whole
numbers, each held by at least :data:`~pancreas_fl.privacy.DEFAULT_MIN_CLASS_SIZE` patients),
because the data owner needs them to fix the encoding.

Boolean feature columns (``True``/``False`` in the file, parsed by pandas as ``bool``) are
numeric for the model: scikit-learn converts them to 0.0/1.0 exactly as it would a 0/1
column.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pancreas_fl.csvfile import short_rows
from pancreas_fl.errors import DataError
from pancreas_fl.privacy import DEFAULT_MIN_CLASS_SIZE
from pancreas_fl.wording import MAX_LISTED as _MAX_LISTED
from pancreas_fl.wording import listed, listed_counts

__all__ = [
    "MAX_ABS_VALUE",
    "check_features",
    "check_labels",
    "check_magnitudes",
    "check_missing",
    "column_abs_sums",
    "label_position",
    "numeric_columns",
]


MAX_ABS_VALUE = 1e150
"""Largest feature magnitude accepted. Its square is at most 1e300, so sums of squares over up
to 10**8 patients (the exact strategy's curvature, standardization's moments) stay finite in
float64 (largest 1.8e308); beyond it the statistics overflow."""


_MAX_ABS_TEXT = f"{MAX_ABS_VALUE:g}".replace("e+", "e")  # '1e150'


_MAX_LABEL_VALUES = 10  # distinct label values listed in one message


_MAX_CODE_LENGTH = 32  # a label value longer than this is not a category code


def label_position(label: str | int | None, names: list[str], dataset: str) -> int:
    """Return the label column's position: the last (``None``), by name, or by position."""
    n = len(names)
    if label is None:
        return n - 1
    if isinstance(label, str):
        if label not in names:
            raise DataError(
                f"label column {label!r} not found; columns are {listed(names)}",
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


def numeric_columns(features: pd.DataFrame) -> list[bool]:
    """Whether each column is numeric for the model (real numbers or booleans)."""
    return [
        pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype)
        for dtype in features.dtypes
    ]


def check_features(features: pd.DataFrame, dataset: str) -> None:
    """Refuse feature columns that are not numeric, naming them."""
    bad = [
        str(name)
        for name, numeric in zip(features.columns, numeric_columns(features), strict=True)
        if not numeric
    ]
    if bad:
        raise DataError(
            f"{len(bad)} feature column(s) {listed(bad)} are not numeric",
            file=dataset,
            hint="Export numbers only ('.' as decimal separator), encode categories as 0/1 "
            "columns, or drop those columns",
        )


def check_missing(df: pd.DataFrame, raw: bytes, n_header: int, dataset: str) -> None:
    """Refuse missing values, counting them per column (and the rows too short for the header)."""
    counts = df.isna().sum()
    counts = counts[counts > 0]
    if counts.empty:
        return
    short, _ = short_rows(raw, n_header, dataset)
    detail = ", ".join(f"{str(name)!r} ({int(n)})" for name, n in counts.iloc[:_MAX_LISTED].items())
    if len(counts) > _MAX_LISTED:
        detail += f" and {len(counts) - _MAX_LISTED} more column(s)"
    extra = f"; {short} row(s) have fewer fields than the header" if short else ""
    raise DataError(
        f"has {int(counts.sum())} missing value(s) in column(s) {detail}{extra}",
        file=dataset,
        hint="Say what a blank means where it means a value (fill={column: value}, "
        "--fill NAME=VALUE), drop incomplete rows (missing='complete-case', --missing "
        "complete-case), or impute before export; logistic regression cannot use missing values",
    )


def column_abs_sums(features: pd.DataFrame) -> np.ndarray:
    r"""Return :math:`\sum_i |x_{ij}|` per column, in float64 (NaN where a value is missing).

    One pass over each column, with each value converted to float64 as scikit-learn converts
    it, through one reused buffer (``read_csv`` keeps the columns apart: no copy of the
    frame). What :func:`check_magnitudes` needs, and what FedAvg's first update sends for the
    message checks (:mod:`pancreas_fl.wire`): one pass for both.
    """
    n, d = features.shape
    buffer, sums = np.empty(n), np.empty(d)
    with np.errstate(over="ignore"):  # an overflow is inf: beyond the magnitudes' limit
        for j in range(d):
            column = features.iloc[:, j]
            if isinstance(column.dtype, np.dtype):
                values = column.to_numpy()
            else:  # a pandas extension dtype (nullable integers, floats, booleans)
                values = column.to_numpy(np.float64, na_value=np.nan)
            sums[j] = np.abs(values, out=buffer, dtype=np.float64).sum()
    return sums


def check_magnitudes(
    features: pd.DataFrame, dataset: str, abs_sums: np.ndarray | None = None
) -> None:
    """Refuse infinite values and magnitudes beyond :data:`MAX_ABS_VALUE`, naming columns.

    A column whose sum of ``|x|`` (``abs_sums``, :func:`column_abs_sums`, computed here when
    not given) is within :data:`MAX_ABS_VALUE` holds neither: a computed sum of non-negative
    numbers is at least its largest term, rounding being monotone. Only the other columns (a
    large, infinite or missing value) are looked at again: their maxima and minima, and
    counts for those that fail. Missing values are skipped (they are a problem of their own).
    """
    if features.shape[1] == 0:
        return
    if abs_sums is None:
        abs_sums = column_abs_sums(features)
    suspect = np.flatnonzero(~(abs_sums <= MAX_ABS_VALUE))
    if suspect.size == 0:
        return
    features = features.iloc[:, suspect]
    high = features.max().astype(np.float64)
    low = features.min().astype(np.float64)
    infinite = [name for name in features.columns if np.isinf(high[name]) or np.isinf(low[name])]
    if infinite:
        counts = {name: int(np.isinf(features[name].to_numpy()).sum()) for name in infinite}
        raise DataError(
            f"has {sum(counts.values())} infinite value(s) in column(s) {listed_counts(counts)}",
            file=dataset,
            hint="Replace 'inf' values (often a division by zero or a log of 0 upstream) "
            "before export",
        )
    huge = [
        name for name in features.columns if max(abs(high[name]), abs(low[name])) > MAX_ABS_VALUE
    ]
    if huge:
        counts = {
            name: int((np.abs(features[name].to_numpy()) > MAX_ABS_VALUE).sum()) for name in huge
        }
        raise DataError(
            f"has {sum(counts.values())} value(s) beyond ±{_MAX_ABS_TEXT} in column(s) "
            f"{listed_counts(counts)}: their squares, summed over patients, overflow "
            "floating point",
            file=dataset,
            hint="Rescale those columns (other units, or a log scale) before export",
        )


def check_labels(labels: pd.Series, dataset: str, require_both_classes: bool) -> None:
    """Check the label's coding (0/1) and classes, on the patients whose label is not missing.

    Missing labels are a problem of their own (:func:`check_missing`).
    """
    if labels.hasnans:
        labels = labels.dropna()
        if labels.empty:
            return
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
            f"label column {name!r} must be 0/1, found {_describe_label_values(labels)}",
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


def _sort_key(value: object) -> tuple[int, float, str]:
    if isinstance(value, (bool, np.bool_)):
        return (0, float(value), "")
    if isinstance(value, (int, float, np.integer, np.floating)):
        v = float(value)
        return (0, v if not math.isnan(v) else math.inf, "")
    return (1, 0.0, str(value))


def _is_code(value: object) -> bool:
    """Whether a label value is clearly a category code, not a measurement or identifier.

    Codes are booleans, small whole numbers (-9 to 9, also when written as text, e.g. ``'2'``
    in a column that also holds words) and short words of letters (``'PDAC'``, ``'control'``,
    ``'unknown'``). Fractional or large numbers (``'37.2'``), dates, identifiers and long
    text are not.
    """
    if isinstance(value, (bool, np.bool_)):
        return True
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            return (
                0 < len(text) <= _MAX_CODE_LENGTH
                and text[0].isalpha()
                and all(c.isalpha() or c in " _-" for c in text)
            )
        return math.isfinite(number) and number.is_integer() and abs(number) <= 9
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        return math.isfinite(number) and number.is_integer() and abs(number) <= 9
    return False


def _describe_label_values(labels: pd.Series) -> str:
    """Describe the label values found, listing only those that are clearly category codes.

    A value is listed when it is a code (see :func:`_is_code`) held by at least
    ``DEFAULT_MIN_CLASS_SIZE`` patients (DataSHIELD's ``nfilter.subset``), and only when
    there are at most ``_MAX_LABEL_VALUES`` distinct values. Anything else (fractional or
    large numbers, values of one or two patients) may be a measurement or an identifier, for
    example when the label column is not last: it is only counted, since listing it would put
    patient values into a message.
    """
    counts = labels.value_counts(dropna=False, sort=False)
    plain = {(v.item() if isinstance(v, np.generic) else v): int(n) for v, n in counts.items()}
    listed = []
    if len(plain) <= _MAX_LABEL_VALUES:
        listed = [v for v, n in plain.items() if n >= DEFAULT_MIN_CLASS_SIZE and _is_code(v)]
    hidden = len(plain) - len(listed)
    if not listed:
        return (
            f"{hidden} distinct values that may be measurements or identifiers (not listed: "
            "they could be patient values)"
        )
    shown = "value(s) " + ", ".join(_label_repr(v) for v in sorted(listed, key=_sort_key))
    if hidden:
        shown += (
            f" and {hidden} other value(s), not listed: only category codes held by at least "
            f"{DEFAULT_MIN_CLASS_SIZE} patients are, the others could be patient values"
        )
    return shown


def _label_repr(value: object) -> str:
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        value = value.item()
    return repr(value)
