"""A text table narrowed to a width by wrapping one column's cells onto further lines:
`evalflow show` kept each config's label on one line, and at 80 columns a table left
with one metric was still 87 wide and the terminal broke every row in two."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

from evaluation.compare._text_table import text_table

#: The narrowest a wrapped column gets: narrower, a label is more breaks than words.
MIN_WRAPPED = 12


def wrapped_table(columns: Mapping[str, Sequence[str]], name: str, width: int) -> str:
    """``columns`` as :func:`text_table` draws them where that fits ``width``; else with
    the cells of column ``name`` wrapped at spaces (left-aligned, as text reads) to the
    width that makes the table fit, not below ``MIN_WRAPPED``: a cell's further lines
    leave the other columns empty."""
    shown = text_table(columns)
    over = max(len(line) for line in shown.splitlines()) - width
    if over <= 0 or not columns[name]:
        return shown
    widest = max(len(name), *map(len, columns[name]))
    target = max(MIN_WRAPPED, widest - over)
    # at spaces only: a word wider than the column stays whole (the table is then wider
    # than asked); broken at its hyphen, `smollm2-135m-` / `instruct` copied as two names
    lines = [
        textwrap.wrap(cell, target, break_on_hyphens=False, break_long_words=False) or [""]
        for cell in columns[name]
    ]
    room = max(len(name), *(len(line) for cell in lines for line in cell))
    rows: dict[str, list[str]] = {k: [] for k in columns}
    for i, cell in enumerate(lines):
        for j, line in enumerate(cell):
            for key, column in columns.items():
                rows[key].append(line.ljust(room) if key == name else column[i] if j == 0 else "")
    narrowed = {(k.ljust(room) if k == name else k): v for k, v in rows.items()}
    return "\n".join(line.rstrip() for line in text_table(narrowed).splitlines())
