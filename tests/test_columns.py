"""pancreas_fl.columns: each column's sum of |x|, and the magnitudes' check it makes cheap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pancreas_fl.columns import MAX_ABS_VALUE, check_magnitudes, column_abs_sums
from pancreas_fl.errors import DataError


def _columns(rng: np.random.Generator, n: int) -> dict[str, pd.Series]:
    """One column per kind ``read_csv`` or a caller's frame can hold, without missing values."""
    whole = rng.integers(-(2**62), 2**62, size=n)
    whole[0] = np.iinfo(np.int64).min  # |x| overflows in int64, not as float64
    return {
        "float64": pd.Series(rng.normal(scale=50.0, size=n)),
        "float32": pd.Series(rng.normal(size=n).astype(np.float32)),
        "int64": pd.Series(whole),
        "uint8": pd.Series(rng.integers(0, 255, size=n).astype(np.uint8)),
        "bool": pd.Series(rng.random(n) < 0.3),
        "Int64": pd.Series(rng.integers(-9, 9, size=n)).astype("Int64"),
        "Float64": pd.Series(rng.normal(size=n)).astype("Float64"),
        "boolean": pd.Series(rng.random(n) < 0.5).astype("boolean"),
    }


@pytest.mark.parametrize("n", [1, 17, 1_000])
def test_each_sum_is_that_of_the_columns_values_as_float64(n):
    frame = pd.DataFrame(_columns(np.random.default_rng(n), n))
    expected = np.abs(frame.to_numpy(dtype=np.float64)).sum(axis=0)
    np.testing.assert_allclose(column_abs_sums(frame), expected, rtol=1e-12)


@pytest.mark.parametrize("kind", ["float64", "Int64", "Float64"])
def test_a_missing_value_makes_its_columns_sum_nan_and_only_its(kind):
    columns = _columns(np.random.default_rng(3), 40)
    missing = columns[kind].astype("float64" if kind == "float64" else kind).copy()
    missing.iloc[5] = np.nan if kind == "float64" else pd.NA
    frame = pd.DataFrame({**columns, kind: missing})
    sums = column_abs_sums(frame)
    assert np.isnan(sums[list(frame.columns).index(kind)])
    assert np.count_nonzero(np.isnan(sums)) == 1


@pytest.mark.parametrize("given", [True, False])
@pytest.mark.parametrize(
    ("values", "match"),
    [
        ([MAX_ABS_VALUE, -MAX_ABS_VALUE, MAX_ABS_VALUE], None),  # the sum is over, no value
        ([1.0, np.nan, 2e151], r"1 value\(s\) beyond ±1e150 in column\(s\) 'b' \(1\)"),
        ([1.0, -np.inf, np.inf], r"2 infinite value\(s\) in column\(s\) 'b' \(2\)"),
        ([np.nan, 1.0, 2.0], None),  # missing values are a problem of their own
        ([1e308, 1e308, 1.0], r"2 value\(s\) beyond ±1e150 in column\(s\) 'b' \(2\)"),  # sum: inf
    ],
)
def test_only_a_column_whose_sum_is_over_the_limit_is_read_again(values, match, given):
    frame = pd.DataFrame({"a": [1.0, -2.0, 3.0], "b": values})
    sums = column_abs_sums(frame) if given else None
    if match is None:
        check_magnitudes(frame, "data.csv", sums)
    else:
        with pytest.raises(DataError, match=match):
            check_magnitudes(frame, "data.csv", sums)


def test_a_column_within_the_limit_by_its_sum_is_not_read_again(monkeypatch):
    frame = pd.DataFrame({"a": [1.0, -2.0], "b": [2e151, 1.0]})
    looked_at = []
    max_of = pd.DataFrame.max
    monkeypatch.setattr(
        pd.DataFrame,
        "max",
        lambda self, *a, **k: looked_at.append(list(self.columns)) or max_of(self, *a, **k),
    )
    with pytest.raises(DataError, match=r"'b' \(1\)"):
        check_magnitudes(frame, "data.csv")
    assert looked_at == [["b"]]
