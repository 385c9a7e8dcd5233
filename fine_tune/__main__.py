"""``python -m fine_tune``: see :mod:`fine_tune.cli`."""

import sys

from fine_tune.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
