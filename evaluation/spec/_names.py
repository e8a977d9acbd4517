"""The experiment-name rule, one for every door a name comes in by (a spec's ``name``,
``--experiment``, the monitor's Start form)."""

from __future__ import annotations

import re

NAME_PATTERN = r"[a-z0-9-]+"
MAX_NAME_LENGTH = 100  # longer names overflow the file names made of them (the report's)


def experiment_name_problem(text: str) -> str | None:
    """What is wrong with ``text`` as an experiment name (``expected ..., got ...``);
    None when it is a good one."""
    if not re.fullmatch(NAME_PATTERN, text):
        return f"expected an experiment name of {NAME_PATTERN} (e.g. my-run-2), got {text!r}"
    if len(text) > MAX_NAME_LENGTH:
        return (
            f"expected an experiment name of at most {MAX_NAME_LENGTH} characters, got {len(text)}"
        )
    return None
