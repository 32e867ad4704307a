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
