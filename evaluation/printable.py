"""Text from outside (a server's reply, a name in a user's file, an argument) as it is
shown on a terminal or written to a log: every control character but a line break and a
tab (C0, DEL and C1) written as Python writes it in a string literal (``\\x1b``, ``\\r``),
so that what a server or a file holds cannot clear the screen, set the window's title or
draw a line evalflow did not write (newcomer S5: a server's error body did all three)."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with its control characters but ``\\n`` and ``\\t`` escaped (``\\x1b``)."""
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(lambda control: repr(control.group())[1:-1], text)


def control_character(text: str) -> str | None:
    """The first control character of ``text`` (``\\n`` and ``\\t`` too), escaped, or None."""
    found = re.search(r"[\x00-\x1f\x7f-\x9f]", text)
    return None if found is None else repr(found.group())[1:-1]
