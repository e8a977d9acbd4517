"""Typed readers for sweep-spec fields.

Each reader checks one YAML value and raises ``SpecError`` naming its dotted field
(``grid.temperature[1]``, ``hosts[0].url``), so the parser in ``_load`` reads like the
shape it validates.
"""

from __future__ import annotations

import difflib
import math
import re
import string
from collections.abc import Iterable, Sequence
from typing import Any

from evaluation.errors import SpecError

DOCUMENT = "<document>"  # the field named when the whole file is wrong


def child(prefix: str, key: object) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def item(prefix: str, index: int) -> str:
    return f"{prefix}[{index}]"


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


class FieldReader:
    """Reads fields of one spec file; ``path`` goes into every error."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path

    def error(self, field: str, message: str) -> SpecError:
        return SpecError(message, field=field, path=self.path)

    def check(self, ok: bool, field: str, message: str) -> None:
        if not ok:
            raise self.error(field, message)

    def mapping(
        self,
        value: Any,
        field: str,
        *,
        allowed: Sequence[str] | None = None,
        required: Iterable[str] = (),
    ) -> dict[str, Any]:
        """A mapping with string keys; unknown keys are refused with the allowed ones."""
        if not isinstance(value, dict):
            raise self.error(field or DOCUMENT, f"expected a mapping, got {_type_name(value)}")
        for key in value:
            if not isinstance(key, str):
                raise self.error(child(field, key), "keys must be text")
            if allowed is not None and key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise self.error(
                    child(field, key), f"unknown key{hint} (allowed: {', '.join(allowed)})"
                )
        for key in required:
            if value.get(key) is None:
                raise self.error(child(field, key), "is required")
        return value

    def sequence(self, value: Any, field: str) -> list[Any]:
        """A non-empty list."""
        if not isinstance(value, list):
            raise self.error(field, f"expected a list, got {_type_name(value)}")
        self.check(bool(value), field, "must not be empty")
        return value

    def text(self, value: Any, field: str, *, pattern: str | None = None) -> str:
        """Non-empty text, optionally matching ``pattern`` (a full match)."""
        if not isinstance(value, str):
            raise self.error(field, f"expected text, got {_type_name(value)}")
        self.check(bool(value.strip()), field, "must not be empty")
        if pattern is not None and not re.fullmatch(pattern, value):
            raise self.error(field, f"'{value}' has characters outside {pattern}")
        return value

    def integer(self, value: Any, field: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(field, f"expected an integer, got {value!r} ({_type_name(value)})")
        return value

    def boolean(self, value: Any, field: str) -> bool:
        if not isinstance(value, bool):
            raise self.error(field, f"expected true or false, got {value!r} ({_type_name(value)})")
        return value

    def number(self, value: Any, field: str) -> float:
        """A finite int or float, returned as float (so 1 and 1.0 hash alike)."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            hint = ""
            if isinstance(value, str) and _parses_as_float(value):
                hint = "; YAML reads exponents without a dot (1e-3) as text: write 0.001"
            raise self.error(field, f"expected a number, got {value!r} ({_type_name(value)}){hint}")
        self.check(math.isfinite(value), field, f"must be a finite number, got {value}")
        return float(value)

    def unique(self, values: Sequence[Any], field: str) -> None:
        """Refuse repeated values, naming the repeat and its first occurrence."""
        seen: dict[Any, int] = {}
        for index, value in enumerate(values):
            if value in seen:
                raise self.error(
                    item(field, index),
                    f"duplicate value {value!r} (already at {item(field, seen[value])})",
                )
            seen[value] = index


def _parses_as_float(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


class FormattedField(ValueError):
    """A template field with a format spec or conversion (``{input:>50}``, ``{input!r}``)."""


def template_fields(text: str) -> list[str]:
    """The replacement-field names a ``str.format`` template uses.

    Raises ValueError for malformed templates (e.g. a lone ``}``) and for a field with a
    format spec or a conversion (``{input:>50}``, ``{input!r}``): only plain ``{name}``
    fields are meaningful in a prompt, and a spec like ``:>50000000`` builds huge prompts.
    """
    names: list[str] = []
    for _literal, name, spec, conversion in string.Formatter().parse(text):
        if name is None:
            continue
        if spec or conversion:
            written = "{" + name + (f"!{conversion}" if conversion else "")
            written += (f":{spec}" if spec else "") + "}"
            raise FormattedField(
                f"{written} has a format spec or conversion; only plain fields such as "
                f"{{{name}}} are allowed"
            )
        names.append(name)
    return names
