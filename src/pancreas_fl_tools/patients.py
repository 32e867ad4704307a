"""A CSV of new patients to predict for, read and checked as the hospitals' files are."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from pancreas_fl.column_options import categorical_text
from pancreas_fl.columns import check_features, check_magnitudes, check_missing
from pancreas_fl.csvfile import read_table
from pancreas_fl.encoding import Encoding, as_levels
from pancreas_fl.errors import DataError
from pancreas_fl.wording import listed

__all__ = ["load_feature_table", "read_raw_features"]


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

    def check_width(header: list[str], max_rows: int) -> None:
        if feature_names is not None:
            _require_columns(feature_names, set(header), dataset)
        elif len(header) not in (n_features, n_features + 1):
            raise DataError(
                f"has {len(header)} columns but the model has {n_features} features",
                file=dataset,
                hint="Give the features in training order, optionally followed by the label",
            )

    header, df = read_table(
        raw, dataset, no_rows_hint="Give at least one patient's row", check_width=check_width
    )
    # by name, or the first columns in training order (a model without names)
    features = df.iloc[:, :n_features] if feature_names is None else df[list(feature_names)]
    check_features(features, dataset)
    check_missing(features, raw, len(header), dataset)
    check_magnitudes(features, dataset)
    return features


def read_raw_features(raw: bytes, *, dataset: str, encoding: Encoding) -> pd.DataFrame:
    """Read a CSV to predict for with a model's encoding.

    Return the raw feature columns, the categorical ones as level names (as the hospitals read
    them).
    """

    def check_width(header, max_rows) -> None:
        _require_columns(encoding.features, set(header), dataset)

    _, df = read_table(
        raw, dataset, no_rows_hint="Give at least one patient's row", check_width=check_width
    )
    frame = df[list(encoding.features)].copy()
    if encoding.levels:
        text = categorical_text(raw, list(encoding.levels))
        for column in encoding.levels:
            frame[column] = as_levels(text[column])
    return frame


def _require_columns(names: Sequence[str], present: set[str], dataset: str) -> None:
    """Refuse a file that lacks any of the model's feature columns, naming them."""
    missing = [name for name in names if name not in present]
    if missing:
        raise DataError(
            f"lacks the model's feature column(s) {listed(missing)}",
            file=dataset,
            hint="Give the columns the model was trained on, with the same names",
        )
