"""``python -m fine_tune`` runs the command line (:mod:`commands.fine_tune`).

An entry point, run and never imported: the one place where this package names the layer above
it (tests/test_layers.py allows it for ``__main__`` modules only).
"""

import sys

from commands.fine_tune import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
