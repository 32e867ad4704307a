"""The emulator's tests: unit tests of each service, and whole-analysis scenarios.

The unit tests always run. The ``flame_node`` scenarios run whole analyses in network
namespaces under the real SDK (root only, and only with an image venv: ``make
test-flame-node`` sets ``FLAME_IMAGE_PYTHON``).
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
