"""Typed readers for sweep-spec fields.

Each reader checks one YAML value and raises ``SpecError`` naming its dotted field
(``grid.temperature[1]``, ``hosts[0].url``), so the parser in ``_load`` reads like the
shape it validates.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from evaluation import safe_yaml
from evaluation.errors import SpecError
from evaluation.input_files import MAX_WRITTEN_BYTES, read_text
from evaluation.storable_text import unstorable

DOCUMENT = "<document>"  # the field named when the whole file is wrong
MAX_INTEGER = 2**53
"""The largest integer a spec may hold: past any sane setting, and every integer up to
it fits a database column and a float exactly (100000000000000000000 overflowed the
database's 64-bit integer)."""


@dataclass(frozen=True)
class Bound:
    """The values a count or number of a spec may take (the generation parameters have
    theirs in ``_params``): at least ``low`` (more than it, ``low_open``), at most
    ``high``, and why the most is what it is."""

    low: int | float
    high: int | float
    why: str
    low_open: bool = False

    @property
    def rule(self) -> str:
        return f"must be {'>' if self.low_open else '>='} {self.low} and <= {self.high}"

    def holds(self, value: int | float) -> bool:
        above = value > self.low or (value == self.low and not self.low_open)
        return above and value <= self.high


DAY_S = 86_400
BOUNDS: dict[str, Bound] = {
    "samples_per_case": Bound(1, 1_000, "pass@k takes k samples; past 1000 is no use"),
    "slots": Bound(1, 1_024, "requests one host runs at once"),
    "max_configs": Bound(1, 100_000, "a sweep of more configs never ends"),
    "max_generations": Bound(1, 10**9, "more than any database here holds"),
    "max_attempts": Bound(1, 100, "tries of one request"),
    "request_timeout_s": Bound(0, DAY_S, "a day", low_open=True),
    "first_request_timeout_s": Bound(0, DAY_S, "a day", low_open=True),
    "budget": Bound(1, 10**9, "generations; more than any database here holds"),
    "max_latency_s": Bound(0, DAY_S, "a day", low_open=True),
}
"""Every count and number of a spec outside the generation-parameter table, by the key
that holds it (``hosts[i].slots`` is ``slots``); docs/bad-input.md lists them."""


def child(prefix: str, key: object) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def item(prefix: str, index: int) -> str:
    return f"{prefix}[{index}]"


#: What a refusal quotes as a key: a word (S9). Anything else is placed, not quoted.
_KEY_SHAPE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")

#: The most characters of a value a refusal quotes (R2: a 4,000-digit ``slots`` made a
#: 4,117-character error line).
SHOWN_CHARS = 60


def shown(value: Any) -> str:
    """``value`` as a refusal quotes it: ``repr``, an integer of more than 20 digits as
    its size ("an integer of 4000 digits") and other long text cut with its length."""
    if isinstance(value, int) and not isinstance(value, bool):
        digits = len(str(abs(value)))  # at most 4300: safe_yaml refuses longer ones
        return f"an integer of {digits} digits" if digits > 20 else str(value)
    text = repr(value)
    if len(text) <= SHOWN_CHARS:
        return text
    return f"{text[: SHOWN_CHARS - 10]}… ({len(text)} characters)"


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


Mark = tuple[int, int]  # (line, column), 1-based


def marks_and_aliases(
    text: str,
) -> tuple[dict[str, tuple[Mark, Mark]], dict[str, tuple[str, int]]]:
    """Where each field of a YAML document is: dotted field (as ``child``/``item`` name
    it) -> (its key's position, its value's position), and each field reached through an
    alias (``grid: {temperature: *m}``) -> (the anchor's name, the anchor's line): it is
    placed at the alias, not at the anchor's line, whose field is another. Empty if the
    text is not YAML."""
    try:
        root, uses = safe_yaml.compose(text)
    except yaml.YAMLError:
        return {}, {}
    marks: dict[str, tuple[Mark, Mark]] = {}
    aliased: dict[str, tuple[str, int]] = {}

    def at(node: yaml.Node) -> Mark:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def enter(parent: yaml.Node, index: Any, value: yaml.Node, name: str, via: Any) -> Any:
        """The alias mark ``value`` is reached through (``via`` inherited), noting it."""
        use = uses.get(safe_yaml.use_key(parent, index))
        if via is None and use is not None:
            via = use[1], (use[0], value.start_mark.line + 1)
        if via is not None:
            aliased.setdefault(name, via[1])
        return via

    def place(node: yaml.Node, via: Any) -> Mark:
        return at(node) if via is None else (via[0].line + 1, via[0].column + 1)

    def walk(node: yaml.Node, field: str, via: Any) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = child(field, key.value) if isinstance(key, yaml.ScalarNode) else field
                inner = enter(node, key, value, name, via)
                marks.setdefault(name, (place(key, via), place(value, inner)))
                walk(value, name, inner)
        elif isinstance(node, yaml.SequenceNode):
            for index, value in enumerate(node.value):
                inner = enter(node, index, value, item(field, index), via)
                marks.setdefault(item(field, index), (place(value, inner), place(value, inner)))
                walk(value, item(field, index), inner)

    if root is not None:
        marks[""] = (at(root), at(root))
        walk(root, "", None)
    return marks, aliased


def locate(marks: dict[str, tuple[Mark, Mark]], field: str, *, at_key: bool = False) -> Mark | None:
    """Where ``field`` is (its value, or ``at_key`` its key); for a field that is
    missing, where the mapping that should hold it is."""
    name: str | None = field
    while name is not None and name not in marks:
        name, at_key = _parent(name), False
    if name is None:
        return None
    key, value = marks[name]
    return key if at_key else value


def _parent(field: str) -> str | None:
    """``grid.temperature[0]`` -> ``grid.temperature`` -> ``grid`` -> ``""`` -> None."""
    if not field:
        return None
    cut = max(field.rfind("."), field.rfind("["))
    return field[:cut] if cut > 0 else ""


class FieldReader:
    """Reads fields of one spec file; ``path`` goes into every error, with the line and
    column of the field (read from the file when an error is raised: nothing is kept
    for a spec that is fine)."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self._marks: dict[str, tuple[Mark, Mark]] | None = None
        self._aliases: dict[str, tuple[str, int]] = {}

    def error(self, field: str, message: str, *, at_key: bool = False) -> SpecError:
        """The error for ``field``, placed at its value (or, ``at_key``, at its key); a
        field reached through an alias is placed at the alias, and the message names the
        anchor's line (a newcomer's `grid: {temperature: *m}` was placed on line 4,
        `models: &m [...]`)."""
        line, column = self.position(field, at_key=at_key) or (None, None)
        if field in self._aliases:
            anchor, anchor_line = self._aliases[field]
            message += f" (*{anchor} repeats &{anchor} of line {anchor_line})"
        return SpecError(message, field=field, path=self.path, line=line, column=column)

    def _not_a_key(self, field: str, key: object, allowed: Sequence[str] | None) -> SpecError:
        """The refusal of a key that is no word (S9): placed at it, never quoted. A spec
        path naming another file (``/etc/shadow``, chosen in the Prefect UI or the
        monitor's form by someone who cannot read it) echoed its first line as the key,
        `field 'root:*:20228:0:99999:7::': unknown key`."""
        at = self.error(child(field, key), "", at_key=True)
        if isinstance(key, str):
            message = "a key that is no word (letters, digits, _, . and -), not quoted here"
        else:
            message = f"a key of type {_type_name(key)}, not text, not quoted here"
        if allowed is not None:
            message += f" (allowed: {', '.join(allowed)})"
        named = field or DOCUMENT
        return SpecError(message, field=named, path=self.path, line=at.line, column=at.column)

    def written(self, field: str) -> bool:
        """Whether ``field`` is written in the file (not left to its default)."""
        return field in self._read_marks()

    def _read_marks(self) -> dict[str, tuple[Mark, Mark]]:
        if self._marks is None:
            try:
                # at most a spec's most: a file that grew since it was read has no marks
                text = (
                    read_text(self.path, "utf-8-sig", most=MAX_WRITTEN_BYTES) if self.path else ""
                )
                self._marks, self._aliases = marks_and_aliases(text)
            except (OSError, UnicodeDecodeError):
                self._marks = {}
        return self._marks

    def position(self, field: str, *, at_key: bool = False) -> Mark | None:
        """Where ``field`` is in the file; for a field that is missing, where the
        mapping that should hold it is."""
        if self.path is None or field == DOCUMENT:
            return None
        return locate(self._read_marks(), field, at_key=at_key)

    @staticmethod
    def file_near_spec(value: str, base_dir: str | Path | None) -> Path:
        """A file a spec names (its suite, a rag corpus): ``~`` expanded, a relative path
        taken from the spec's folder (``base_dir``), resolved."""
        path = Path(value).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        return path.resolve()

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
        nested: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """A mapping with string keys; unknown keys are refused with the allowed ones.
        ``nested`` names keys that belong one level down (key → the field holding them),
        so a misspelled one is pointed there rather than to the nearest key here."""
        if value is None and not field:  # YAML reads an empty (or comments-only) file so
            raise self.error(DOCUMENT, "the file is empty (or only comments): expected a mapping")
        if not isinstance(value, dict):
            raise self.error(field or DOCUMENT, f"expected a mapping, got {_type_name(value)}")
        for key in value:
            if not isinstance(key, str):
                raise self._not_a_key(field, key, allowed)
            if allowed is not None and key not in allowed:
                if not _KEY_SHAPE.fullmatch(key):
                    raise self._not_a_key(field, key, allowed)
                hint = _did_you_mean(key, allowed, nested or {})
                raise self.error(
                    child(field, key),
                    f"unknown key{hint} (allowed: {', '.join(allowed)})",
                    at_key=True,
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
            raise self.error(field, f"{shown(value)} has characters outside {pattern}")
        return value

    def integer(self, value: Any, field: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            got = f"{shown(value)} ({_type_name(value)})"
            raise self.error(field, f"expected an integer, got {got}")
        self.check(
            abs(value) <= MAX_INTEGER,
            field,
            f"{shown(value)} is far beyond any sane value (at most 2**53 = {MAX_INTEGER})",
        )
        return value

    def bounded(
        self, value: Any, field: str, key: str, kind: type = int, *, setting: str = ""
    ) -> Any:
        """A count (``kind`` int) or number (float) within ``BOUNDS[key]``; ``setting``:
        what sets it on the other side, said with why the most is what it is."""
        bound = BOUNDS[key]
        read = self.integer(value, field) if kind is int else self.number(value, field)
        if not bound.holds(read):
            said = f"{bound.why}: {setting}" if setting else bound.why
            why = f" ({said})" if read > bound.high else ""
            got = read if kind is int else f"{read:g}"
            raise self.error(field, f"{key} {bound.rule}{why}, got {got}")
        return read

    def boolean(self, value: Any, field: str) -> bool:
        if not isinstance(value, bool):
            got = f"{shown(value)} ({_type_name(value)})"
            raise self.error(field, f"expected true or false, got {got}")
        return value

    def number(self, value: Any, field: str) -> float:
        """A finite int or float, returned as float (so 1 and 1.0 hash alike; -0.0 is 0.0,
        which it equals, so it hashes and labels as 0)."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            hint = ""
            if isinstance(value, str) and _parses_as_float(value):
                hint = "; YAML reads exponents without a dot (1e-3) as text: write 0.001"
            got = f"{shown(value)} ({_type_name(value)})"
            raise self.error(field, f"expected a number, got {got}{hint}")
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an int past a float's range (309+ digits): was exit 1
            finite = False
        self.check(finite, field, f"must be a finite number, got {shown(value)}")
        return float(value) + 0.0  # -0.0 + 0.0 is 0.0

    def storable(self, value: Any, field: str = "") -> None:
        """Refuse text anywhere in ``value`` (keys too) that the results database cannot
        store (``storable_text.unstorable``: NUL, which YAML writes ``"\\0"``, or a lone
        surrogate, ``"\\ud800"``), naming its field: a run would fail mid-way."""
        if isinstance(value, str):
            why = unstorable(value)
            self.check(why is None, field or DOCUMENT, str(why))
        elif isinstance(value, dict):
            for key, inner in value.items():
                why = unstorable(key) if isinstance(key, str) else None
                self.check(why is None, field or DOCUMENT, f"the key {key!r} {why}")
                self.storable(inner, child(field, key))
        elif isinstance(value, list):
            for index, inner in enumerate(value):
                self.storable(inner, item(field, index))

    def unique(self, values: Sequence[Any], field: str) -> None:
        """Refuse repeated values, naming the repeat and its first occurrence."""
        seen: dict[Any, int] = {}
        for index, value in enumerate(values):
            if value in seen:
                shown = json.dumps(list(value)) if isinstance(value, tuple) else repr(value)
                raise self.error(
                    item(field, index),
                    f"duplicate value {shown} (already at {item(field, seen[value])})",
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


def _did_you_mean(key: str, allowed: Sequence[str], nested: Mapping[str, str]) -> str:
    close = difflib.get_close_matches(key, [*allowed, *nested], n=1)
    if not close:
        return ""
    if close[0] in nested:
        return f"; did you mean '{close[0]}' under '{nested[close[0]]}'?"
    return f"; did you mean '{close[0]}'?"
