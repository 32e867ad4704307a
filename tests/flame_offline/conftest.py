"""Fixtures of the engine tests.

Node classes used by process-isolation tests live in ``_nodes.py`` beside this file. The
suite runs with ``--import-mode=importlib`` (test directories are not on ``sys.path``), so
this conftest puts this directory on ``sys.path``: the tests import ``_nodes`` by name, and
spawned node processes (which inherit the tester's ``sys.path``) import it the same way.
The engine's fallback for modules that are *not* importable by name (loading them from
their file) is tested separately in ``test_processes.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


@pytest.fixture(params=["thread", "process"])
def isolation(request: pytest.FixtureRequest) -> str:
    """Each isolation mode of ``StarModelTester``."""
    return request.param
