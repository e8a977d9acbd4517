"""The experiment-name rule, one for every door a name comes in by (a spec's ``name``,
``--experiment``, the monitor's Start form)."""

from __future__ import annotations

import re

NAME_PATTERN = r"[a-z0-9-]+"
MAX_NAME_LENGTH = 100  # longer names overflow the file names made of them (the report's)


def experiment_name_problem(text: str, what: str = "experiment") -> str | None:
    """What is wrong with ``text`` as an experiment name (``expected ..., got ...``);
    None when it is a good one. ``what``: the name's kind in the message (a series
    name follows the same rule)."""
    example = "my-run-2" if what == "experiment" else "nightly-qa"
    if not re.fullmatch(NAME_PATTERN, text):
        return f"expected {_a(what)} name of {NAME_PATTERN} (e.g. {example}), got {text!r}"
    if len(text) > MAX_NAME_LENGTH:
        return f"expected {_a(what)} name of at most {MAX_NAME_LENGTH} characters, got {len(text)}"
    return None


def _a(what: str) -> str:
    return f"an {what}" if what[0] in "aeiou" else f"a {what}"
