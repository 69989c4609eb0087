"""``python -m ssm``: the same as the ``ssm`` command (ssm/cli.py)."""

import sys

from ssm.cli import main

if __name__ == "__main__":
    sys.exit(main())
