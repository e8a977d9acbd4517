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

``json.loads`` also takes ``NaN``, ``Infinity`` and ``-Infinity`` (not JSON) and turns a
number beyond a float's range (``1e400``) into infinity; PostgreSQL's json type refuses
all of them, so a suite case whose metadata held one passed ``plan`` and SQLite, then
ended a PostgreSQL run "invalid input syntax for type json", naming no line (recheck R1).
``loads`` refuses them (``finite=False`` keeps json's reading), a ``json.JSONDecodeError``
at the number (:class:`NotFiniteNumber`, saying which). A model's output checked for
being a JSON object (``format: json``) refuses the three constants only
(``parse_constant=refuse_constant``): they are not JSON, where 1e400 is.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

MAX_DEPTH = 64  # as evaluation.safe_yaml.MAX_DEPTH (a test keeps them equal)

#: A JSON string (skipped: brackets in it are text) or a bracket.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)
#: A JSON string (skipped: digits in it are text) or a number.
_NUMBER = re.compile(r'"(?:[^"\\]|\\.)*"|-?(\d+)(\.\d+)?([eE][-+]?\d+)?', re.S)
#: A JSON string (skipped), a non-finite constant json reads, or a float literal.
_NOT_FINITE = re.compile(
    r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)|(-?\d+(?:\.\d+)?[eE][-+]?\d+|-?\d+\.\d+)', re.S
)
#: The most of a number a refusal quotes.
_SHOWN = 24


class _NotFinite(ValueError):
    """Raised by the hooks below; turned into a JSONDecodeError at the literal."""


def _finite_float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise _NotFinite(literal)
    return value


def refuse_constant(literal: str) -> float:
    """``parse_constant`` that refuses ``NaN``, ``Infinity`` and ``-Infinity`` (not JSON):
    ``loads`` raises :class:`NotFiniteNumber` at the literal."""
    raise _NotFinite(literal)


class NotFiniteNumber(json.JSONDecodeError):
    """The refusal of a number that is not finite; ``literal`` is the number as written."""

    def __init__(self, msg: str, doc: str, pos: int, literal: str) -> None:
        super().__init__(msg, doc, pos)
        self.literal = literal

    def __reduce__(self):  # pickled with its literal (JSONDecodeError pickles 3 arguments)
        return type(self), (self.msg, self.doc, self.pos, self.literal)


def loads(text: str, *, finite: bool = True, **kwargs: Any) -> Any:
    """``json.loads(text, **kwargs)``, refused past ``MAX_DEPTH`` levels of nesting
    (``json.JSONDecodeError``, "nested deeper than 64 levels", at the bracket) and, with
    ``finite``, where a number is NaN, infinite or beyond a float's range ("1e400 is not
    a finite number", at it)."""
    if finite:
        kwargs.setdefault("parse_float", _finite_float)
        kwargs.setdefault("parse_constant", refuse_constant)
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
    except _NotFinite:
        raise _not_finite(text) from None
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


def _not_finite(text: str) -> NotFiniteNumber:
    """The refusal of the first number in ``text`` (outside strings) that is not finite
    (NaN, Infinity, -Infinity, or a float literal beyond a float's range), at it."""
    for token in _NOT_FINITE.finditer(text):
        constant, number = token.groups()
        literal = constant or number
        if literal and (constant or math.isinf(float(literal))):
            shown = literal if len(literal) <= _SHOWN else f"a number of {len(literal)} characters"
            message = (
                f"{shown} is not a finite number (JSON has none and the results database "
                "refuses it; quote it to keep it as text)"
            )
            return NotFiniteNumber(message, text, token.start(), shown)
    return NotFiniteNumber("a number is not finite", text, 0, "")  # not reached
