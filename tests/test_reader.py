"""pancreas_fl.reader, csvfile and columns: parsing exactly like the tutorial, every bad case."""

from __future__ import annotations

import csv
import gc
import io
import pickle
import re
from io import BytesIO

import numpy as np
import pandas as pd
import pytest
import sklearn.linear_model._logistic as sklearn_logistic
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from pancreas_fl import _memory, csvfile
from pancreas_fl.columns import MAX_ABS_VALUE
from pancreas_fl.errors import ConfigError, DataError
from pancreas_fl.params import DEFAULT_DATASET
from pancreas_fl.reader import HospitalData, load_hospital_data, read_hospital_data
from pancreas_fl_tools.patients import load_feature_table

# 123.456 and 987.654 are "patient values" that must never appear in a message
GOOD = (
    b"KRAS,TP53,MSLN,diagnosis\n"
    b"8.1,123.456,7.25,1\n"
    b"9.0,8.5,987.654,0\n"
    b"7.7,9.1,6.5,1\n"
    b"8.8,8.0,5.5,0\n"
)
SECRETS = ("123.456", "987.654", "123", "987", "37.2", "38.5", "Smith", "Jones", "2021-03")


def s3(raw: object, key: str = DEFAULT_DATASET) -> list[dict[str, object]]:
    return [{key: raw}]


def load(raw: object, **kwargs: object) -> HospitalData:
    return load_hospital_data(s3(raw), **kwargs)


# ------------------------------------------------------------------------------------------
# the default path is exactly the tutorial's


def tutorial(raw: bytes) -> tuple[pd.DataFrame, pd.Series]:
    df = pd.read_csv(BytesIO(raw))
    return df.iloc[:, :-1], df.iloc[:, -1]


TUTORIAL_FILES = [
    GOOD,
    b"\xef\xbb\xbfa,b,y\n1,2,0\n3,4,1\n",  # UTF-8 BOM
    b"a,b,y\r\n1,2,0\r\n3,4,1\r\n",  # Windows line ends
    b"\n\na,b,y\n1,2.5,0\n\n3,4,1\n",  # blank lines
    b"a,b,c,y\n1,True,2,0.0\n3,False,4,1.0\n5,True,6,1.0\n",  # bool feature, float label
    b"a,b,y\n1,2,True\n3,4,False\n",  # bool label
    b"a,b,y\n1,2,0\n3,4,1\n9007199254740993,5,0\n",  # ints only, one beyond 2**53
    b"a,b,c,y\n18446744073709551615,-1,True,0\n3,4.5,False,1\n5,6,True,0\n",  # uint64, mixed
]
TUTORIAL_IDS = ["good", "bom", "crlf", "blank-lines", "bool-feature", "bool-label"]
TUTORIAL_IDS += ["ints", "mixed"]


