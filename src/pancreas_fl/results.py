"""The analysis result: building it, loading it safely, and turning it into a usable model.

FLAME stores the aggregator's final result as a pickle. pancreas-fl writes one of two forms:

* the tutorial's bare coefficient array of shape ``(1, n_features)`` (FedAvg's default), or
* a *model dict* of plain containers and numpy arrays only: ``coef``, ``intercept``,
  ``feature_names``, ``label``, ``params``, ``standardization``, ``statistics``, ``rounds``,
  ``stop_reason``, ``history`` and the per-hospital ``n_samples``.

:func:`load_model` reads either and returns a fitted scikit-learn ``LogisticRegression``. A
pickle can run arbitrary code when it is loaded, so the loader refuses any object other than
numpy arrays, numpy scalars and plain Python containers, numbers and strings. A pickle can
also be small and still expensive (containers nested thousands deep, or shared references
that a naive walk visits 2**n times), so the file's size, the nesting depth and the number of
objects visited are bounded, and every failure is one :class:`ModelFileError`.
"""

from __future__ import annotations

import io
import os
import pickle
from collections import Counter

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from pancreas_fl.csvfile import MAX_NAME_LENGTH
from pancreas_fl.encoding import CategoricalEncoder, Encoding
from pancreas_fl.errors import PancreasFLError, quote_path
from pancreas_fl.files import NotARegularFileError, read_regular_file

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

MAX_MODEL_BYTES = 1 << 30
"""Largest result file loaded (1 GiB; a model dict with a full covariance matrix of 5,000
parameters takes about 250 MB)."""

_MAX_DEPTH = 32  # a model dict nests 4 deep (statistics -> cov -> row -> value)
_MAX_OBJECTS = 200_000_000  # objects visited by the safety check (each costs >= 1 byte)


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
    shown = quote_path(name)
    try:
        raw = read_regular_file(name, limit=MAX_MODEL_BYTES)
    except NotARegularFileError:
        raise ModelFileError(f"{shown}: not a regular file; pass a result file.") from None
    except OSError as exc:
        raise ModelFileError(f"{shown}: cannot read the model file ({exc.strerror}).") from None
    if len(raw) > MAX_MODEL_BYTES:
        raise ModelFileError(
            f"{shown}: larger than {MAX_MODEL_BYTES >> 20} MiB; no pancreas-fl or FLAME result "
            "is that large."
        )
    try:
        obj = _SafeUnpickler(io.BytesIO(raw)).load()
    except _Refused as exc:
        raise ModelFileError(
            f"{shown}: refusing to load: the file {exc}. A model file may contain only numpy "
            "arrays and plain lists, dicts, numbers and strings; only load results you trust."
        ) from None
    except Exception as exc:  # any other failure means "not a result pickle"
        raise ModelFileError(
            f"{shown}: not a pancreas-fl or FLAME result pickle ({type(exc).__name__}). "
            "Pass the file written by 'pancreas-fl simulate' or FLAME's pickled result."
        ) from None
    _check_plain(obj, shown, max_bytes=len(raw))
    return obj


