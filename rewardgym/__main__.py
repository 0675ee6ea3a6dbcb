"""``python -m rewardgym``: the ``rewardgym`` command (see :mod:`rewardgym.cli`)."""

import sys

from rewardgym.cli import main

if __name__ == "__main__":
    sys.exit(main())