def fit_conversion(frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    """Catch the array LogisticRegression.fit makes of the tutorial's frame, in the act."""
    seen = []
    real = sklearn_logistic.validate_data

    def spy(*args, **kwargs):
        X, y = real(*args, **kwargs)
        seen.append(X)
        return X, y

    monkeypatch.setattr(sklearn_logistic, "validate_data", spy)
    with pytest.warns(ConvergenceWarning):
        LogisticRegression(max_iter=1).fit(frame, np.arange(len(frame)) % 2)
    (X,) = seen
    return X


@pytest.mark.parametrize("raw", TUTORIAL_FILES, ids=TUTORIAL_IDS)
def test_default_path_is_the_tutorials_frame_as_the_fit_converts_it(raw, monkeypatch) -> None:
    data = load(raw)
    X, y = tutorial(raw)
    converted = fit_conversion(X, monkeypatch)
    assert data.X.dtype == converted.dtype == np.float64
    assert data.X.tobytes() == converted.tobytes()  # bit for bit
    assert data.X.shape == converted.shape
    assert data.X.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(data.y, y.to_numpy().astype(np.int64))
    assert data.feature_names == tuple(X.columns)
    assert data.label_name == y.name


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("fit_intercept", [False, True], ids=["tutorial", "intercept"])
@pytest.mark.parametrize("raw", TUTORIAL_FILES, ids=TUTORIAL_IDS)
def test_fits_on_the_matrix_are_bit_identical_to_the_tutorials(raw, fit_intercept) -> None:
    # the tutorial's model (one warm-started lbfgs step per round), three rounds
    X, y = tutorial(raw)
    data = load(raw)
    kwargs = {"max_iter": 1, "fit_intercept": fit_intercept, "warm_start": True}
    ref, ours = LogisticRegression(**kwargs), LogisticRegression(**kwargs)
    for _ in range(3):
        ref.fit(X, y)
        ours.fit(data.X, data.y)
    assert ref.coef_.tobytes() == ours.coef_.tobytes()
    assert ref.intercept_.tobytes() == ours.intercept_.tobytes()
    assert not hasattr(ours, "feature_names_in_")


def test_only_the_matrix_is_kept() -> None:
    data = load(GOOD)
    kept = {name: type(value) for name, value in vars(data).items()}
    assert kept == {
        "X": np.ndarray,
        "y": np.ndarray,
        "feature_names": tuple,
        "label_name": str,
        "abs_sums": np.ndarray,  # one number per feature (the magnitudes' check)
    }


def _frames_alive() -> int:
    return sum(isinstance(obj, pd.DataFrame) for obj in gc.get_objects())


def test_freed_memory_is_given_back_once_the_frame_is_gone(monkeypatch) -> None:
    gc.collect()  # only reachable frames are left: the count below cannot drop by itself
    before = _frames_alive()
    calls = []
    monkeypatch.setattr(_memory, "_MALLOC_TRIM", lambda pad: calls.append(_frames_alive()))
    load(GOOD)
    assert calls == [before]  # once, with the parsed frame already freed
    with pytest.raises(DataError, match="must be 0/1"):
        load(b"KRAS,y\n1,2\n3,4\n")  # a bad label: nothing kept; the problem keeps no frame
    assert calls == [before, before]


def test_without_malloc_trim_nothing_is_given_back(monkeypatch) -> None:
    def no_c_library(name):
        raise OSError(name)

    monkeypatch.setattr(_memory.ctypes, "CDLL", no_c_library)
    assert _memory._find_malloc_trim() is None
    monkeypatch.setattr(_memory, "_MALLOC_TRIM", None)
    assert load(GOOD).n_samples == 4


def test_pandas_views_share_the_matrix() -> None:
    data = load(GOOD)
    X, y = tutorial(GOOD)
    assert np.shares_memory(data.features.to_numpy(), data.X)
    assert np.shares_memory(data.labels.to_numpy(), data.y)
    pd.testing.assert_frame_equal(data.features, X)
    pd.testing.assert_series_equal(data.labels, y)


def test_hospital_data_properties_and_arrays() -> None:
    data = load(GOOD)
    assert data.n_samples == 4
    assert data.n_features == 3
    assert data.n_positive == 2
    assert data.feature_names == ("KRAS", "TP53", "MSLN")
    assert data.label_name == "diagnosis"
    assert data.columns == ("KRAS", "TP53", "MSLN", "diagnosis")
    X, y = data.to_numpy()
    assert X is data.X
    assert y is data.y
    assert X.dtype == np.float64
    assert X.flags["C_CONTIGUOUS"]
    assert not X.flags["WRITEABLE"]
    assert y.dtype == np.int64
    assert y.tolist() == [1, 0, 1, 0]
    with pytest.raises(ValueError, match="read-only"):
        X[0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        y[0] = 0


def test_bool_features_are_numeric() -> None:
    data = load(b"a,b,y\nTrue,1.5,0\nFalse,2.5,1\n")
    assert data.X[:, 0].tolist() == [1.0, 0.0]


def test_hospital_data_converts_once_and_does_not_lock_the_callers_array() -> None:
    X = np.asfortranarray(np.arange(6.0).reshape(3, 2))
    y = np.array([True, False, True])
    data = HospitalData(X, y, ("a", "b"), "y")
    assert data.X.flags["C_CONTIGUOUS"]
    assert data.y.dtype == np.int64
    C = np.ascontiguousarray(X)
    assert HospitalData(C, y, ("a", "b"), "y").X.base is C  # a read-only view, no copy
    assert C.flags["WRITEABLE"]


def test_hospital_data_rejects_inconsistent_fields() -> None:
    data = load(GOOD)
    with pytest.raises(ValueError, match="feature_names must name every column"):
        HospitalData(data.X, data.y, ("x", "y"), "diagnosis")
    with pytest.raises(ValueError, match="same number of rows"):
        HospitalData(data.X, data.y[:2], data.feature_names, "diagnosis")
    with pytest.raises(ValueError, match="2-dimensional"):
        HospitalData(data.X[:, 0], data.y, data.feature_names, "diagnosis")
    with pytest.raises(ValueError, match="one sum per column"):
        HospitalData(data.X, data.y, data.feature_names, "diagnosis", abs_sums=[1.0])


MIXED = b"a,b,c,y\nTrue,1.5,3,0\nFalse,-2.5,-7,1\nTrue,-4e100,2,0\n"  # bool, float, int


@pytest.mark.parametrize("raw", [GOOD, MIXED])
def test_the_reader_keeps_each_features_sum_of_abs_x_from_its_magnitudes_check(raw) -> None:
    data = load(raw)
    np.testing.assert_allclose(data.abs_sums, np.abs(data.X).sum(axis=0), rtol=1e-15)
    assert not data.abs_sums.flags["WRITEABLE"]


# ------------------------------------------------------------------------------------------
# label selection


@pytest.mark.parametrize("label", ["diagnosis", -1, 3])
def test_label_last_by_name_or_position_is_the_default(label: str | int) -> None:
    data = load(GOOD, label=label)
    X, y = tutorial(GOOD)
    pd.testing.assert_frame_equal(data.features, X)
    pd.testing.assert_series_equal(data.labels, y)


@pytest.mark.parametrize("label", ["flag", 1, -3])
def test_label_in_the_middle(label: str | int) -> None:
    raw = b"KRAS,flag,TP53,MSLN\n8.1,1,8.5,7.25\n9.0,0,123.456,6.5\n7.7,1,9.1,6.0\n"
    data = load(raw, label=label)
    df = pd.read_csv(BytesIO(raw))
    assert data.feature_names == ("KRAS", "TP53", "MSLN")
    assert data.label_name == "flag"
    pd.testing.assert_frame_equal(data.features, df[["KRAS", "TP53", "MSLN"]])
    pd.testing.assert_series_equal(data.labels, df["flag"])
    assert data.columns == ("KRAS", "TP53", "MSLN", "flag")


@pytest.mark.parametrize("label", [True, 1.0, ["a"]])
def test_label_of_wrong_type_is_a_config_error(label: object) -> None:
    with pytest.raises(ConfigError, match="'label' must be"):
        load(GOOD, label=label)


def test_dataset_of_wrong_type_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'dataset' must be"):
        load_hospital_data(s3(GOOD), dataset=1)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------
# sources and keys


def test_key_in_a_later_source_is_found() -> None:
    data = load_hospital_data([{"other.csv": b"x"}, {DEFAULT_DATASET: GOOD}])
    assert data.n_samples == 4


def test_first_source_holding_the_key_wins() -> None:
    other = b"a,b,y\n1,2,0\n3,4,1\n"
    data = load_hospital_data([{DEFAULT_DATASET: GOOD}, {DEFAULT_DATASET: other}])
    assert data.n_samples == 4


def test_other_dataset_key() -> None:
    data = load_hospital_data([{"cohort.csv": GOOD}], dataset="cohort.csv")
    assert data.n_samples == 4


@pytest.mark.parametrize("raw", [bytearray(GOOD), memoryview(GOOD)], ids=["bytearray", "mv"])
def test_bytes_like_objects_are_accepted(raw: object) -> None:
    assert load(raw).n_samples == 4


# ------------------------------------------------------------------------------------------
# every bad-data case: DataError, one line, no patient value


def _keys(n: int) -> list[dict[str, object]]:
    return [{f"file{i:02d}.csv": b"a"} for i in range(n)]


BAD_DATA = [
    ("not-a-list", GOOD, r"data must be a list of dicts, got bytes.*FLAME delivers"),
    ("dict", {DEFAULT_DATASET: GOOD}, r"must be a list of dicts, got dict"),
    ("list-of-bytes", [GOOD], r"list of dicts, got a list containing bytes"),
    ("empty-list", [], r"empty list .*no data source"),
    ("missing-key", [{"a.csv": b"x"}, {"b.csv": b"y"}], r"not found in 2 .*found 'a.csv', 'b.csv'"),
    ("many-keys", _keys(25), r"found 'file00.csv'.*'file19.csv' and 5 more object keys"),
    ("no-keys", [{}], r"found no object at all"),
]


@pytest.mark.parametrize(("data", "match"), [c[1:] for c in BAD_DATA], ids=[c[0] for c in BAD_DATA])
def test_bad_data_structure(data: object, match: str) -> None:
    with pytest.raises(DataError, match=match) as info:
        load_hospital_data(data)
    assert info.value.file == DEFAULT_DATASET
    assert info.value.hint


BAD_FILES = [
    ("str", GOOD.decode(), r"object is str, not bytes"),
    ("none", None, r"object is NoneType, not bytes"),
    ("empty", b"", r"file is empty \(0 bytes"),
    ("whitespace", b" \n\r\n", r"file is empty"),
    ("latin1", b"KRAS,TP53,y\n1,123.456,0\n\xe9,2,1\n", r"not UTF-8 .*offset 24, line 3"),
    ("utf16", "a,b,y\n1,2,0\n".encode("utf-16"), r"UTF-16"),
    ("header-only", b"KRAS,TP53,diagnosis\n", r"header \(3 columns\) but no data rows"),
    ("semicolon", b"KRAS;TP53;y\n8,1;123,456;1\n", r"not comma-separated.*semicolon"),
    ("tab", b"KRAS\tTP53\ty\n8.1\t123.456\t1\n", r"not comma-separated.*tab"),
    ("pipe", b"KRAS|TP53|y\n8.1|123.456|1\n", r"not comma-separated.*pipe"),
    ("space", b"8.1 123.456 1\n9.0 987.654 0\n", r"not comma-separated.*2 space"),
    ("duplicate", b"KRAS,KRAS,TP53,y\n1,2,123.456,0\n", r"duplicate column name\(s\) 'KRAS'"),
    ("unnamed", b",KRAS,y\n0,123.456,1\n1,2,0\n", r"1 column\(s\) without a name \(position"),
    ("ragged", b"KRAS,TP53,y\n1,2,0\n1,123.456,0,5,6\n", r"line 3 has 5 fields, header has 3"),
    ("all-rows-long", b"a,b,y\n1,2,0,9\n3,123.456,1,9\n", r"line 2 has 4 fields.*2 such rows"),
    ("unclosed-quote", b'a,b,y\n1,"123.456,0\n3,4,1\n', r"quoted field .* never closed"),
    ("label-only", b"diagnosis\n1\n0\n", r"no feature column \(only the label column"),
    ("label-missing", GOOD, r"label column 'dx' not found; columns are 'KRAS', 'TP53'"),
    ("label-position", GOOD, r"label position 4 is out of range for 4 columns"),
    (
        "non-numeric",
        b"KRAS,TP53,MSLN,y\nhigh,low,123.456,1\nlow,2,3,0\nlow,4,5,1\n",
        r"2 feature .*'KRAS', 'TP53' are not numeric",
    ),
    ("decimal-comma", b'KRAS,TP53,y\n"8,1",123.456,1\n"7,5",2,0\n', r"'KRAS' are not numeric"),
    (
        "missing",
        b"KRAS,TP53,y\n1,,0\n,123.456,1\n3,,0\n",
        r"3 missing value.*'KRAS' \(1\), 'TP53' \(2\)",
    ),
    ("missing-label", b"KRAS,TP53,y\n1,123.456,\n2,3,1\n", r"1 missing value.*'y' \(1\)"),
    ("short-row", b"KRAS,TP53,y\n1,123.456\n2,3,1\n", r"1 row\(s\) have fewer fields"),
    (
        "infinite",
        b"KRAS,TP53,y\ninf,123.456,0\n-inf,inf,1\n",
        r"3 infinite value.*'KRAS' \(2\), 'TP53' \(1\)",
    ),
    (
        "label-strings",
        b"KRAS,y\n123.456,PDAC\n2,control\n3,PDAC\n4,control\n5,PDAC\n6,control\n",
        r"must be 0/1, found value\(s\) 'PDAC', 'control'",
    ),
    (
        "label-2",
        b"KRAS,y\n123.456,1\n2,2\n3,0\n4,1\n5,2\n6,0\n7,0\n8,1\n9,2\n",
        r"must be 0/1, found value\(s\) 0, 1, 2\.",
    ),
    (
        "label-float",
        b"KRAS,y\n123.456,0.5\n2,1.0\n3,0.5\n4,1.0\n",
        r"found 2 distinct values that may be measurements or identifiers \(not listed",
    ),
    (
        "label-many",
        b"KRAS,y\n" + b"".join(b"1.5,%d\n" % i for i in range(15)),
        r"found 15 distinct values that may be measurements",
    ),
    (
        # the label column is not last: the "label" is a gene, its values must not leak
        "label-is-a-measurement",
        b"y,KRAS\n1,123.456\n0,987.654\n1,123.456\n0,987.654\n",
        r"label column 'KRAS' must be 0/1, found 2 distinct values .*not listed",
    ),
    (
        "one-class",
        b"KRAS,TP53,y\n1,123.456,1\n2,3,1\n4,5,1\n",
        r"all 3 patients have y = 1; class 0 is absent.*strategy='exact'",
    ),
    (
        "one-class-0",
        b"KRAS,y\n1,0.0\n123.456,0.0\n",
        r"all 2 patients have y = 0; class 1 is absent",
    ),
    # hostile inputs (issue 8): each refused before its values could be shown or sent
    ("no-header", GOOD.split(b"\n", 1)[1], r"first row has no column names: all 4 fields"),
    ("no-header-na", b"123.456,NA,True,1\n987.654,2,False,0\n", r"first row has no column"),
    (
        "no-header-text-label",
        b"8.1,123.456,7.25,PDAC\n9.0,8.5,987.654,control\n",
        r"first row holds 3 field\(s\) that read as decimal numbers .*\(position\(s\) 1, 2, 3;",
    ),
    ("no-header-blank", b"123.456,,987.654,1\n1,2,3,0\n", r"first row has no column names"),
    ("utf16-le", "KRAS,y\n123.456,1\n".encode("utf-16-le"), r"UTF-16-LE text without a byte"),
    ("utf16-be", "KRAS,y\n123.456,1\n".encode("utf-16-be"), r"UTF-16-BE text without a byte"),
    (
        "nul",
        b"KRAS,y\n123.456,1\n\x00\x01\x02,0\n",
        r"NUL bytes \(the first at offset 17, line 3\)",
    ),
    (
        "long-name",
        b"KRAS," + b"T" * 256 + b",y\n1,2,0\n",
        r"1 column name\(s\) longer than 255 .*\(position\(s\) 2\)",
    ),
    (
        "huge-name",
        b"KRAS," + b"T" * 140_000 + b",y\n1,2,0\n",
        r"line 1 \(the header\) has a field longer than 131,072",
    ),
    (
        "huge-field",
        GOOD + b"1," + b"x" * 140_000 + b",3,0\n",
        r"'TP53' are not numeric",
    ),
    (
        "huge-field-first",
        b"KRAS,y\n" + b"1" * 140_000 + b",0\n",
        r"line 2 has a field longer than 131,072",
    ),
    (
        "unclosed-long",
        b'KRAS,y\n1,0\n"123.456,1\n' + b"2,0\n" * 40_000,
        r"quoted field starting on line 3 is never closed",
    ),
    (
        "too-wide",
        b"a,b,c,d,y\n1,2,3,123.456,0\n4,5,6,7,1\n",
        r"has 5 columns but at most 2 data rows: a model with more",
    ),
    (
        "short-rows",
        b",".join(b"g%d" % i for i in range(20)) + b",y\n" + b"123.456\n" * 25,
        r"25 row\(s\) have fewer fields than the header \(21\), the first on line 2",
    ),
    (
        "huge",
        b"KRAS,TP53,y\n1e151,123.456,0\n-2e200,1,1\n1,1,0\n",
        r"2 value\(s\) beyond ±1e150 in column\(s\) 'KRAS' \(2\): their squares",
    ),
    (
        "max-float",
        b"KRAS,TP53,y\n1.7976931348623157e308,123.456,0\n1,1,1\n1,2,0\n",
        r"1 value\(s\) beyond ±1e150 .*'KRAS'",
    ),
    (
        "label-text-measurements",
        b"KRAS,y\n"
        + b"".join(b"%d,%s\n" % (i, v) for i, v in enumerate([b"37.2", b"38.5", b"unknown"] * 3)),
        r"found value\(s\) 'unknown' and 2 other value\(s\), not listed: only category codes "
        r"held by at least 3",
    ),
    (
        "label-rare-codes",
        b"KRAS,y\n"
        + b"".join(b"%d,%s\n" % (i, v) for i, v in enumerate([b"PDAC"] * 4 + [b"Smith", b"Jones"])),
        r"found value\(s\) 'PDAC' and 2 other value\(s\), not listed",
    ),
    (
        "label-dates",
        b"KRAS,y\n" + b"".join(b"%d,2021-03-0%d\n" % (i, i % 2) for i in range(6)),
        r"found 2 distinct values that may be measurements or identifiers \(not listed",
    ),
]
KWARGS = {"label-missing": {"label": "dx"}, "label-position": {"label": 4}}


@pytest.mark.parametrize(
    ("raw", "match"), [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES]
)
def test_bad_file(request: pytest.FixtureRequest, raw: object, match: str) -> None:
    kwargs = KWARGS.get(request.node.callspec.id, {})
    with pytest.raises(DataError, match=match) as info:
        load(raw, **kwargs)
    err = info.value
    message = str(err)
    assert "\n" not in message
    assert err.file == DEFAULT_DATASET
    assert err.hint
    assert err.node is None
    for secret in SECRETS:
        assert secret not in message
    assert message.startswith(f"{DEFAULT_DATASET}: ")


# every problem of a file, in one read
NOT_NUMERIC = r"1 feature column\(s\) 'KRAS' are not numeric"
MANY_PROBLEMS = [
    (
        "text-blank-label",
        b"KRAS,TP53,diagnosis\nhigh,123.456,1\nlow,,2\nhigh,987.654,2\n",
        [NOT_NUMERIC, r"has 1 missing value\(s\) in column\(s\) 'TP53' \(1\)", r"must be 0/1"],
    ),
    (
        "huge-beside-a-blank",  # the magnitudes of a column with blanks are checked too
        b"KRAS,TP53,diagnosis\n1e200,,1\n123.456,2.5,0\n",
        [
            r"missing value\(s\) in column\(s\) 'TP53'",
            r"1 value\(s\) beyond ±1e150 in .*'KRAS' \(1\)",
        ],
    ),
    (
        "infinite-and-one-class",
        b"KRAS,diagnosis\ninf,1\n123.456,1\n",
        [r"1 infinite value\(s\) in column\(s\) 'KRAS' \(1\)", r"class 0 is absent"],
    ),
    (
        "blank-label-only",  # a blank label is a missing value, not also a bad code
        b"KRAS,diagnosis\n123.456,1\n987.654,\n2.5,0\n",
        [r"^pancreasData\.csv: has 1 missing value\(s\) in column\(s\) 'diagnosis' \(1\)"],
    ),
    (
        "blank-labels-only",
        b"KRAS,diagnosis\n123.456,\n987.654,\n",
        [r"has 2 missing value\(s\) in column\(s\) 'diagnosis' \(2\)"],
    ),
    (
        "ragged-and-text",  # a file that is not a table has that one problem
        b"KRAS,TP53,diagnosis\nhigh,123.456,1,5\nlow,,2\n",
        [r"line 2 has 4 fields, header has 3"],
    ),
]


@pytest.mark.parametrize(
    ("raw", "matches"), [c[1:] for c in MANY_PROBLEMS], ids=[c[0] for c in MANY_PROBLEMS]
)
def test_every_problem_of_a_file_is_found_in_one_read(raw: bytes, matches: list[str]) -> None:
    hospital, problems = read_hospital_data(s3(raw))
    assert hospital is None
    assert len(problems) == len(matches)
    for problem, match in zip(problems, matches, strict=True):
        assert re.search(match, str(problem)), problem
        assert problem.__traceback__ is None  # it keeps no frame (and no data) alive
    with pytest.raises(DataError) as info:
        load(raw)
    message = str(info.value)
    assert "\n" not in message
    assert not any(secret in message for secret in SECRETS)
    if len(matches) == 1:
        assert message == str(problems[0])
    else:  # all problems, then all hints, as the aggregator words a hospital's problems
        assert message.startswith(f"{DEFAULT_DATASET}: {len(matches)} problems: (1) ")
        assert all(f"; ({i}) " in message for i in range(2, len(matches) + 1))
        assert all(problem.hint in message for problem in problems)


def test_a_usable_file_has_no_problem() -> None:
    hospital, problems = read_hospital_data(s3(GOOD))
    assert problems == []
    np.testing.assert_array_equal(hospital.X, load(GOOD).X)


def test_a_header_with_some_numeric_names_is_a_header() -> None:
    # Entrez gene ids are numbers; a header is refused only when every name reads as a value
    data = load(b"7157,3845,diagnosis\n1.5,2.5,0\n2.5,1.5,1\n3.5,0.5,0\n")
    assert data.feature_names == ("7157", "3845")
    assert load(b"NA,K,y\n1.5,2.5,0\n2.5,1.5,1\n3.5,0.5,0\n").feature_names == ("NA", "K")


@pytest.mark.parametrize("value", [MAX_ABS_VALUE, -MAX_ABS_VALUE])
def test_magnitudes_up_to_the_bound_are_accepted(value: float) -> None:
    raw = f"KRAS,y\n{value!r},0\n1,1\n2,0\n".encode()
    assert load(raw).to_numpy()[0][0, 0] == value


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b",".join(b"g%d" % i for i in range(1000)) + b",y\n" + b"1,2\n" * 5, r"1,001 columns"),
        (b",".join(b"g%d" % i for i in range(30)) + b",y\n" + b"1\n" * 40, r"fewer fields"),
        (b"1.5,2.5,0\n" * 5, r"no column names"),
    ],
    ids=["too-wide", "short-rows", "no-header"],
)
def test_structural_problems_are_found_before_pandas_parses(monkeypatch, raw, match) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("pandas parsed a file that the header already condemns")

    monkeypatch.setattr(pd, "read_csv", never)
    with pytest.raises(DataError, match=match):
        load(raw)


