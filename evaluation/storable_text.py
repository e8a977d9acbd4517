"""Which text the results database cannot store: one check for every loader of user
text (suites, specs), so such text is refused at load, naming its field, instead of
failing mid-run after rows were written."""

from __future__ import annotations

import re

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def unstorable(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None. PostgreSQL refuses U+0000 in text; a lone
    surrogate (JSON and YAML accept ``"\\ud800"``) has no UTF-8 encoding, so neither
    database, nor a log line or an export, can take it."""
    if "\x00" in text:
        return "holds a NUL character (\\u0000), which the results database cannot store"
    if (found := _LONE_SURROGATE.search(text)) is not None:
        return (
            f"holds a lone surrogate (\\u{ord(found.group()):04x}), which is not valid "
            "UTF-8 and the results database cannot store"
        )
    return None
