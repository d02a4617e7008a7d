"""``python -m devtools.load`` (``make load``): see :mod:`devtools.load.run`."""

# Locust patches the standard library with gevent when it is imported: it must come first.
import locust  # noqa: F401  # isort: skip

import sys

from devtools.load.run import main

if __name__ == "__main__":
    sys.exit(main())
