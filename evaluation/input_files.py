"""Files a user names for evalflow to read (a sweep spec, a suite's cases and sidecar, a
documents or rag corpus, a rubric, a ratings file): a regular file, or a link to one.

A named pipe was opened as a file: with no writer, `run` and `plan` of a spec that was
one waited forever, and a suite that was one was "not found" (newcomer F1). Every reader
checks with ``special_file`` where it says what a path is, and opens with ``read_bytes``
or ``read_text``, which never wait on a pipe: a path that is not a regular file is
refused there too (``NotARegularFile``, an OSError, so each reader's "cannot read"
words name it).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class NotARegularFile(OSError):
    """A path to read that is a folder, a named pipe, a device or a socket."""

    def __init__(self, kind: str, path: str | Path) -> None:
        super().__init__(f"is {kind}, not a regular file")
        self.strerror = f"is {kind}, not a regular file"
        self.filename = str(path)
        self.kind = kind


def _kind(mode: int) -> str | None:
    return next((kind for test, kind in _KINDS if test(mode)), None)


def special_file(path: str | Path) -> str | None:
    """What ``path`` is when it exists and is not a regular file nor a folder ("a named
    pipe", "a character device", ...; links followed); ``None`` for a regular file, a
    folder or nothing there (each reader has its own words for those)."""
    try:
        kind = _kind(os.stat(path).st_mode)
    except (OSError, ValueError):
        return None
    return None if kind == "a folder" else kind


def read_bytes(path: str | Path, limit: int | None = None) -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit``). It is opened without
    waiting for a pipe's writer, and refused (``NotARegularFile``) unless it is a
    regular file once open."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        kind = _kind(os.fstat(fd).st_mode)
        if kind is not None:
            raise NotARegularFile(kind, path)
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as file:
            return file.read() if limit is None else file.read(limit)
    finally:
        os.close(fd)


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """The text of the regular file ``path`` (``read_bytes``, decoded), its line ends
    read as ``Path.read_text`` reads them (``\\r\\n`` and ``\\r`` as ``\\n``)."""
    return read_bytes(path).decode(encoding).replace("\r\n", "\n").replace("\r", "\n")
