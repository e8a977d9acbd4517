"""``python -m flows.cli``: the same as the `evalflow` script."""

import sys

from flows.cli import main

sys.exit(main())
