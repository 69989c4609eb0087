"""``python -m emulator``: the same command as ``dasd``."""

import sys

from emulator.cli.dasd import main

if __name__ == "__main__":
    sys.exit(main())
