"""A table of text cells as the terminal shows it, without pandas (`evalflow show` does
not import it): what ``DataFrame.to_string(index=False)`` makes of string columns, byte
for byte (tests/evaluation/test_text_table.py holds it to pandas)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# What pandas writes for these characters in a cell: the escape, not the character.
_ESCAPED = str.maketrans({"\t": "\\t", "\r": "\\r", "\n": "\\n"})


def text_table(columns: Mapping[str, Sequence[str]]) -> str:
    """``columns`` (name -> its cells, all the same length), each right-aligned to its
    widest cell or name, one space between columns; the white space every name starts
    with is left out (as pandas formats an index)."""
    if not any(columns.values()):  # no rows: pandas' words for it
        return f"Empty DataFrame\nColumns: [{', '.join(columns)}]\nIndex: []"
    names = [name.translate(_ESCAPED) for name in columns]
    indent = min(len(name) - len(name.lstrip()) for name in names)  # shared by every name
    names = [name[indent:] for name in names]
    cells = [[cell.translate(_ESCAPED) for cell in column] for column in columns.values()]
    widths = [max(len(name), *map(len, column)) for name, column in zip(names, cells, strict=True)]
    lines = [[name.rjust(w) for name, w in zip(names, widths, strict=True)]]
    lines += [
        [column[i].rjust(w) for column, w in zip(cells, widths, strict=True)]
        for i in range(len(cells[0]))
    ]
    return "\n".join(" ".join(line) for line in lines)
