"""The aggregator's first-round checks, the agreement and the round log."""

from __future__ import annotations

import re

import pytest

from _star import StubCore
from pancreas_fl.errors import ConfigError, DataError, HospitalProblemsError, PrivacyError
from pancreas_fl.handshake import check_same_columns, introduce
from pancreas_fl.params import resolve_params
from pancreas_fl.rounds import RoundLog


def intro(n=40, n_pos=10, columns=("a", "b", "y"), problems=(), levels=None, **params):
    return {
        "n": n,
        "n_pos": n_pos,
        "n_dropped": 0,
        "columns": list(columns),
        "params": resolve_params(**params).shared(),
        "problems": list(problems),
        "levels": levels,
    }


def problem(text, *, hint="Fix it.", privacy=False):
    return {"problem": text, "hint": hint, "file": "t.csv", "privacy": privacy}


def test_introduce_counts_the_hospitals_and_keeps_the_names():
    agreement = introduce({"h1": intro(40, 10), "h2": intro(25, 5)}, resolve_params())
    assert agreement.feature_names == ["a", "b"]
    assert agreement.label == "y"
    assert agreement.n_samples == {"h1": 40, "h2": 25}
    assert agreement.n_total == 65
    assert agreement.n_positive == 15


def test_introduce_names_the_hospital_with_another_shared_parameter():
    intros = {"h1": intro(), "h2": intro(C=0.5)}
    with pytest.raises(
        ConfigError,
        match=re.escape("hospital 'h2' runs with C=0.5 but the aggregator with C=1.0"),
    ):
        introduce(intros, resolve_params())


def test_introduce_refuses_different_columns():
    intros = {"h1": intro(), "h2": intro(columns=("a", "c", "y"))}
    with pytest.raises(DataError, match="'h2'"):
        introduce(intros, resolve_params())


def test_one_problem_at_one_hospital_is_that_problems_own_error():
    intros = {"h1": intro(), "h2": intro(problems=[problem("too few", privacy=True)])}
    with pytest.raises(PrivacyError) as info:
        introduce(intros, resolve_params())
    assert str(info.value) == "hospital 'h2': t.csv: too few. Fix it."
    assert not isinstance(info.value, HospitalProblemsError)


def test_every_problem_of_every_hospital_is_one_error_with_one_line_per_hospital():
    intros = {
        "h1": intro(problems=[problem("a is text", hint="Use categorical."), problem("b blank")]),
        "h2": intro(problems=[problem("no label", hint=None)]),
        "h3": intro(),
    }
    with pytest.raises(HospitalProblemsError) as info:
        introduce(intros, resolve_params())
    assert str(info.value).splitlines() == [
        "hospital 'h1': t.csv: 2 problems: (1) a is text; (2) b blank. Use categorical. Fix it",
        "hospital 'h2': t.csv: no label",
    ]
    assert [report.node for report in info.value.reports] == ["h1", "h2"]


def test_shared_parameters_are_checked_before_the_problems_they_may_cause():
    intros = {"h1": intro(problems=[problem("x")], C=0.5), "h2": intro()}
    with pytest.raises(ConfigError, match=r"runs with C=0\.5"):
        introduce(intros, resolve_params())


def test_introduce_agrees_the_union_of_levels_sorted_with_the_first_as_reference():
    params = {"features": ("age", "sex", "stage"), "categorical": ("sex", "stage")}
    columns = ("age", "sex", "stage", "y")
    intros = {
        "h1": intro(columns=columns, levels={"sex": ["M"], "stage": ["II", "I"]}, **params),
        "h2": intro(columns=columns, levels={"sex": ["F", "M"], "stage": ["III"]}, **params),
    }
    agreement = introduce(intros, resolve_params(**params))
    assert agreement.encoding.levels == {"sex": ("F", "M"), "stage": ("I", "II", "III")}
    assert agreement.feature_names == ["age", "sex[M]", "stage[II]", "stage[III]"]


def test_the_round_log_keeps_one_entry_and_writes_one_line_per_round():
    core = StubCore("agg", "aggregator")
    rounds = RoundLog(200, core.flame_log)
    rounds.record(0, None, 100.0)
    rounds.record(1, 0.0123, 50.0, accepted=False)
    rounds.record(2, None, None)
    first, second, third = rounds.history
    assert (first["round"], first["delta"], first["log_loss"]) == (0, None, 0.5)
    assert second["accepted"] is False
    assert third["log_loss"] is None
    assert all(entry["seconds"] >= 0 for entry in rounds.history)
    lines = [line for _, line in core.logs]
    assert re.fullmatch(r"round 0: change n/a, log-loss 0\.500000 \(\d+\.\d{3} s\)", lines[0])
    assert lines[1].startswith("round 1: change 1.230e-02, log-loss 0.250000")
    assert lines[2].startswith("round 2: change n/a, log-loss n/a")
    assert {log_type for log_type, _ in core.logs} == {"info"}


# ------------------------------------------------------------------------------------------
# check_same_columns


def test_same_columns_pass() -> None:
    cols = ("KRAS", "TP53", "diagnosis")
    check_same_columns({"a": cols, "b": list(cols), "c": cols})
    check_same_columns({"a": cols})
    check_same_columns({})


@pytest.mark.parametrize(
    ("columns", "match"),
    [
        (
            {"n1": ("a", "b", "y"), "n2": ("a", "y")},
            r"hospital 'n2' lacks 'b' \(which 'n1' has\) \(no majority\)",
        ),
        (
            {"n1": ("a", "b", "y"), "n2": ("a", "b", "c", "y")},
            r"hospital 'n2' has extra 'c'",
        ),
        (
            {"n1": ("a", "b", "y"), "n2": ("b", "a", "y")},
            r"hospital 'n2' has the same columns as 'n1' in a different order",
        ),
        (
            {"n1": ("a", "z", "y"), "n2": ("a", "b", "y"), "n3": ("a", "b", "y")},
            r"hospital 'n1' lacks 'b' and has extra 'z' \(compared with 'n2', 'n3'\)",
        ),
    ],
    ids=["missing", "extra", "order", "majority"],
)
def test_different_columns(columns: dict[str, tuple[str, ...]], match: str) -> None:
    with pytest.raises(DataError, match=match) as info:
        check_same_columns(columns, file="x.csv")
    assert info.value.file == "x.csv"
    assert info.value.hint == "All hospitals must export the same columns in the same order"
    assert "\n" not in str(info.value)
