"""JSON from outside (a line of a user's JSONL file: a suite's case, a documents or rag
corpus, a ratings file; a model's or a judge's reply) decoded with its nesting bounded.

Python's decoder raises RecursionError past ~1000 levels (a 10 KB suite line of 5000
nested lists ended `plan` with "evalflow failed: RecursionError ... not a problem with
your input", exit 1: newcomer F12), and code that walks a decoded value recursively can
fail well before that. ``loads`` refuses nesting deeper than ``MAX_DEPTH`` levels, as
``evaluation.safe_yaml`` refuses YAML (the same 64), with a ``json.JSONDecodeError``, so
each reader's "invalid JSON" words and line number say it.

An integer literal longer than Python converts (``sys.get_int_max_str_digits()``, 4300
digits) made ``json.loads`` raise a plain ValueError ("Exceeds the limit ... for integer
string conversion"), which readers took for evalflow's own failure ("not a problem with
your input", exit 1: newcomer S1); it is a ``json.JSONDecodeError`` too, at the number.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

MAX_DEPTH = 64  # as evaluation.safe_yaml.MAX_DEPTH (a test keeps them equal)

#: A JSON string (skipped: brackets in it are text) or a bracket.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)
#: A JSON string (skipped: digits in it are text) or a number.
_NUMBER = re.compile(r'"(?:[^"\\]|\\.)*"|-?(\d+)(\.\d+)?([eE][-+]?\d+)?', re.S)


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
    try:
        return json.loads(text, **kwargs)
    except json.JSONDecodeError:
        raise
    except ValueError:
        too_long = _integer_too_long(text)
        if too_long is None:
            raise  # not the integer limit: a hook's own ValueError
        raise too_long from None


def _integer_too_long(text: str) -> json.JSONDecodeError | None:
    """The refusal of the first integer literal in ``text`` (outside strings) with more
    digits than Python converts, at it; None where there is none."""
    limit = sys.get_int_max_str_digits()
    for token in _NUMBER.finditer(text):
        digits, fraction, exponent = token.groups()
        if digits and not fraction and not exponent and limit and len(digits) > limit:
            message = (
                f"an integer of {len(digits)} digits, more than the {limit} Python reads "
                "(quote it to keep it as text)"
            )
            return json.JSONDecodeError(message, text, token.start())
    return None