def _check_plain(obj, name, *, max_bytes: int) -> None:
    """Refuse anything a hand-made pickle could smuggle in, in bounded time and memory.

    An iterative walk (no recursion): each container is visited once however often it is
    referenced, a container inside itself is refused (a cycle), and so are nesting deeper
    than ``_MAX_DEPTH``, more than ``_MAX_OBJECTS`` objects, object arrays and arrays larger
    than the file (a pickle may ask numpy for a huge array without carrying its data).
    """
    done: set[int] = set()  # containers whose content was checked
    path: set[int] = set()  # containers on the way from the root to the current one
    stack: list[tuple[object, int, bool]] = [(obj, 0, False)]
    visited = 0
    while stack:
        item, depth, leaving = stack.pop()
        if leaving:
            path.discard(id(item))
            done.add(id(item))
            continue
        visited += 1
        if visited > _MAX_OBJECTS:
            raise ModelFileError(
                f"{name}: holds more than {_MAX_OBJECTS:,} objects; not a result file."
            )
        if isinstance(item, np.ndarray):
            if item.dtype.hasobject:
                raise ModelFileError(f"{name}: refusing an object array; expected numbers.")
            if item.nbytes > max_bytes:
                raise ModelFileError(
                    f"{name}: refusing an array of {item.nbytes:,} bytes from a file of "
                    f"{max_bytes:,} bytes; not a result file."
                )
            continue
        if isinstance(item, np.generic):
            continue
        if not isinstance(item, _PLAIN):
            raise ModelFileError(f"{name}: unexpected {type(item).__name__} in the model file.")
        if not isinstance(item, (dict, list, tuple)):
            continue
        if id(item) in path:
            raise ModelFileError(f"{name}: a container holds itself (a cycle); not a result file.")
        if id(item) in done:
            continue
        if depth >= _MAX_DEPTH:
            raise ModelFileError(
                f"{name}: nested more than {_MAX_DEPTH} levels deep; not a result file."
            )
        path.add(id(item))
        stack.append((item, depth, True))
        children = (v for pair in item.items() for v in pair) if isinstance(item, dict) else item
        stack.extend((child, depth + 1, False) for child in children)


def global_parameters(result):
    """Return the coefficients and intercept carried by an aggregator broadcast or final result.

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
    encoding=None,
    n_dropped=None,
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
    encoding : dict, optional
        How raw CSV rows become the model's columns (``features``, categorical ``levels``,
        ``fill``, ``missing``; see :class:`pancreas_fl.encoding.Encoding`); ``None`` for the
        tutorial's table. :func:`load_model` applies it.
    n_dropped : dict, optional
        Incomplete rows each hospital dropped (``missing="complete-case"``).

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
        "n_dropped": (
            None if n_dropped is None else {str(node): int(n) for node, n in n_dropped.items()}
        ),
        "encoding": encoding,
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
    coef = _coefficients(model["coef"], name)
    intercept = model.get("intercept")
    intercept = np.zeros(1) if intercept is None else _numbers(intercept, name, "the intercept")
    if intercept.size != 1:
        raise ModelFileError(f"{name}: expected one intercept; got {intercept.size} values.")
    intercept = intercept.reshape(1)
    if not (np.all(np.isfinite(coef)) and np.all(np.isfinite(intercept))):
        raise ModelFileError(f"{name}: the coefficients are not all finite.")
    names = model.get("feature_names")
    if names is not None:
        _check_feature_names(names, coef.shape[1], name)
    params = model.get("params")
    if not isinstance(params, dict):
        params = {}
    encoding = model.get("encoding")
    if encoding is not None:
        _check_encoding(encoding, names, name)
    model.update(
        coef=coef, intercept=intercept, feature_names=names, params=params, encoding=encoding
    )
    return model


def _coefficients(value, name) -> np.ndarray:
    """Return ``value`` as one row of coefficients, shape ``(1, n_features)``."""
    coef = _numbers(value, name, "the coefficients")
    if coef.ndim == 2 and coef.shape[0] != 1:
        raise ModelFileError(
            f"{name}: expected one row of coefficients (binary model); got shape {coef.shape}."
        )
    if coef.ndim not in (1, 2) or coef.size == 0:
        raise ModelFileError(
            f"{name}: expected a coefficient array of shape (1, n_features); got shape "
            f"{coef.shape}."
        )
    return coef.reshape(1, -1)


def _check_feature_names(names, n_features: int, name) -> None:
    """Refuse feature names that are not distinct, short strings, one per coefficient."""
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ModelFileError(f"{name}: 'feature_names' must be a list of strings.")
    if len(names) != n_features:
        raise ModelFileError(f"{name}: {len(names)} feature names for {n_features} coefficients.")
    odd = [n for n in names if not n.strip() or len(n) > MAX_NAME_LENGTH]
    if odd:
        raise ModelFileError(
            f"{name}: {len(odd)} feature name(s) empty or longer than {MAX_NAME_LENGTH} characters."
        )
    duplicated = sorted(n for n, count in Counter(names).items() if count > 1)
    if duplicated:
        shown = ", ".join(repr(n) for n in duplicated[:20])
        raise ModelFileError(f"{name}: duplicate feature name(s) {shown}.")


def _check_encoding(encoding, names, name) -> None:
    """Refuse an encoding that cannot be read or does not produce the model's feature names."""
    try:
        spec = Encoding.from_dict(encoding)
    except ValueError as exc:
        raise ModelFileError(f"{name}: {exc}.") from None
    if names is None or spec.feature_names != list(names):
        raise ModelFileError(
            f"{name}: the encoding's columns do not match the model's feature names."
        )


