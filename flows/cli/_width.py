"""The width output is read at, and text fitted to it: each line wider than it wrapped
at its spaces, never inside a word, its further lines indented two past its own indent.
`recommend`'s answer was lines of 240-352 characters at 80 columns. Text that only wraps
to fit (`plan`, `experiments`, `recommend`) wraps where the width is known (a terminal,
or $COLUMNS): into a file or a pipe its lines stay whole, one row a line for grep."""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import sys
import textwrap
from collections.abc import Iterator
from typing import TextIO

from evaluation.wording import TERMINAL_COLUMNS


def fitted(text: str, width: int | None = None) -> str:
    """``text`` with every line over ``width`` (default: ``known_columns``; none known:
    ``text`` as it is) wrapped; a line that fits is left as it is, byte for byte."""
    width = width or known_columns()
    if width is None:
        return text
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


def fitted_command(text: str, command: str, width: int | None = None) -> str:
    """``text``, a line that holds ``command``, as it is where it fits ``width`` (default:
    ``known_columns``; none known: as it is); else the words before the command and
    those after it wrapped (``fitted``), the command between them on lines of its own
    (``command_lines``): wrapped at a space like prose, a resume command pasted back ran
    its first half (`evalflow run spec.yaml` without its `--experiment`). A ``text``
    without the command is ``fitted``."""
    width = width or known_columns()
    if width is None or len(text) <= width:
        return text
    if command not in text:
        return fitted(text, width)
    before, _, after = text.partition(command)
    parts = [fitted(before.rstrip(), width), *command_lines(command, width)]
    parts.append(fitted(after.strip(), width))
    return "\n".join(part for part in parts if part)


def command_lines(command: str, width: int) -> list[str]:
    """``command`` indented two, in lines of at most ``width`` where its words allow,
    each but the last ending in " \\" as a shell continues a line (pasted back, it runs
    whole), further lines indented four; a quoted word is one word."""
    lexer = shlex.shlex(command, posix=False)
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError:  # an unclosed quote: the command as it is
        words = [command]
    lines = [f"  {words[0]}"]
    for word in words[1:]:
        if len(lines[-1]) + len(f" {word} \\") > width:
            lines[-1] += " \\"
            lines.append(f"    {word}")
        else:
            lines[-1] += f" {word}"
    return lines


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
    """Standard output fitted to the terminal's width line by line while inside (none
    known: as it is)."""
    width = known_columns()
    if width is None:
        yield
        return
    stream = FittedLines(sys.stdout, width)
    with contextlib.redirect_stdout(stream):
        yield
    if stream.partial:
        stream.out.write(fitted(stream.partial, stream.width))


def terminal_columns() -> int:
    """The width output is read at (a RAG sweep's retrieval metric was left out at 200
    columns): $COLUMNS where set; else the terminal standard output goes to, or, where
    it goes to a pipe (`| less`: 100 columns in an 80-column terminal wrapped every row),
    the terminal of standard error; else 100 (a file). Never below 60."""
    return known_columns() or max(60, _piped_terminal_columns() or TERMINAL_COLUMNS)


def _piped_terminal_columns() -> int:
    """The width of the terminal standard error goes to, where standard output goes to a
    pipe (a pager's or another command's, shown in that terminal); else 0."""
    import stat

    try:
        piped = stat.S_ISFIFO(os.fstat(sys.stdout.fileno()).st_mode)
        return os.get_terminal_size(sys.stderr.fileno()).columns if piped else 0
    except (OSError, ValueError, AttributeError):  # no descriptor (a capture, a stand-in)
        return 0


def known_columns() -> int | None:
    """The width where it is known: $COLUMNS where set, else standard output's terminal;
    None for a file, a pipe or a capture. Never below 60."""
    import shutil

    given = os.environ.get("COLUMNS", "")
    if given.isdigit() and int(given) > 0:
        return max(60, int(given))
    if getattr(sys.stdout, "isatty", lambda: False)():  # a stand-in may have none
        return max(60, shutil.get_terminal_size((TERMINAL_COLUMNS, 24)).columns)
    return None