@pytest.mark.parametrize(
    ("labels", "listed", "absent", "hidden"),
    [
        (["PDAC", "control"] * 3, "value(s) 'PDAC', 'control'.", [], 0),
        (["2", "unknown"] * 3, "value(s) '2', 'unknown'.", [], 0),
        ([0, 1, 2] * 3, "value(s) 0, 1, 2.", [], 0),
        (["37.2", "38.5", "unknown"] * 3, "value(s) 'unknown' and", ["37.2", "38.5"], 2),
        (["yes"] * 3 + ["Smith"], "value(s) 'yes' and", ["Smith"], 1),
        (["A12345", "B67890"] * 3, "found 2 distinct", ["A12345", "B67890"], 2),
        (["x" * 40] * 3 + ["PDAC"] * 3, "value(s) 'PDAC' and", ["x" * 40], 1),
        ([str(i % 11) for i in range(33)], "found 11 distinct", ["'3'", "'10'"], 11),
    ],
    ids=["words", "small-int-text", "codes", "measurements", "rare", "ids", "long", "many"],
)
def test_label_values_are_listed_only_when_they_are_clearly_codes(
    labels: list, listed: str, absent: list[str], hidden: int
) -> None:
    rows = b"".join(b"%d,%s\n" % (i, str(v).encode()) for i, v in enumerate(labels))
    with pytest.raises(DataError, match=r"must be 0/1") as info:
        load(b"KRAS,y\n" + rows)
    message = str(info.value)
    assert listed in message
    assert ("not listed" in message) == bool(hidden)
    if hidden:
        assert f"{hidden} " in message
    for value in absent:
        assert value not in message


