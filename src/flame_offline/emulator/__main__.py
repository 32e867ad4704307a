"""``python -m flame_offline.emulator``: see :mod:`flame_offline.emulator.cli`."""

import sys

from flame_offline.emulator.cli import main

sys.exit(main())
