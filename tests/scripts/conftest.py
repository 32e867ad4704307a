"""Tests of `scripts/`: the Makefile's scripts, importable once their folder is on the path."""

from __future__ import annotations

import sys
from pathlib import Path

_TOOLS = str(Path(__file__).resolve().parents[2] / "scripts")
if _TOOLS not in sys.path:
    sys.path.insert(0, _TOOLS)
