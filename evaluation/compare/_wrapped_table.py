"""A text table narrowed to a width by wrapping some columns' cells onto further lines:
`evalflow show` kept each config's label on one line, and at 80 columns a table left
with one metric was still 87 wide and the terminal broke every row in two; `compare`'s
pair tables (two labels a row) were 94 wide."""

from __future__ import annotations

import math
import textwrap
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
        # at spaces only: a word wider than the column stays whole (the table is then
        # wider than asked); broken at its hyphen, `smollm2-135m-` / `instruct` copied
        # as two names
        wrapped[name] = [
            textwrap.wrap(cell, target, break_on_hyphens=False, break_long_words=False) or [""]
            for cell in columns[name]
        ]
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
