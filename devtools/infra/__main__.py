"""``python -m devtools.infra``."""

import sys

from devtools.infra.cli import main

sys.exit(main())
