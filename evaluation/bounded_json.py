"""JSON from outside (a line of a user's JSONL file: a suite's case, a documents or rag
corpus, a ratings file; a model's or a judge's reply) decoded with its nesting bounded.

Python's decoder raises RecursionError past ~1000 levels (a 10 KB suite line of 5000
nested lists ended `plan` with "evalflow failed: RecursionError ... not a problem with
your input", exit 1: newcomer F12), and code that walks a decoded value recursively can
fail well before that. ``loads`` refuses nesting deeper than ``MAX_DEPTH`` levels, as
``evaluation.safe_yaml`` refuses YAML (the same 64), with a ``json.JSONDecodeError``, so
each reader's "invalid JSON" words and line number say it.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64  # as evaluation.safe_yaml.MAX_DEPTH (a test keeps them equal)

#: A JSON string (skipped: brackets in it are text) or a bracket.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)


def loads(text: str, **kwargs: Any) -> Any:
    """``json.loads(text, **kwargs)``, refused past ``MAX_DEPTH`` levels of nesting
    (``json.JSONDecodeError``, "nested deeper than 64 levels", at the bracket)."""
    if text.count("[") + text.count("{") > MAX_DEPTH:  # else it cannot be that deep
        depth = 0
        for token in _TOKEN.finditer(text):
            bracket = token.group()
            if bracket in ("[", "{"):
                depth += 1
                if depth > MAX_DEPTH:
                    message = f"nested deeper than {MAX_DEPTH} levels"
                    raise json.JSONDecodeError(message, text, token.start())
            elif bracket in ("]", "}"):
                depth = max(depth - 1, 0)
    return json.loads(text, **kwargs)
