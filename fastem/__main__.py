"""``python -m fastem`` and the ``fastem`` console script: see :mod:`fastem.cli`."""

import sys

from .cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
