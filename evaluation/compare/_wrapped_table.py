"""A text table narrowed to a width by wrapping some columns' cells onto further lines:
`evalflow show` kept each config's label on one line, and at 80 columns a table left
with one metric was still 87 wide and the terminal broke every row in two; `compare`'s
pair tables (two labels a row) were 94 wide, and across experiments 98-100 (labels as
`second-contains:sim-large:8b`, one word wider than its column)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from evaluation.compare._text_table import text_table

#: The narrowest a wrapped column gets: narrower, a label is more breaks than words.
MIN_WRAPPED = 12


def wrapped_table(columns: Mapping[str, Sequence[str]], names: Sequence[str], width: int) -> str:
    """``columns`` as :func:`text_table` draws them where that fits ``width``; else with
    the cells of the columns ``names`` wrapped at spaces (left-aligned, as text reads),
    each to the width that makes the table fit with the others narrowed as much, not
    below ``MIN_WRAPPED``: a row's further lines leave its other columns empty."""
    shown = text_table(columns)
    over = max(len(line) for line in shown.splitlines()) - width
    if over <= 0 or not any(columns[name] for name in names):
        return shown
    share = math.ceil(over / len(names))
    wrapped: dict[str, list[list[str]]] = {}
    for name in names:
        widest = max(len(name), *map(len, columns[name]))
        target = max(MIN_WRAPPED, widest - share)
        wrapped[name] = [_wrapped_cell(cell, target) for cell in columns[name]]
    room = {
        name: max(len(name), *(len(line) for cell in cells for line in cell))
        for name, cells in wrapped.items()
    }
    rows: dict[str, list[str]] = {k: [] for k in columns}
    for i in range(len(next(iter(wrapped.values())))):
        height = max(len(cells[i]) for cells in wrapped.values())
        for j in range(height):
            for key, column in columns.items():
                if key in wrapped:
                    cell = wrapped[key][i]
                    rows[key].append((cell[j] if j < len(cell) else "").ljust(room[key]))
                else:
                    rows[key].append(column[i] if j == 0 else "")
    narrowed = {(k.ljust(room[k]) if k in room else k): v for k, v in rows.items()}
    return "\n".join(line.rstrip() for line in text_table(narrowed).splitlines())


def _wrapped_cell(cell: str, target: int) -> list[str]:
    """``cell`` in lines of ``target`` wrapped at spaces; a word wider than that also
    after its colons (`second-contains:` / `sim-large:8b t=0`: an experiment's name
    before its config's), never inside a name: broken at its hyphen, `smollm2-135m-` /
    `instruct` was copied as two names. A part still wider stays whole (the table is then
    wider than asked)."""
    parts: list[tuple[str, str]] = []  # (the part, what joins it to the one before)
    for word in cell.split():
        pieces = re.findall(r"[^:]*:|[^:]+$", word) if len(word) > target else [word]
        parts += [(pieces[0], " "), *((piece, "") for piece in pieces[1:])]
    lines: list[str] = []
    for part, joint in parts:
        if lines and len(lines[-1]) + len(joint) + len(part) <= target:
            lines[-1] += joint + part
        else:
            lines.append(part)
    return lines or [""]
