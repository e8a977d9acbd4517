"""The `evalflow` command line, one module per verb group (see ``app.VERB_GROUPS``)."""

from flows.cli.app import console_main, main
from flows.cli.logs import quiet_expected_errors

__all__ = ["console_main", "main", "quiet_expected_errors"]