def _numbers(value, name, what) -> np.ndarray:
    """``value`` as a float64 array, or a :class:`ModelFileError`."""
    try:
        array = np.asarray(value)
    except ValueError:  # ragged nested lists
        array = np.asarray(None)
    if array.dtype.kind not in "fiu":
        raise ModelFileError(f"{name}: {what}: expected numbers, found {array.dtype}.")
    return array.astype(np.float64)


def model_from_result(result, *, name="result") -> LogisticRegression | Pipeline:
    """Turn a result object (bare array or model dict) into a fitted ``LogisticRegression``.

    The estimator predicts on raw CSV rows: a standardized fit is reported in the raw feature
    space too, and that is what is loaded. A model with categorical features or filled blanks
    (``model["encoding"]``) is a ``Pipeline`` of a
    :class:`~pancreas_fl.encoding.CategoricalEncoder` (the agreed levels, the fill values)
    and the ``LogisticRegression``: it predicts on the raw columns, by name.
    """
    model = as_model_dict(result, name=name)
    clf = LogisticRegression(fit_intercept=bool(model["params"].get("fit_intercept", False)))
    clf.classes_ = np.array([0, 1])
    clf.coef_ = model["coef"]
    clf.intercept_ = model["intercept"]
    clf.n_features_in_ = model["coef"].shape[1]
    rounds = model.get("rounds")
    valid = isinstance(rounds, int) and not isinstance(rounds, bool) and 0 <= rounds < 2**31
    clf.n_iter_ = np.array([rounds if valid else 0], dtype=np.int32)
    if model["feature_names"] is not None:
        clf.feature_names_in_ = np.asarray(model["feature_names"], dtype=object)
    encoding = model.get("encoding")
    if encoding is not None and (encoding.get("levels") or encoding.get("fill")):
        encoder = CategoricalEncoder(encoding).fit(None)
        return Pipeline([("encode", encoder), ("model", clf)])
    return clf


def load_model(path) -> LogisticRegression | Pipeline:
    """Load a pancreas-fl or FLAME result file as a fitted scikit-learn model.

    Parameters
    ----------
    path : str or os.PathLike
        The tutorial's pickled ``(1, n_features)`` coefficient array, or the model dict that
        pancreas-fl writes.

    Returns
    -------
    sklearn.linear_model.LogisticRegression or sklearn.pipeline.Pipeline
        Fitted: ``classes_`` is ``[0, 1]``, ``coef_`` and ``intercept_`` are set (the
        intercept is 0 for a model fit without one), and ``feature_names_in_`` when the
        result names its features. Ready for ``predict`` and ``predict_proba``. A model with
        categorical features or ``fill`` values is a ``Pipeline`` whose first step applies
        the training's encoding to a DataFrame of raw columns (``model[-1]`` is the
        ``LogisticRegression``).

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
    return model_from_result(load_result(path), name=quote_path(os.fspath(path)))
