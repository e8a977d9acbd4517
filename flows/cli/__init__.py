"""The `evalflow` command line, one module per verb group (see ``app.VERB_GROUPS``)."""

from flows.cli.app import main
from flows.cli.logs import quiet_expected_errors

__all__ = ["main", "quiet_expected_errors"]
