"""Test configuration: Hypothesis profiles, and the shared helpers on ``sys.path``.

The suite runs with ``--import-mode=importlib``, so test directories are not importable by
default; this puts ``tests/`` on ``sys.path`` so test modules can import ``_helpers`` and
``_tutorial`` (and process-isolation children, which inherit ``sys.path``, can too).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hypothesis import settings

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

# CI runs Hypothesis derandomized, so a red build can be reproduced from its log.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def pytest_report_header(config) -> list[str]:
    """Name the BLAS kernels in use: results differ in their last bits from one CPU to another.

    ``make test-other-cpus`` forces other CPUs' kernels (``OPENBLAS_CORETYPE``); this line
    shows that they were taken.
    """
    import numpy  # noqa: F401 (loads OpenBLAS: threadpoolctl lists loaded libraries only)
    from threadpoolctl import threadpool_info

    blas = [
        f"{info['internal_api']} {info.get('version') or ''} ({info.get('architecture', '?')})"
        for info in threadpool_info()
        if info.get("user_api") == "blas"
    ]
    return [f"BLAS: {', '.join(blas) or 'none found'}"]
