"""Result files: safe loading, and a usable scikit-learn model from either result form."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from pancreas_fl import load_model
from pancreas_fl.results import ModelFileError, as_model_dict, global_parameters, load_result

NAMES = ["KRAS", "TP53", "MSLN"]


def write(tmp_path, obj, name="result.pkl", protocol=pickle.HIGHEST_PROTOCOL):
    path = tmp_path / name
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def model_dict(coef, intercept=None, names=NAMES):
    return {
        "format": "pancreas-fl/model-v1",
        "coef": np.asarray(coef, float).reshape(1, -1),
        "intercept": None if intercept is None else np.array([intercept], float),
        "feature_names": names,
        "params": {"fit_intercept": intercept is not None},
        "rounds": 7,
        "history": [{"round": 0, "delta": None, "log_loss": 0.69, "seconds": 0.01}],
    }


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_the_tutorial_bare_array_loads_as_a_fitted_model(tmp_path, protocol):
    coef = np.array([[0.5, -1.0, 0.25]])
    clf = load_model(write(tmp_path, coef, protocol=protocol))
    assert isinstance(clf, LogisticRegression)
    np.testing.assert_array_equal(clf.classes_, [0, 1])
    np.testing.assert_array_equal(clf.coef_, coef)
    np.testing.assert_array_equal(clf.intercept_, [0.0])
    X = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]])
    expected = 1 / (1 + np.exp(-(X @ coef.ravel())))
    np.testing.assert_allclose(clf.predict_proba(X)[:, 1], expected)
    np.testing.assert_array_equal(clf.predict(X), (expected >= 0.5).astype(int))


def test_the_model_dict_loads_with_intercept_and_feature_names(tmp_path):
    clf = load_model(write(tmp_path, model_dict([0.5, -1.0, 0.25], intercept=-2.0)))
    np.testing.assert_array_equal(clf.intercept_, [-2.0])
    assert list(clf.feature_names_in_) == NAMES
    frame = pd.DataFrame([[1.0, 0.0, 2.0]], columns=NAMES)
    assert clf.predict_proba(frame)[0, 1] == pytest.approx(1 / (1 + np.exp(1.0)))


def test_load_model_accepts_a_path_like(tmp_path):
    path = write(tmp_path, np.zeros((1, 3)))
    assert load_model(os.fspath(path)).n_features_in_ == 3


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo owned > owned.txt",))


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (Exploit(), r"refusing to load: the file refers to (posix|os|nt)\.system"),
        ({"coef": Exploit()}, r"refusing to load"),
        (pd.DataFrame({"a": [1.0]}), r"refusing to load: the file refers to pandas"),
        (np.array([object()], dtype=object), r"refusing|object array"),
    ],
    ids=["os.system", "nested", "dataframe", "object-array"],
)
def test_loading_never_runs_code_from_the_file(tmp_path, monkeypatch, payload, match):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pkl"
    try:
        path.write_bytes(pickle.dumps(payload))
    except (pickle.PicklingError, TypeError, AttributeError):
        pytest.skip("payload cannot be pickled here")
    with pytest.raises(ModelFileError, match=match):
        load_model(path)
    assert not (tmp_path / "owned.txt").exists()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"not a pickle", r"not a pancreas-fl or FLAME result pickle"),
        (pickle.dumps({"intercept": 1.0}), r"has no 'coef' entry"),
        (pickle.dumps(np.array([["a", "b"]])), r"the coefficients: expected numbers"),
        (pickle.dumps(np.zeros((2, 3))), r"expected one row of coefficients"),
        (pickle.dumps(np.zeros((1, 2, 3))), r"expected a coefficient array of shape"),
        (pickle.dumps(np.array([[np.nan, 1.0]])), r"not all finite"),
        (pickle.dumps(model_dict([1.0, 2.0])), r"3 feature names for 2 coefficients"),
        (pickle.dumps({"coef": [[1.0, 2.0], [3.0]]}), r"the coefficients: expected numbers"),
        (pickle.dumps({"coef": [[1.0]], "intercept": [1.0, 2.0]}), r"expected one intercept"),
        (pickle.dumps({"coef": [[1.0]], "intercept": "b"}), r"the intercept: expected numbers"),
        (pickle.dumps({"coef": [[1.0]], "feature_names": 5}), r"must be a list of strings"),
    ],
    ids=[
        "garbage",
        "no-coef",
        "strings",
        "multiclass",
        "3d",
        "nan",
        "names",
        "ragged",
        "two-intercepts",
        "string-intercept",
        "names-not-a-list",
    ],
)
def test_malformed_results_are_refused_with_a_clear_message(tmp_path, content, match):
    path = tmp_path / "bad.pkl"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=match):
        load_model(path)


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ModelFileError, match=r"cannot read the model file"):
        load_result(tmp_path / "nope.pkl")


@pytest.mark.parametrize(
    ("result", "expected_intercept"),
    [(None, None), (np.ones((1, 2)), None), (model_dict([1.0, 2.0, 3.0], 0.5), [0.5])],
)
def test_global_parameters_of_every_result_form(result, expected_intercept):
    coef, intercept = global_parameters(result)
    if result is None:
        assert coef is None
    elif isinstance(result, np.ndarray):
        assert coef is result  # the very array, as the tutorial assigns it to coef_
    if expected_intercept is None:
        assert intercept is None
    else:
        np.testing.assert_array_equal(intercept, expected_intercept)


@pytest.mark.parametrize("params", [None, "x", {}])
def test_a_model_dict_with_plain_lists_and_odd_params_loads(tmp_path, params):
    clf = load_model(write(tmp_path, {"coef": [[1.0, -1.0]], "params": params}))
    np.testing.assert_array_equal(clf.coef_, [[1.0, -1.0]])
    assert clf.fit_intercept is False


def test_as_model_dict_fills_a_zero_intercept_for_the_bare_array():
    model = as_model_dict(np.array([[1.0, 2.0]]))
    np.testing.assert_array_equal(model["intercept"], [0.0])
    assert model["feature_names"] is None


# ---------------------------------------------------------------------------- hostile pickles
def shared_nest(levels):
    """Build a list nested ``levels`` deep, each level holding the one below twice.

    A tiny pickle, with 2**levels paths for a walk that does not remember what it has seen.
    """
    item = []
    for _ in range(levels):
        item = [item, item]
    return item


def deep_nest_pickle(levels):
    """Build a protocol-2 pickle of a list nested ``levels`` deep from opcodes.

    Pickling such an object would itself recurse too deep.
    """
    return b"\x80\x02" + b"]" * levels + b"a" * (levels - 1) + b"."


def test_shared_references_are_checked_once_each(tmp_path):
    # 2**30 paths through 30 containers: the walk visits each container once
    path = write(tmp_path, {"coef": [[1.0, 2.0]], "history": shared_nest(30)}, protocol=2)
    assert path.stat().st_size < 400
    assert load_model(path).n_features_in_ == 2


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (pickle.dumps(shared_nest(40), protocol=2), r"nested more than 32 levels deep"),
        (deep_nest_pickle(100_000), r"nested more than 32 levels deep"),
    ],
    ids=["shared-40", "deep-100000"],
)
def test_pickle_bombs_are_refused_at_once(tmp_path, content, match):
    path = tmp_path / "bomb.pkl"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=match):
        load_model(path)


def test_a_container_holding_itself_is_refused(tmp_path):
    cycle = []
    cycle.append(cycle)
    with pytest.raises(ModelFileError, match=r"a container holds itself"):
        load_model(write(tmp_path, {"coef": [[1.0]], "history": cycle}))


def test_an_array_larger_than_the_file_is_refused(tmp_path):
    # numpy's array reconstructor asked for 10 MB that the 100-byte file does not carry
    content = (
        b"\x80\x02cnumpy._core.multiarray\n_reconstruct\nq\x00cnumpy\nndarray\nq\x01"
        b"J\x80\x96\x98\x00\x85q\x02C\x01bq\x03\x87q\x04Rq\x05."
    )
    path = tmp_path / "big.pkl"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=r"refusing an array of 10,000,000 bytes from a file"):
        load_model(path)


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.setattr("pancreas_fl.results.MAX_MODEL_BYTES", 100)
    path = write(tmp_path, np.zeros((1, 50)))
    with pytest.raises(ModelFileError, match=r"larger than 0 MiB"):
        load_model(path)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "m.pkl")
    with pytest.raises(ModelFileError, match=r"not a regular file"):
        load_model(tmp_path / "m.pkl")


@pytest.mark.parametrize(
    ("names", "match"),
    [
        (["KRAS", "KRAS", "MSLN"], r"duplicate feature name\(s\) 'KRAS'"),
        (["KRAS", " ", "MSLN"], r"1 feature name\(s\) empty or longer than 255"),
        (["KRAS", "T" * 256, "MSLN"], r"1 feature name\(s\) empty or longer than 255"),
    ],
    ids=["duplicate", "blank", "long"],
)
def test_unusable_feature_names_are_refused(tmp_path, names, match):
    with pytest.raises(ModelFileError, match=match):
        load_model(write(tmp_path, model_dict([1.0, 2.0, 3.0], names=names)))


@pytest.mark.parametrize("rounds", [2**40, -1, True, "7", None])
def test_an_odd_round_count_does_not_stop_the_model_from_loading(tmp_path, rounds):
    model = model_dict([1.0, 2.0, 3.0])
    model["rounds"] = rounds
    assert load_model(write(tmp_path, model)).n_iter_.tolist() == [0]


def test_a_path_with_a_line_break_is_quoted_in_the_message(tmp_path):
    path = tmp_path / "a\nb.pkl"
    path.write_bytes(b"garbage")
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    assert "\n" not in str(info.value)
    assert "a\\nb.pkl" in str(info.value)
