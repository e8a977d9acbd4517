"""`-v`'s traceback, credentials masked as in the error line below it: users paste it into
an issue, and an exception's text may hold a host's URL with its key (httpx's
``HTTPStatusError`` names the URL it asked)."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence


def print_masked_traceback(known: Sequence[str] = ()) -> None:
    """The exception being handled, as ``traceback.print_exc`` prints it, masked
    (``evaluation.redact.redact``; ``known``: URLs the command was given)."""
    from evaluation.redact import redact

    sys.stderr.write(redact(traceback.format_exc(), known))
