"""``python -m flows.cli``: the same as the `evalflow` script."""

import sys

from flows.cli import console_main

sys.exit(console_main())
