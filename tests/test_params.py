"""pancreas_fl.params: validation once, with scikit-learn's messages, and strategy defaults."""

from __future__ import annotations

import math

import pytest

from _helpers import ROOT
from pancreas_fl.errors import ConfigError
from pancreas_fl.params import (
    LBFGS_MAX_ITER,
    PARAMETERS,
    SHARED_PARAMS,
    Params,
    default,
    markdown_table,
    resolve_params,
)


def test_defaults_are_the_tutorials():
    p = resolve_params()
    assert (p.strategy, p.max_iter, p.tol, p.C, p.fit_intercept) == ("fedavg", 10, 1e-8, 1.0, False)
    assert (p.local_steps, p.weighted, p.output, p.dataset) == (
        1,
        False,
        "coef",
        "pancreasData.csv",
    )


@pytest.mark.parametrize(
    ("params", "output"),
    [
        ({}, "coef"),
        ({"fit_intercept": True}, "model"),
        ({"strategy": "exact"}, "model"),
        ({"strategy": "exact", "output": "coef"}, "coef"),
        ({"strategy": "exact", "standardize": True}, "model"),
    ],
)
def test_output_defaults_to_what_can_carry_the_model(params, output):
    assert resolve_params(**params).output == output


def test_exact_defaults():
    p = resolve_params(strategy="exact")
    assert p.max_iter == 50
    assert p.tol == 1e-8
    assert LBFGS_MAX_ITER == 500  # used by the aggregator when the solver is gradient-only


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"tol": 0}, r"'tol' must be a float in \(0, inf\)\. Got 0 instead\."),
        ({"tol": math.nan}, r"'tol' must be a float in \(0, inf\)\. Got nan instead\."),
        ({"C": -1.0}, r"'C' must be a float in \(0, inf\]\. Got -1\.0 instead\."),
        ({"max_iter": 2.5}, r"'max_iter' must be an int in \[1, inf\)\. Got 2\.5 instead\."),
        ({"local_steps": True}, r"'local_steps' must be an int in \[1, inf\)\. Got True"),
        ({"weighted": 1}, r"'weighted' must be a bool \(True or False\)\. Got 1 instead\."),
        ({"solver": "sgd"}, r"'solver' must be one of 'auto', 'newton', 'lbfgs'\."),
        ({"output": "json"}, r"'output' must be one of 'coef', 'model'\. Got 'json'"),
        ({"dataset": ""}, r"'dataset' must be a non-empty str"),
        ({"label": 1.5}, r"'label' must be a column name \(str\), a column position \(int\)"),
        ({"min_patients": 0}, r"'min_patients' must be an int in \[1, inf\)\. Got 0 instead\."),
        ({"max_param_ratio": 2.0}, r"'max_param_ratio' must be a float in \(0, 1\]\."),
        ({"alpha": 1}, r"unknown parameter\(s\) 'alpha'; valid parameters are strategy, "),
        ({"solver": "newton"}, r"'solver' applies to strategy='exact' only"),
        ({"strategy": "exact", "local_steps": 2}, r"'local_steps' applies to strategy='fedavg'"),
        ({"standardize": True, "output": "coef"}, r"cannot carry an intercept"),
    ],
)
def test_invalid_parameters_are_refused_with_one_clear_message(params, match):
    with pytest.raises(ConfigError, match=match):
        resolve_params(**params)


def test_shared_params_are_fields_and_listed_in_shared():
    p = resolve_params(strategy="exact", C=math.inf, solver="lbfgs")
    assert set(p.shared()) == set(SHARED_PARAMS)
    assert p.shared()["C"] == math.inf
    assert set(SHARED_PARAMS) <= set(Params.__dataclass_fields__)


def test_params_has_one_field_per_row_of_the_table_in_order():
    assert list(Params.__dataclass_fields__) == [p.name for p in PARAMETERS]


def test_every_default_passes_its_own_constraint():
    for parameter in PARAMETERS:
        for strategy in ("fedavg", "exact"):
            value = parameter.default_for(strategy)
            assert parameter.constraint.check(parameter.name, value) == value


@pytest.mark.parametrize("strategy", ["fedavg", "exact"])
def test_resolved_defaults_are_the_tables(strategy):
    p = resolve_params(strategy=strategy)
    assert p.max_iter == default("max_iter", strategy)
    assert p.tol == default("tol", strategy)
    assert p.output == default("output", strategy)
    assert p.dataset == default("dataset") == "pancreasData.csv"


def test_the_readme_parameter_table_is_the_generated_one():
    readme = (ROOT / "README.md").read_text()
    assert markdown_table() in readme, (
        "regenerate it: python -c 'from pancreas_fl.params "
        "import markdown_table; print(markdown_table())'"
    )
