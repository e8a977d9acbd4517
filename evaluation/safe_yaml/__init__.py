"""The one way evalflow reads YAML (sweep specs, suite sidecars, judge rubrics): a safe
loader that bounds what a small file can make.

YAML aliases let a few lines stand for billions of values (the "billion laughs") or for a
value that contains itself (``models: &m [*m]``); anything that walks such a document
(a check, an error message placing a field) then never ends or overflows the stack. The
loader counts every value as it would be expanded, while it composes the document, and
refuses, with the line of the alias or value that passed the bound: more than
``MAX_VALUES`` values, nesting deeper than ``MAX_DEPTH``, or an alias inside the value it
names. It also refuses a key repeated in one mapping (PyYAML would keep the last), and
an integer of more digits than Python converts (4300; PyYAML raised a plain ValueError).
Refusals are ``yaml.YAMLError``s, so a reader's one handler for bad YAML covers them.
"""

from __future__ import annotations

from evaluation.safe_yaml._loader import (
    MAX_DEPTH,
    MAX_VALUES,
    SafeLoader,
    compose,
    load,
    position,
    problem,
    use_key,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_VALUES",
    "SafeLoader",
    "compose",
    "load",
    "position",
    "problem",
    "use_key",
]
