"""Text fitted to the width output is read at (``results.terminal_columns``): each line
wider than it wrapped at its spaces, never inside a word, its further lines indented two
past its own indent. `recommend`'s answer was lines of 240-352 characters at 80 columns."""

from __future__ import annotations

import contextlib
import io
import sys
import textwrap
from collections.abc import Iterator
from typing import TextIO


def fitted(text: str, width: int | None = None) -> str:
    """``text`` with every line over ``width`` (default: the terminal's, as `show`'s)
    wrapped; a line that fits is left as it is, byte for byte."""
    if width is None:
        from flows.cli.results import terminal_columns

        width = terminal_columns()
    lines = []
    for line in text.split("\n"):
        if len(line) <= width:
            lines.append(line)
            continue
        indent = " " * min(len(line) - len(line.lstrip(" ")) + 2, width // 3)
        lines += textwrap.wrap(
            line,
            width,
            subsequent_indent=indent,
            break_on_hyphens=False,
            break_long_words=False,
        )
    return "\n".join(lines)


class FittedLines(io.TextIOBase):
    """A stream that writes each whole line to ``out`` fitted to ``width`` as it comes
    (`plan`'s probe line shows before its measurement, not at the end)."""

    def __init__(self, out: TextIO, width: int) -> None:
        self.out, self.width, self.partial = out, width, ""

    def write(self, text: str) -> int:
        *lines, self.partial = (self.partial + text).split("\n")
        for line in lines:
            self.out.write(fitted(line, self.width) + "\n")
        return len(text)

    def flush(self) -> None:
        self.out.flush()


@contextlib.contextmanager
def fitted_stdout() -> Iterator[None]:
    """Standard output fitted to the terminal's width line by line while inside."""
    from flows.cli.results import terminal_columns

    stream = FittedLines(sys.stdout, terminal_columns())
    with contextlib.redirect_stdout(stream):
        yield
    if stream.partial:
        stream.out.write(fitted(stream.partial, stream.width))
