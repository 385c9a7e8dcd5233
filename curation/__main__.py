"""``python -m curation`` runs the command line (:mod:`commands.curation`).

An entry point, run and never imported: the one place where this package names the layer above
it (tests/test_layers.py allows it for ``__main__`` modules only).
"""

import sys

from commands.curation import main

if __name__ == "__main__":
    sys.exit(main())