def test_a_feature_table_without_names_must_have_the_models_width_before_parsing(
    monkeypatch,
) -> None:
    monkeypatch.setattr(pd, "read_csv", lambda *a, **k: pytest.fail("parsed"))
    with pytest.raises(DataError, match=r"has 3 columns but the model has 5 features"):
        load_feature_table(b"a,b,c\n1,2,3\n", dataset="new.csv", n_features=5)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"1.5,2.5\n3.5,4.5\n", r"no column names"),
        (b"a,b\n" + b"1" * 140_000 + b",2\n", r"line 2 has a field longer than 131,072"),
        (b"a,b\n1e200,2\n", r"beyond \u00b11e150 in column\(s\) 'a'"),
    ],
    ids=["no-header", "huge-field", "huge-value"],
)
def test_a_feature_table_gets_the_same_checks(raw: bytes, match: str) -> None:
    with pytest.raises(DataError, match=match) as info:
        load_feature_table(raw, dataset="new.csv", n_features=2)
    assert str(info.value).startswith("new.csv: ")


def test_one_class_is_allowed_on_request() -> None:
    data = load(b"KRAS,y\n1,1\n2,1\n", require_both_classes=False)
    assert data.n_positive == 2


def test_error_takes_the_node_and_pickles() -> None:
    with pytest.raises(DataError) as info:
        load(b"KRAS,y\n1,1\n2,1\n")
    err = info.value.with_context(node="hospital-7")
    assert str(err).startswith("hospital 'hospital-7': pancreasData.csv: all 2 patients")
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err)


