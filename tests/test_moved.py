"""pancreas_fl._moved: the module paths of 0.1 still import, with a DeprecationWarning."""

from __future__ import annotations

import importlib
import sys

import pytest

from pancreas_fl._moved import MOVED


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_path_warns_and_holds_the_new_modules_names(old):
    sys.modules.pop(old, None)
    parent = old.rpartition(".")[0]
    if parent in MOVED:  # imported first, with its own warning
        sys.modules.pop(parent, None)
        with pytest.deprecated_call():
            importlib.import_module(parent)
    with pytest.deprecated_call(match=rf"^{old} is deprecated: import from pancreas_fl"):
        module = importlib.import_module(old)
    for target in MOVED[old]:
        new = importlib.import_module(target)
        for name in getattr(new, "__all__", ()):
            assert getattr(module, name) is getattr(new, name) or any(
                getattr(module, name) is getattr(importlib.import_module(t), name, None)
                for t in MOVED[old]
            ), name
    sys.modules.pop(old, None)


@pytest.mark.parametrize(
    ("statement", "name", "new"),
    [
        (
            "from pancreas_fl.data import load_hospital_data",
            "load_hospital_data",
            "pancreas_fl.reader",
        ),
        (
            "from pancreas_fl.stats import FederatedSolver",
            "FederatedSolver",
            "pancreas_fl.exact.solver",
        ),
        (
            "from pancreas_fl.stats.newton import newton_direction",
            "newton_direction",
            "pancreas_fl.exact.solver",
        ),
        ("from pancreas_fl.strategies.common import RoundLog", "RoundLog", "pancreas_fl.rounds"),
        ("from pancreas_fl.strategies.common import Cohort", "Agreement", "pancreas_fl.handshake"),
        ("from pancreas_fl.cli import main", "main", "pancreas_fl_tools.cli"),
    ],
)
def test_old_imports_as_users_wrote_them(statement, name, new):
    for old in MOVED:
        sys.modules.pop(old, None)
    namespace = {}
    with pytest.deprecated_call():
        exec(statement, namespace)
    imported = statement.rsplit(" ", 1)[1]
    assert namespace[imported] is getattr(importlib.import_module(new), name)


def test_current_modules_are_not_deprecated():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("pancreas_fl.no_such_module")
