"""The analysis result: building it, loading it safely, and turning it into a usable model.

FLAME stores the aggregator's final result as a pickle. pancreas-fl writes one of two forms:

* the tutorial's bare coefficient array of shape ``(1, n_features)`` (FedAvg's default), or
* a *model dict* of plain containers and numpy arrays only: ``coef``, ``intercept``,
  ``feature_names``, ``label``, ``params``, ``standardization``, ``statistics``, ``rounds``,
  ``stop_reason``, ``history`` and the per-hospital ``n_samples``.

:func:`load_model` reads either and returns a fitted scikit-learn ``LogisticRegression``. A
pickle can run arbitrary code when it is loaded, so the loader refuses any object other than
numpy arrays, numpy scalars and plain Python containers, numbers and strings.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from pancreas_fl.errors import PancreasFLError

__all__ = [
    "MODEL_FORMAT",
    "ModelFileError",
    "as_model_dict",
    "global_parameters",
    "load_model",
    "load_result",
    "make_model",
    "model_from_result",
]

MODEL_FORMAT = "pancreas-fl/model-v1"

# What a result pickle may refer to: numpy's array and scalar reconstructors (numpy 2 and 1
# module paths) and ``_codecs.encode``, which protocol-2 pickles use for bytes.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
}
_PLAIN = (type(None), bool, int, float, str, bytes, list, tuple, dict)


class ModelFileError(PancreasFLError, ValueError):
    """A result file cannot be turned into a model (unreadable, unsafe or malformed)."""


class _Refused(pickle.UnpicklingError):
    """The pickle refers to a global that a result file has no business with."""


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise _Refused(f"refers to {module}.{name}")


def load_result(path) -> object:
    """Read a result pickle without executing code from it.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by FLAME, by ``StarModelTester`` or by ``pancreas-fl simulate``.

    Returns
    -------
    object
        A numpy array or a dict/list of plain values and arrays.

    Raises
    ------
    ModelFileError
        The file is missing, not a pickle, or refers to anything but numpy arrays and plain
        containers.
    """
    name = os.fspath(path)
    try:
        raw = Path(name).read_bytes()
    except OSError as exc:
        raise ModelFileError(f"{name}: cannot read the model file ({exc.strerror}).") from None
    try:
        obj = _SafeUnpickler(io.BytesIO(raw)).load()
    except _Refused as exc:
        raise ModelFileError(
            f"{name}: refusing to load: the file {exc}. A model file may contain only numpy "
            "arrays and plain lists, dicts, numbers and strings; only load results you trust."
        ) from None
    except Exception as exc:  # any other failure means "not a result pickle"
        raise ModelFileError(
            f"{name}: not a pancreas-fl or FLAME result pickle ({type(exc).__name__}). "
            "Pass the file written by 'pancreas-fl simulate' or FLAME's pickled result."
        ) from None
    _check_plain(obj, name)
    return obj


def _check_plain(obj, name) -> None:
    """Refuse object arrays and anything else a hand-made pickle could smuggle in."""
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise ModelFileError(f"{name}: refusing an object array; expected numbers.")
        return
    if isinstance(obj, np.generic):
        return
    if not isinstance(obj, _PLAIN):
        raise ModelFileError(f"{name}: unexpected {type(obj).__name__} in the model file.")
    if isinstance(obj, dict):
        for key, value in obj.items():
            _check_plain(key, name)
            _check_plain(value, name)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            _check_plain(value, name)


def global_parameters(result):
    """The coefficients and intercept carried by an aggregator broadcast or final result.

    Parameters
    ----------
    result : ndarray, dict or None
        The bare ``(1, n_features)`` array, a model dict, or ``None`` (first round).

    Returns
    -------
    coef : ndarray of shape (1, n_features) or None
        The very array object of a bare result (the tutorial assigns it to ``coef_``).
    intercept : ndarray of shape (1,) or None
    """
    if result is None:
        return None, None
    if isinstance(result, dict):
        return result["coef"], result.get("intercept")
    return result, None


def make_model(
    *,
    strategy,
    coef,
    intercept,
    feature_names,
    label,
    params,
    history,
    stop_reason,
    n_samples,
    standardization=None,
    statistics=None,
) -> dict:
    """Assemble the portable model dict (plain containers and numpy arrays only).

    Parameters
    ----------
    strategy : str
    coef : ndarray of shape (1, n_features)
        In the raw feature space (what the CSV holds).
    intercept : ndarray of shape (1,) or None
    feature_names : list of str
    label : str
        The label column's name.
    params : Params
        The aggregator's validated parameters.
    history : list of dict
        One entry per round.
    stop_reason : {'tolerance', 'max_iter'} or None
    n_samples : dict
        Patients per hospital (node id -> count).
    standardization : dict, optional
        ``mean``, ``scale`` and the model in the standardized space.
    statistics : dict, optional
        The GLM summary (exact strategy).

    Returns
    -------
    dict
    """
    return {
        "format": MODEL_FORMAT,
        "strategy": strategy,
        "coef": np.asarray(coef, dtype=np.float64).reshape(1, -1),
        "intercept": None if intercept is None else np.asarray(intercept, float).reshape(1),
        "feature_names": [str(name) for name in feature_names],
        "label": str(label),
        "classes": [0, 1],
        "params": {
            key: value
            for key, value in vars(params).items()
            if key not in ("dataset", "label", "output")
        },
        "standardization": standardization,
        "statistics": statistics,
        "rounds": len(history),
        "stop_reason": stop_reason,
        "history": [dict(entry) for entry in history],
        "n_samples": {str(node): int(n) for node, n in n_samples.items()},
    }


def as_model_dict(result, *, name="result") -> dict:
    """Normalize a bare coefficient array or a model dict to the model dict's keys.

    Raises
    ------
    ModelFileError
        When the result holds no usable coefficients, intercept or feature names.
    """
    if isinstance(result, dict):
        if "coef" not in result:
            raise ModelFileError(f"{name}: the result has no 'coef' entry.")
        model = dict(result)
    else:
        model = {"coef": result}
    coef = _numbers(model["coef"], name, "the coefficients")
    if coef.ndim == 2 and coef.shape[0] != 1:
        raise ModelFileError(
            f"{name}: expected one row of coefficients (binary model); got shape {coef.shape}."
        )
    if coef.ndim not in (1, 2) or coef.size == 0:
        raise ModelFileError(
            f"{name}: expected a coefficient array of shape (1, n_features); got shape "
            f"{coef.shape}."
        )
    coef = coef.reshape(1, -1)
    intercept = model.get("intercept")
    intercept = np.zeros(1) if intercept is None else _numbers(intercept, name, "the intercept")
    if intercept.size != 1:
        raise ModelFileError(f"{name}: expected one intercept; got {intercept.size} values.")
    intercept = intercept.reshape(1)
    if not (np.all(np.isfinite(coef)) and np.all(np.isfinite(intercept))):
        raise ModelFileError(f"{name}: the coefficients are not all finite.")
    names = model.get("feature_names")
    if names is not None:
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
            raise ModelFileError(f"{name}: 'feature_names' must be a list of strings.")
        if len(names) != coef.shape[1]:
            raise ModelFileError(
                f"{name}: {len(names)} feature names for {coef.shape[1]} coefficients."
            )
    params = model.get("params")
    if not isinstance(params, dict):
        params = {}
    model.update(coef=coef, intercept=intercept, feature_names=names, params=params)
    return model


def _numbers(value, name, what) -> np.ndarray:
    """``value`` as a float64 array, or a :class:`ModelFileError`."""
    try:
        array = np.asarray(value)
    except ValueError:  # ragged nested lists
        array = np.asarray(None)
    if array.dtype.kind not in "fiu":
        raise ModelFileError(f"{name}: {what}: expected numbers, found {array.dtype}.")
    return array.astype(np.float64)


def model_from_result(result, *, name="result") -> LogisticRegression:
    """Turn a result object (bare array or model dict) into a fitted ``LogisticRegression``.

    The estimator predicts on raw CSV rows: a standardized fit is reported in the raw feature
    space too, and that is what is loaded.
    """
    model = as_model_dict(result, name=name)
    clf = LogisticRegression(fit_intercept=bool(model["params"].get("fit_intercept", False)))
    clf.classes_ = np.array([0, 1])
    clf.coef_ = model["coef"]
    clf.intercept_ = model["intercept"]
    clf.n_features_in_ = model["coef"].shape[1]
    rounds = model.get("rounds")
    clf.n_iter_ = np.array([rounds if isinstance(rounds, int) else 0], dtype=np.int32)
    if model["feature_names"] is not None:
        clf.feature_names_in_ = np.asarray(model["feature_names"], dtype=object)
    return clf


def load_model(path) -> LogisticRegression:
    """Load a pancreas-fl or FLAME result file as a fitted scikit-learn model.

    Parameters
    ----------
    path : str or os.PathLike
        The tutorial's pickled ``(1, n_features)`` coefficient array, or the model dict that
        pancreas-fl writes.

    Returns
    -------
    sklearn.linear_model.LogisticRegression
        Fitted: ``classes_`` is ``[0, 1]``, ``coef_`` and ``intercept_`` are set (the
        intercept is 0 for a model fit without one), and ``feature_names_in_`` when the
        result names its features. Ready for ``predict`` and ``predict_proba``.

    Raises
    ------
    ModelFileError
        See :func:`load_result`; also when the content holds no usable coefficients.

    Examples
    --------
    >>> from pancreas_fl import load_model  # doctest: +SKIP
    >>> model = load_model("pancreas.pkl")  # doctest: +SKIP
    >>> model.predict_proba(features)[:, 1]  # doctest: +SKIP
    """
    return model_from_result(load_result(path), name=os.fspath(path))
