"""Tests of pancreas_fl.privacy: DataSHIELD-style disclosure guards."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pancreas_fl.errors import ConfigError, DataError, PrivacyError
from pancreas_fl.privacy import (
    DEFAULT_MAX_PARAM_RATIO,
    DEFAULT_MIN_CLASS_SIZE,
    DEFAULT_MIN_PATIENTS,
    check_disclosure,
    validate_privacy_params,
)


def test_defaults() -> None:
    assert DEFAULT_MIN_PATIENTS == 10
    assert DEFAULT_MAX_PARAM_RATIO == 0.33
    assert DEFAULT_MIN_CLASS_SIZE == 3


@pytest.mark.parametrize(
    ("n_samples", "n_params"),
    [(10, 3), (25, 8), (100, 33), (225, 8), (1000, 1), (10, 0)],
)
def test_allowed(n_samples: int, n_params: int) -> None:
    check_disclosure(n_samples, n_params)


def test_too_few_patients() -> None:
    with pytest.raises(PrivacyError, match=r"computed from 9 patient\(s\): at least 10") as info:
        check_disclosure(9, 1, file="pancreasData.csv")
    err = info.value
    assert isinstance(err, DataError)
    assert err.file == "pancreasData.csv"
    assert "min_patients=10" in err.hint
    assert "data owner" in err.hint
    assert "\n" not in str(err)


def test_zero_patients() -> None:
    with pytest.raises(PrivacyError, match="from 0 patient"):
        check_disclosure(0, 8, min_patients=1)


@pytest.mark.parametrize(
    ("n_samples", "n_params", "match"),
    [
        (
            24,
            8,
            r"8 parameters fitted on 24 patients: parameters/patients = 0.33 exceeds 0.33 "
            r"\(at least 25 patients, or at most 7 parameters\)",
        ),
        (20, 9, r"= 0.45 exceeds 0.33 \(at least 28 patients, or at most 6 parameters\)"),
    ],
)
def test_too_many_parameters(n_samples: int, n_params: int, match: str) -> None:
    with pytest.raises(PrivacyError, match=match) as info:
        check_disclosure(n_samples, n_params)
    assert "fewer features" in info.value.hint
    assert "max_param_ratio=0.33" in info.value.hint


def test_thresholds_can_be_relaxed() -> None:
    check_disclosure(5, 1, min_patients=5)
    check_disclosure(20, 9, max_param_ratio=0.5)
    with pytest.raises(PrivacyError):
        check_disclosure(4, 1, min_patients=5)


@pytest.mark.parametrize(
    ("n_samples", "n_positive", "match"),
    [(50, 2, r"only 2 patient\(s\) have label 1"), (50, 49, r"only 1 patient\(s\) have label 0")],
)
def test_small_class(n_samples: int, n_positive: int, match: str) -> None:
    with pytest.raises(PrivacyError, match=match) as info:
        check_disclosure(n_samples, 3, n_positive=n_positive)
    assert "min_class_size=3" in info.value.hint


@pytest.mark.parametrize("n_positive", [0, 3, 25, 47, 50])
def test_class_sizes_allowed(n_positive: int) -> None:
    check_disclosure(50, 3, n_positive=n_positive)
    check_disclosure(50, 3, n_positive=np.int64(n_positive))


def test_min_class_size_can_be_lowered() -> None:
    check_disclosure(50, 3, n_positive=1, min_class_size=1)


@pytest.mark.parametrize("n_positive", [-1, 51, 2.0, True])
def test_bad_n_positive(n_positive: object) -> None:
    with pytest.raises(ConfigError, match="'n_positive' must be an int in"):
        check_disclosure(50, 3, n_positive=n_positive)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_patients": 0}, "'min_patients' must be an int in [1, inf). Got 0 instead."),
        ({"min_patients": 2.0}, "'min_patients' must be an int in [1, inf). Got 2.0 instead."),
        ({"min_patients": True}, "'min_patients' must be an int in [1, inf). Got True instead."),
        ({"max_param_ratio": 0}, "'max_param_ratio' must be a float in (0, 1]. Got 0 instead."),
        ({"max_param_ratio": 1.5}, "'max_param_ratio' must be a float in (0, 1]. Got 1.5 instead."),
        (
            {"max_param_ratio": float("nan")},
            "'max_param_ratio' must be a float in (0, 1]. Got nan instead.",
        ),
        (
            {"max_param_ratio": "0.3"},
            "'max_param_ratio' must be a float in (0, 1]. Got '0.3' instead.",
        ),
        ({"min_class_size": 0}, "'min_class_size' must be an int in [1, inf). Got 0 instead."),
    ],
)
def test_validate_privacy_params(kwargs: dict[str, object], message: str) -> None:
    params = {"min_patients": 10, "max_param_ratio": 0.33} | kwargs
    with pytest.raises(ConfigError) as info:
        validate_privacy_params(**params)  # type: ignore[arg-type]
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)
    with pytest.raises(ConfigError):
        check_disclosure(100, 1, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [1, 0.33, 1.0, np.float64(0.5)])
def test_valid_ratio(value: float) -> None:
    validate_privacy_params(1, value)
    validate_privacy_params(np.int64(1), value)


@pytest.mark.parametrize(("n_samples", "n_params"), [(-1, 1), (10, -1), (10.0, 1), (10, None)])
def test_bad_counts(n_samples: object, n_params: object) -> None:
    with pytest.raises(ConfigError, match="must be an int in"):
        check_disclosure(n_samples, n_params)  # type: ignore[arg-type]


def test_privacy_error_pickles_with_node() -> None:
    with pytest.raises(PrivacyError) as info:
        check_disclosure(3, 1, file="pancreasData.csv")
    err = info.value.with_context(node="n1")
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is PrivacyError
    assert str(again) == str(err)
    assert str(err).startswith("hospital 'n1': pancreasData.csv: refusing")


@given(
    n_samples=st.integers(0, 10_000),
    n_params=st.integers(0, 500),
    min_patients=st.integers(1, 100),
    ratio=st.floats(0.01, 1.0),
)
def test_refuses_exactly_when_a_threshold_is_crossed(
    n_samples: int, n_params: int, min_patients: int, ratio: float
) -> None:
    refused = n_samples < min_patients or n_params / n_samples > ratio
    kwargs = {"min_patients": min_patients, "max_param_ratio": ratio}
    if refused:
        with pytest.raises(PrivacyError, match=r"^refusing [^\n]*$"):
            check_disclosure(n_samples, n_params, **kwargs)
    else:
        check_disclosure(n_samples, n_params, **kwargs)
