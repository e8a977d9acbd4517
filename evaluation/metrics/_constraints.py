"""Constraint checks for open-ended writing: does the output do what the prompt demanded?

A case lists its constraints in ``metadata["constraints"]``; each is checked on its
own, and the score is the share met (the detail names the ones missed):

- ``min_words`` / ``max_words``: whitespace-separated words, inclusive bounds.
- ``must_include`` / ``must_not_include``: phrases, case-insensitive, as whole words.
- ``bullets``: exactly this many lines starting with ``-``, ``*`` or ``•``.
- ``numbered``: exactly this many lines starting with ``1.``, ``2)``, ...
- ``paragraphs``: exactly this many blocks separated by blank lines.
- ``format: json``: the output (a fenced block's content, if fenced) is a JSON object
  having every key in ``json_keys``.
- ``tone: formal``: no contractions (don't, it's, we'll), no exclamation marks, no
  second-person slang openers (hey, hi there).
- ``ends_with``: the stripped output ends with this text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

from evaluation import bounded_json
from evaluation.errors import MetricError
from evaluation.metrics._base import Scored

_BULLET = re.compile(r"^[ \t]*[-*•][ \t]+\S", re.M)
_NUMBERED = re.compile(r"^[ \t]*\d+[.)][ \t]+\S", re.M)
_CONTRACTION = re.compile(
    r"\b\w+(?:n't|'re|'ve|'ll|'m|'d)\b|\b(?:it|that|there|what|let)'s\b", re.I
)
_CASUAL = re.compile(r"^\s*(?:hey|hi there|yo)\b", re.I)
_FENCED = re.compile(r"```[\w-]*\n(.*?)```", re.S)


def _words(text: str) -> int:
    return len(text.split())


def _has(text: str, phrase: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text, re.I) is not None


NO_CONSTANTS = "RFC 8259 has no NaN or Infinity"


def _json_object(text: str) -> tuple[dict | None, str]:
    """The JSON object ``text`` is (a fenced block's content, if fenced), else None and
    why. JSON as RFC 8259 has it: ``NaN``, ``Infinity`` and ``-Infinity``, which Python's
    reader takes, are not JSON (``{"x": NaN}`` got credit as a JSON object); a number
    beyond a float's range (``1e400``) is JSON, read as json reads it (nothing of it is
    stored)."""
    fenced = _FENCED.search(text)
    try:
        value = bounded_json.loads(
            fenced.group(1) if fenced else text.strip(),
            finite=False,
            parse_constant=bounded_json.refuse_constant,
        )
    except bounded_json.NotFiniteNumber as exc:
        return None, f"not a JSON object: {exc.literal} is not JSON ({NO_CONSTANTS})"
    except ValueError:
        return None, "not a JSON object"
    return (value, "") if isinstance(value, dict) else (None, "not a JSON object")


def _formal(text: str) -> bool:
    return not (_CONTRACTION.search(text) or "!" in text or _CASUAL.search(text))


def _tone(text: str, tone: str) -> tuple[bool, str]:
    if tone != "formal":
        raise MetricError(f"unknown tone {tone!r}; known: formal")
    return _formal(text), "not formal (a contraction, '!' or a casual opener)"


def _check_format(text: str, spec: dict[str, Any]) -> tuple[bool, str]:
    if spec["format"] != "json":
        raise MetricError(f"unknown format constraint {spec['format']!r}; known: json")
    value, why = _json_object(text)
    missing = [k for k in spec.get("json_keys", ()) if value is None or k not in value]
    if value is None:
        return False, why
    return not missing, f"JSON lacks keys {missing}"


# name -> check(output, value) -> (met, what was wrong)
_CHECKS: dict[str, Callable[[str, Any], tuple[bool, str]]] = {
    "min_words": lambda t, v: (_words(t) >= v, f"{_words(t)} words, fewer than {v}"),
    "max_words": lambda t, v: (_words(t) <= v, f"{_words(t)} words, more than {v}"),
    "must_include": lambda t, v: (
        all(_has(t, p) for p in v),
        f"missing {[p for p in v if not _has(t, p)]}",
    ),
    "must_not_include": lambda t, v: (
        not any(_has(t, p) for p in v),
        f"contains {[p for p in v if _has(t, p)]}",
    ),
    "bullets": lambda t, v: (
        len(_BULLET.findall(t)) == v,
        f"{len(_BULLET.findall(t))} bullets, not {v}",
    ),
    "numbered": lambda t, v: (
        len(_NUMBERED.findall(t)) == v,
        f"{len(_NUMBERED.findall(t))} numbered items, not {v}",
    ),
    "paragraphs": lambda t, v: (
        len([p for p in re.split(r"\n\s*\n", t.strip()) if p.strip()]) == v,
        f"not {v} paragraphs",
    ),
    "tone": lambda t, v: _tone(t, v),
    "ends_with": lambda t, v: (t.strip().endswith(v), f"does not end with {v!r}"),
}
CONSTRAINT_NAMES = (*_CHECKS, "format", "json_keys")


def check_constraints(output: str, constraints: dict[str, Any]) -> tuple[int, int, list[str]]:
    """(met, total, what was missed) of one output against its constraints."""
    unknown = sorted(set(constraints) - set(CONSTRAINT_NAMES))
    if unknown:
        raise MetricError(f"unknown constraint(s) {unknown}; known: {', '.join(CONSTRAINT_NAMES)}")
    results = [
        (name, *_CHECKS[name](output, value))
        for name, value in constraints.items()
        if name in _CHECKS
    ]
    if "format" in constraints:
        results.append(("format", *_check_format(output, constraints)))
    missed = [f"{name}: {why}" for name, met, why in results if not met]
    return len(results) - len(missed), len(results), missed


def constraints_met(outputs, cases, results, labels) -> Scored:
    """Share of the case's constraints the output meets; NaN for a case without any."""
    values = np.full(len(outputs), np.nan)
    details: list[str | None] = [None] * len(outputs)
    for i, (output, case) in enumerate(zip(outputs, cases, strict=True)):
        constraints = case.metadata.get("constraints")
        if not constraints:
            continue
        met, total, missed = check_constraints(output, constraints)
        values[i] = met / total
        details[i] = "; ".join(missed) or None
    return Scored(values, tuple(details))