def test_many_missing_columns_are_truncated() -> None:
    names = ",".join(f"g{i}" for i in range(25))
    raw = f"{names},y\n".encode() + f"{',' * 25}1\n".encode() * 25
    with pytest.raises(DataError, match=r"625 missing.*and 5 more column\(s\)"):
        load(raw)


def test_no_pandas_warning_leaks() -> None:
    # a mixed-type column over pandas' low-memory chunks raises a DtypeWarning during the
    # parse (an error under this suite's filterwarnings); the loader suppresses it
    raw = b"a,b,y\n" + b"1,2,0\n" * 300_000 + b"x,2,1\n"
    with pytest.raises(DataError, match=r"'a' are not numeric"):
        load(raw)


# ------------------------------------------------------------------------------------------
# the text is checked piece by piece, never decoded as a whole


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 1 << 20])
def test_text_pieces_of_any_size_read_the_same(monkeypatch, chunk: int) -> None:
    monkeypatch.setattr(csvfile, "_CHUNK", chunk)
    raw = "\ufeffGröße,ß€,y\n1.5,2,0\n2.5,1,1\n".encode()
    assert load(raw).feature_names == ("Größe", "ß€")
    # blank lines of non-ASCII whitespace (ideographic space, no-break space) are blank
    with pytest.raises(DataError, match=r"header \(3 columns\) but no data rows"):
        load("Größe,ß€,y\n\u3000\n\u00a0 \n".encode())
    # an invalid byte is named by its offset in the file (a BOM counts)
    with pytest.raises(DataError, match=r"invalid byte at offset 23, line 2\)"):
        load("\ufeffGröße,ß€,y\n1.5,\xff,0\n".encode().replace(b"\xc3\xbf", b"\xff"))
    # a character cut off by the end of the file
    with pytest.raises(DataError, match=r"invalid byte at offset 20, line 4\)"):
        load("Größe,y\n1.5,0\n2,1\n".encode() + "€".encode()[:2])


