import sys

from flame_offline.emulator.cli import main

sys.exit(main())
