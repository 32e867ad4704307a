"""Fixtures of the statistics tests.

The helpers live in ``_federated.py`` beside this file; the suite runs with
``--import-mode=importlib`` (test directories are not on ``sys.path``), so this conftest puts
this directory on ``sys.path`` and the tests import ``_federated`` by name.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
