"""Categorical variables: one-hot encoding with the same levels at every hospital.

A categorical column becomes one 0/1 column per level but the reference level, with the
same levels, in the same order, at every hospital (treatment coding, as R's ``glm`` and
statsmodels' formulas do). The levels are agreed in a setup round:

1. each hospital sends the level names of each categorical column that it holds, but only
   when every one of them is held by at least ``min_cell`` of its patients (DataSHIELD's
   ``nfilter.tab``); otherwise it refuses, naming the column, never the level;
2. the aggregator takes the union (:func:`union_levels`), sorted; the first level is the
   reference, as in R and statsmodels;
3. every hospital encodes with the agreed levels; a level it lacks gives an all-zero column.

:class:`Encoding` is the agreed encoding: it names the model's columns (for example
``sex[M]``), encodes a hospital's prepared rows, travels in the model dict, and lets
:func:`pancreas_fl.load_model` apply the same encoding to raw CSV rows
(:class:`CategoricalEncoder`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from pancreas_fl.errors import DataError

__all__ = [
    "CategoricalEncoder",
    "Encoding",
    "as_levels",
    "dummy_name",
    "encode_frame",
    "union_levels",
]

_MAX_LISTED = 20


def dummy_name(column: str, level: str) -> str:
    """Return the name of the 0/1 column of ``level`` in ``column``: ``"sex[M]"``."""
    return f"{column}[{level}]"


def union_levels(levels_by_node: Mapping[str, Mapping[str, list[str]]]) -> dict[str, tuple]:
    """Return the agreed levels: per column, the sorted union of the hospitals' level names.

    Parameters
    ----------
    levels_by_node : dict of str to dict of str to list of str
        Hospital (node id) -> categorical column -> the level names it holds.

    Returns
    -------
    dict of str to tuple of str
        Column -> levels in sorted order; the first is the reference level.
    """
    columns: dict[str, set[str]] = {}
    for levels in levels_by_node.values():
        for column, names in levels.items():
            columns.setdefault(column, set()).update(names)
    return {column: tuple(sorted(names)) for column, names in columns.items()}


def as_levels(values: pd.Series) -> pd.Series:
    """Return a categorical column as level names (``str``), missing values kept as ``NaN``.

    Text is stripped of surrounding spaces (an empty string is missing); numbers read by
    pandas become their shortest text (``2.0`` -> ``"2"``), booleans ``"True"``/``"False"``.
    """
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.map(str).astype(object)
    if pd.api.types.is_numeric_dtype(values.dtype):

        def text(v):
            if pd.isna(v):
                return np.nan
            v = v.item() if isinstance(v, np.generic) else v
            return str(int(v)) if float(v).is_integer() else str(v)

        return values.map(text).astype(object)
    stripped = values.map(lambda v: v.strip() if isinstance(v, str) else v)
    return stripped.mask(stripped.map(lambda v: isinstance(v, str) and v == ""))


@dataclass(frozen=True, eq=False)
class Encoding:
    """How a hospital's chosen columns become the model's columns.

    Parameters
    ----------
    features : tuple of str
        The chosen feature columns, in model order (before encoding).
    levels : dict of str to tuple of str
        Categorical column -> its agreed levels, sorted; the first is the reference and
        gets no column.
    fill : dict
        Column -> the value a blank stands for.
    missing : {'error', 'complete-case'}
        What the training did with rows holding a missing value.
    """

    features: tuple[str, ...]
    levels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    fill: dict = field(default_factory=dict)
    missing: str = "error"

    @property
    def feature_names(self) -> list[str]:
        """The model's columns.

        Numeric features as they are, each categorical column as one column per non-reference
        level, in place.
        """
        names = []
        for column in self.features:
            if column in self.levels:
                names += [dummy_name(column, level) for level in self.levels[column][1:]]
            else:
                names.append(column)
        return names

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """Build the model's design matrix of prepared rows.

        Parameters
        ----------
        frame : pandas.DataFrame
            The feature columns, complete: numeric columns as numbers, categorical ones as
            level names (see :func:`as_levels`), every level among the agreed ones.

        Returns
        -------
        numpy.ndarray of shape (n_rows, len(feature_names))
            float64.
        """
        blocks = []
        for column in self.features:
            values = frame[column]
            if column in self.levels:
                codes = values.to_numpy(dtype=object)
                blocks += [(codes == level).astype(np.float64) for level in self.levels[column][1:]]
            else:
                blocks.append(values.to_numpy(dtype=np.float64))
        if not blocks:
            return np.empty((len(frame), 0))
        return np.ascontiguousarray(np.column_stack(blocks), dtype=np.float64)

    def to_dict(self) -> dict:
        """Plain containers for the model dict (``model["encoding"]``)."""
        return {
            "features": list(self.features),
            "levels": {column: list(levels) for column, levels in self.levels.items()},
            "fill": dict(self.fill),
            "missing": self.missing,
        }

    @classmethod
    def from_dict(cls, spec: Mapping) -> Encoding:
        """Invert :meth:`to_dict`; raise ``ValueError`` for a malformed ``spec``."""
        if not isinstance(spec, Mapping):
            raise ValueError("'encoding' must be a dict")
        features, levels = spec.get("features"), spec.get("levels", {})
        fill, missing = spec.get("fill", {}), spec.get("missing", "error")
        if not isinstance(features, (list, tuple)) or not all(isinstance(c, str) for c in features):
            raise ValueError("'encoding' must list its features as strings")
        if not isinstance(levels, Mapping) or not all(
            column in features
            and isinstance(names, (list, tuple))
            and len(names) >= 1
            and all(isinstance(n, str) for n in names)
            and list(names) == sorted(set(names))
            for column, names in levels.items()
        ):
            raise ValueError("'encoding' levels must be sorted, distinct strings per feature")
        if not isinstance(fill, Mapping) or missing not in ("error", "complete-case"):
            raise ValueError("'encoding' has a malformed 'fill' or 'missing'")
        return cls(
            features=tuple(features),
            levels={column: tuple(names) for column, names in levels.items()},
            fill=dict(fill),
            missing=missing,
        )


def encode_frame(
    frame: pd.DataFrame, encoding: Encoding, *, file: str | None = None
) -> pd.DataFrame:
    """Apply a model's encoding to raw rows (a CSV to predict for), refusing what it cannot.

    Fills blanks as in training, turns categorical columns into the agreed 0/1 columns, and
    refuses (one :class:`DataError`, counts and column names only) missing columns, missing
    values, non-numeric values in numeric columns and levels the model does not know.

    Returns
    -------
    pandas.DataFrame
        The model's columns (:attr:`Encoding.feature_names`), float64.
    """
    absent = [c for c in encoding.features if c not in frame.columns]
    if absent:
        raise DataError(
            f"lacks the model's feature column(s) {_names(absent)}",
            file=file,
            hint="Give the columns the model was trained on, with the same names",
        )
    prepared = {}
    problems = []
    for column in encoding.features:
        values = frame[column]
        if column in encoding.levels:
            values = as_levels(values)
            if column in encoding.fill:
                values = values.fillna(_level_text(encoding.fill[column]))
            known = values.isna() | values.isin(encoding.levels[column])
            if not known.all():
                problems.append(
                    f"{int((~known).sum())} row(s) of categorical column {column!r} hold "
                    "a level the model was not trained on (not shown)"
                )
        else:
            numeric = pd.api.types.is_numeric_dtype(values.dtype) or values.isna().all()
            if column in encoding.fill and numeric:
                values = values.fillna(encoding.fill[column])
            if not pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_complex_dtype(
                values.dtype
            ):
                problems.append(f"column {column!r} is not numeric")
                continue
        prepared[column] = values
    missing = {c: int(v.isna().sum()) for c, v in prepared.items() if v.isna().any()}
    if missing:
        detail = ", ".join(f"{c!r} ({n})" for c, n in list(missing.items())[:_MAX_LISTED])
        problems.append(f"has {sum(missing.values())} missing value(s) in column(s) {detail}")
    if problems:
        raise DataError(
            "; ".join(problems),
            file=file,
            hint="Give complete rows with the model's columns and levels",
        )
    design = encoding.encode(pd.DataFrame(prepared, index=frame.index))
    return pd.DataFrame(design, columns=encoding.feature_names, index=frame.index)


def _level_text(value) -> str:
    """Write a fill value as a level name (``0`` -> ``"0"``, ``1.0`` -> ``"1"``)."""
    if isinstance(value, str):
        return value.strip()
    return str(int(value)) if float(value).is_integer() else str(value)


def _names(names) -> str:
    shown = ", ".join(repr(str(n)) for n in names[:_MAX_LISTED])
    return shown + (f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else "")


class CategoricalEncoder(TransformerMixin, BaseEstimator):
    """The model's encoding as a scikit-learn transformer (first step of a loaded model).

    Constructed already fitted: the levels were agreed by the hospitals, nothing is learned
    from the rows it transforms.

    Parameters
    ----------
    encoding : dict
        ``model["encoding"]`` (see :meth:`Encoding.to_dict`).
    """

    def __init__(self, encoding: dict | None = None) -> None:
        self.encoding = encoding

    def _spec(self) -> Encoding:
        return Encoding.from_dict(self.encoding)

    def fit(self, X, y=None):
        """Nothing to learn; sets ``feature_names_in_`` and ``n_features_in_``."""
        spec = self._spec()
        self.feature_names_in_ = np.asarray(spec.features, dtype=object)
        self.n_features_in_ = len(spec.features)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        """Return True: the transformer is fitted by construction (the encoding is given)."""
        return True

    def transform(self, X) -> pd.DataFrame:
        """Raw rows (a DataFrame with the model's raw columns) -> the model's columns."""
        if not isinstance(X, pd.DataFrame):
            raise TypeError(
                "a model with categorical features needs a pandas DataFrame of raw columns "
                "(named as in training)"
            )
        return encode_frame(X, self._spec())

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Return the model's column names (``sex[M]`` ...)."""
        return np.asarray(self._spec().feature_names, dtype=object)