def _reference_text(raw: bytes) -> tuple[int | None, int | None]:
    """Decode the whole file at once: (characters, None) or (None, file offset of the error)."""
    bom = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
    try:
        return len(raw[bom:].decode("utf-8")), None
    except UnicodeDecodeError as exc:
        return None, bom + exc.start


def _reference_line_after_header(text: str) -> bool:
    start = re.match(r"\s*", text).end()
    newline = text.find("\n", start)
    return newline >= 0 and re.match(r"\s*", text[newline:]).end() < len(text) - newline


TEXT_ALPHABET = st.sampled_from(
    [
        *(b"a", b"1", b",", b"\n", b"\r", b" ", b"\t", b"\x1c", b'"', b"\xff", b"\xe2\x82"),
        *(c.encode() for c in ("ä", "€", "\u3000", "\u00a0", "\U0001f600")),
    ]
)


@settings(max_examples=300)
@given(
    pieces=st.lists(TEXT_ALPHABET, max_size=40),
    bom=st.booleans(),
    chunk=st.integers(1, 9),
)
def test_text_checks_piece_by_piece_equal_decoding_at_once(pieces, bom, chunk) -> None:
    raw = (b"\xef\xbb\xbf" if bom else b"") + b"".join(pieces)
    n_chars, bad = _reference_text(raw)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(csvfile, "_CHUNK", chunk)
        if bad is not None:
            with pytest.raises(DataError, match=rf"invalid byte at offset {bad}, line"):
                csvfile._check_text(raw, DEFAULT_DATASET)
            return
        assert csvfile._check_text(raw, DEFAULT_DATASET) == n_chars
        text = raw.decode("utf-8-sig")
        assert "".join(csvfile._text_pieces(raw)) == text
        assert csvfile._has_line_after_header(raw) == _reference_line_after_header(text)
        rows = [row for _, row in csvfile._rows(raw, DEFAULT_DATASET)]
        assert rows == [row for row in csv.reader(io.StringIO(text, newline="")) if row]


def test_hospital_data_pickles() -> None:
    data = load(GOOD)
    again = pickle.loads(pickle.dumps(data))
    assert again.X.tobytes() == data.X.tobytes()
    np.testing.assert_array_equal(again.y, data.y)
    assert again.feature_names == data.feature_names
    assert again.label_name == data.label_name
    assert not again.X.flags["WRITEABLE"]
    assert again.abs_sums.tobytes() == data.abs_sums.tobytes()
    assert not again.abs_sums.flags["WRITEABLE"]
