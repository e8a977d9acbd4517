"""A PyYAML SafeLoader that bounds expansion, nesting and self-reference (see the
package docstring), and refuses repeated keys and integers longer than Python prints."""

from __future__ import annotations

import math
import sys
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent

MAX_VALUES = 100_000
"""The most values (scalars, lists, mappings; an alias counts as everything it stands
for) one document may expand to: a sweep spec holds hundreds."""
MAX_DEPTH = 64
"""The deepest nesting of lists and mappings (a spec nests four levels)."""


class SafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with the bounds of this package."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._expanded = 0  # values composed so far, aliases at their expanded size
        self._sizes: dict[str, int] = {}  # anchor -> how many values its node expands to
        self._open: list[str | None] = []  # anchors of the nodes being composed
        #: each alias used, (its anchor, its mark), by (id of the node holding it, its
        #: index there: a list position, or the id of its key): a node composed from an
        #: alias is the anchor's own node, and its marks are the anchor's line
        self.alias_uses: dict[tuple[int, int], tuple[str, Any]] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(AliasEvent):
            event = self.peek_event()
            if event.anchor in self._open:
                raise ComposerError(
                    None,
                    None,
                    f"alias *{event.anchor} is inside the value &{event.anchor} it names "
                    "(a value that contains itself)",
                    event.start_mark,
                )
            self._count(self._sizes.get(event.anchor, 0), event.start_mark)
            self.alias_uses[use_key(parent, index)] = event.anchor, event.start_mark
            return super().compose_node(parent, index)
        event = self.peek_event()
        if len(self._open) >= MAX_DEPTH:
            raise ComposerError(
                None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark
            )
        self._count(1, event.start_mark)
        before = self._expanded
        self._open.append(event.anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._open.pop()
        if event.anchor is not None:
            self._sizes[event.anchor] = self._expanded - before + 1
        return node

    def _count(self, values: int, mark: Any) -> None:
        self._expanded += values
        if self._expanded > MAX_VALUES:
            raise ComposerError(
                None,
                None,
                f"expands to more than {MAX_VALUES} values (aliases count as what they "
                "repeat); a file this large or this repetitive is refused",
                mark,
            )

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` may be overridden
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                repeated = key in seen
            except TypeError:  # an unhashable key: PyYAML says so below
                continue
            if repeated:
                raise ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        """PyYAML's integer, refused where it has more digits than Python converts
        (``sys.get_int_max_str_digits()``, 4300): a decimal one raised a plain
        ValueError, "evalflow failed ... not a problem with your input" (newcomer S1); a
        hex, octal or binary one loaded but failed wherever it was printed; and a
        base-60 one (``1:59:59:...``) took time quadratic in its length to compute."""
        limit = sys.get_int_max_str_digits()
        text = self.construct_scalar(node).replace("_", "").lstrip("+-")
        digits = _decimal_digits(text)
        if limit and digits > limit:
            exact = text.isdigit() and not (text.startswith("0") and len(text) > 1)
            size = f"{digits}" if exact else f"about {digits}"
            raise ConstructorError(
                None,
                None,
                f"an integer of {size} digits, more than the {limit} Python reads (quote "
                "it to keep it as text)",
                node.start_mark,
            )
        try:
            return super().construct_yaml_int(node)
        except (ValueError, IndexError):  # `!!int abc`, `!!int ""`: PyYAML's int() fails
            shown = node.value if len(node.value) <= 40 else node.value[:40] + "..."
            raise ConstructorError(
                None, None, f"expected an integer, got {shown!r}", node.start_mark
            ) from None


def _decimal_digits(text: str) -> int:
    """How many decimal digits the YAML 1.1 integer ``text`` (sign and underscores
    removed) has at most: binary ``0b``, hex ``0x``, octal ``0``, base 60 ``a:b:c``."""
    if ":" in text:
        head, *rest = text.split(":")
        return len(head) + math.ceil(len(rest) * math.log10(60))
    for prefix, base in (("0b", 2), ("0x", 16)):
        if text.startswith(prefix):
            return math.ceil((len(text) - 2) * math.log10(base))
    if text.startswith("0") and len(text) > 1:
        return math.ceil((len(text) - 1) * math.log10(8))
    return len(text)


SafeLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, SafeLoader.construct_mapping
)
SafeLoader.add_constructor("tag:yaml.org,2002:int", SafeLoader.construct_yaml_int)


def use_key(parent: Any, index: Any) -> tuple[int, int]:
    """The key of ``SafeLoader.alias_uses`` for the value at ``index`` (a list position,
    or a mapping's key node) of ``parent``."""
    return id(parent), index if isinstance(index, int) else id(index)


def load(text: str) -> Any:
    """The one document in ``text``; ``yaml.YAMLError`` if it is not YAML or passes a
    bound (``problem`` says which, ``position`` where)."""
    return yaml.load(text, Loader=SafeLoader)


def compose(text: str) -> tuple[yaml.Node | None, dict[tuple[int, int], tuple[str, Any]]]:
    """The node tree of the one document in ``text`` (positions of every value), with
    the same bounds as ``load``, and where each alias is used (``SafeLoader.alias_uses``:
    the tree shares the anchor's node, whose marks are the anchor's)."""
    loader = SafeLoader(text)
    try:
        return loader.get_single_node(), loader.alias_uses
    finally:
        loader.dispose()


#: PyYAML's words for the slips people make, and what they mean (a newcomer's bad
#: indentation read "expected <block end>, but found '<block mapping start>'").
_PLAIN_WORDS = (
    (
        "found character '\\t' that cannot start any token",
        "a tab character: YAML indents with spaces only",
    ),
    (
        "expected <block end>, but found",
        "this line is indented more or less than the lines beside it "
        "(YAML nests by indentation: line it up with the key it belongs beside)",
    ),
    ("expected ',' or ']'", "a list in [ ] that is not closed (a ']' or a ',' missing?)"),
    ("expected ',' or '}'", "a mapping in { } that is not closed (a '}' or a ',' missing?)"),
    (
        "mapping values are not allowed here",
        "a ':' where none can be (a slip in indentation, or a value with ': ' in it that "
        "needs quotes)",
    ),
)


def position(exc: yaml.YAMLError) -> tuple[int | None, int | None]:
    """Where PyYAML found the problem: (line, column), 1-based; None where not known."""
    mark = getattr(exc, "problem_mark", None)
    return (mark.line + 1, mark.column + 1) if mark is not None else (None, None)


def problem(exc: yaml.YAMLError) -> str:
    """PyYAML's problem in one line, in plain words where it is a common slip. An
    unclosed [ ] or { } is found on a later line than it was opened on: that line is
    named too (from PyYAML's context mark)."""
    text = getattr(exc, "problem", None) or " ".join(str(exc).split())
    plain = next((plain for raw, plain in _PLAIN_WORDS if text.startswith(raw)), text)
    opened = getattr(exc, "context_mark", None)
    if text.startswith(("expected ',' or ']'", "expected ',' or '}'")) and opened is not None:
        plain += f"; it opened on line {opened.line + 1}"
    return plain
