"""Files a user names for evalflow to read (a sweep spec, a suite's cases and sidecar, a
documents or rag corpus, a rubric, a ratings file): a regular file, or a link to one.

A named pipe was opened as a file: with no writer, `run` and `plan` of a spec that was
one waited forever, and a suite that was one was "not found" (newcomer F1). Every reader
checks with ``special_file`` where it says what a path is, and opens with ``read_bytes``
or ``read_text``, which never wait on a pipe: a path that is not a regular file is
refused there too (``NotARegularFile``, an OSError, so each reader's "cannot read"
words name it).

Every reader also says the most it reads (``most``): a file past it is refused by its
size before any of it is read (``FileTooLarge``, an OSError too), and never more than one
byte past it is read should it grow meanwhile. A 200 MB field of a ratings file ended
`import-ratings` "evalflow failed ... not a problem with your input" at 1.3 GB, and one of
2,000,000 rows ran past 300 s at 2 GB (newcomers' E2, E3); a rubric, a sidecar, a
documents file and a rag corpus were read whole, however large.
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


MAX_WRITTEN_BYTES = 1 << 20
"""The largest YAML file a person writes that evalflow reads (1 MiB, as a sweep spec): a
suite's sidecar, a judge's rubric (the bundled ones are under 2 KB)."""
MAX_DATA_BYTES = 512 << 20
"""The largest JSONL data file read whole (512 MiB, ~4 times its size in memory): a
suite's cases, its documents file, a rag corpus."""


class FileTooLarge(OSError):
    """A file to read larger than its reader reads (``most`` bytes)."""

    def __init__(self, path: str | Path, size: int, most: int) -> None:
        words = f"is {size:,} bytes; at most {most:,} ({_mib(most)})"
        super().__init__(words)
        self.strerror = words
        self.filename = str(path)
        self.size = size
        self.most = most


def _mib(count: int) -> str:
    return f"{count / 2**20:g} MiB"


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


def read_bytes(path: str | Path, limit: int | None = None, *, most: int | None = None) -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit``). It is opened without
    waiting for a pipe's writer, and refused (``NotARegularFile``) unless it is a
    regular file once open; with ``most``, refused (``FileTooLarge``) when it holds
    more than ``most`` bytes, by its size before it is read."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        status = os.fstat(fd)
        kind = _kind(status.st_mode)
        if kind is not None:
            raise NotARegularFile(kind, path)
        if most is not None:
            if status.st_size > most:
                raise FileTooLarge(path, status.st_size, most)
            limit = most + 1 if limit is None else min(limit, most + 1)
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read() if limit is None else file.read(limit)
    finally:
        os.close(fd)
    if most is not None and len(data) > most:  # it grew since its size was read
        raise FileTooLarge(path, len(data), most)
    return data


def read_text(path: str | Path, encoding: str = "utf-8", *, most: int | None = None) -> str:
    """The text of the regular file ``path`` (``read_bytes``, decoded; ``most`` bytes at
    most), its line ends read as ``Path.read_text`` reads them (``\\r\\n`` and ``\\r``
    as ``\\n``)."""
    data = read_bytes(path, most=most)
    return data.decode(encoding).replace("\r\n", "\n").replace("\r", "\n")
