"""Entry point for ``python -m skinlab``."""

import sys

from skinlab.cli import main

sys.exit(main())
