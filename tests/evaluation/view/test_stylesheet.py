"""The view's dark mode looks the same whether the reader's system asks for it
(prefers-color-scheme) or the reader pressed the toggle (data-theme="dark")."""

from __future__ import annotations

import re
from importlib.resources import files

_TOGGLE = ':root[data-theme="dark"]'
_SYSTEM = ':root:not([data-theme="light"])'


def _rules(css: str) -> tuple[dict[str, str], dict[str, str]]:
    """(selector -> declarations) outside any @media block, and inside the dark one."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    outside: dict[str, str] = {}
    system: dict[str, str] = {}
    pos = 0
    for media in re.finditer(r"@media\s*\(prefers-color-scheme:\s*dark\)\s*\{", css):
        _collect(css[pos : media.start()], outside)
        depth, end = 1, media.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(css[end], 0)
            end += 1
        _collect(css[media.end() : end - 1], system)
        pos = end
    _collect(css[pos:], outside)
    return outside, system


def _collect(block: str, into: dict[str, str]) -> None:
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", block):
        declarations = " ".join(body.split())
        for selector in selectors.split(","):
            into[" ".join(selector.split())] = declarations


def test_system_dark_mode_has_every_colour_of_the_toggle():
    css = (files("evaluation.view") / "static" / "view.css").read_text(encoding="utf-8")
    outside, system = _rules(css)
    toggled = {s: d for s, d in outside.items() if s.startswith(_TOGGLE)}
    assert ':root[data-theme="dark"] td.heat-cell' in toggled
    missing = {s: d for s, d in toggled.items() if system.get(s.replace(_TOGGLE, _SYSTEM, 1)) != d}
    assert not missing, f"dark colours only under the toggle: {missing}"
