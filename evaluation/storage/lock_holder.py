"""Which process holds a SQLite file's write lock: what a command that waited out its
busy timeout names (``db.DatabaseBusy``), so the user knows what to wait for.

SQLite takes its locks as POSIX byte-range locks, which Linux lists in /proc/locks with
the holder's pid: in WAL mode the write lock is byte 120 of the ``-shm`` file
(``WALINDEX_LOCK_OFFSET`` + ``WAL_WRITE_LOCK``), in rollback-journal mode the RESERVED
byte of the database file (``0x40000001``). Elsewhere (no /proc) the holder is unknown.
"""

from __future__ import annotations

import os
from pathlib import Path

from evaluation.redact import redact_argv

WAL_WRITE_BYTE = 120
RESERVED_BYTE = 0x40000001
_CHILD_MARKS = ("multiprocessing", "spawn_main", "forkserver")
"""A process of these words in its command line is a worker of another process (the
record writer, a lane worker): its parent is the command the user knows."""


def lock_holder(database: Path) -> int | None:
    """The pid of the process holding ``database``'s write lock; None where none does or
    it cannot be told."""
    wanted = {_file_id(Path(f"{database}-shm")): WAL_WRITE_BYTE, _file_id(database): RESERVED_BYTE}
    wanted.pop(None, None)
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        words = line.split()
        if "->" in words:  # a process blocked waiting for the lock, not its holder
            continue
        if len(words) < 8 or words[1] != "POSIX" or words[3] != "WRITE":
            continue
        byte = wanted.get(words[5])
        if byte is not None and int(words[6]) <= byte <= _end(words[7]):
            return int(words[4])
    return None


def holder_words(database: Path) -> str:
    """The holder of ``database``'s write lock in words: "process 1234 (evalflow run
    a.yaml)", "this process", or "" where it cannot be told."""
    pid = lock_holder(database)
    if pid is None:
        return ""
    if pid == os.getpid():
        return "this process"
    shown, command = pid, _command(pid)
    for _ in range(3):  # a worker process: the command that started it
        if not any(mark in command for mark in _CHILD_MARKS):
            break
        parent = _parent(shown)
        if parent is None:
            break
        shown, command = parent, _command(parent)
    said = f" ({command})" if command else ""
    return f"process {shown}{said}"


def _file_id(path: Path) -> str | None:
    """``path``'s device and inode as /proc/locks writes them (``fe:00:2155419``)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"


def _end(word: str) -> int:
    return 2**63 if word == "EOF" else int(word)


def _command(pid: int, limit: int = 120) -> str:
    """``pid``'s command line, credentials masked, shortened to ``limit`` characters."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    argv = [part.decode(errors="replace") for part in raw.split(b"\0") if part]
    if argv and Path(argv[0]).name.startswith("python") and len(argv) > 1:
        argv = argv[1:]  # the program Python runs: a module (-m) or a script (evalflow)
    if argv and argv[0] == "-m":
        argv = argv[1:]
    elif argv and not argv[0].startswith("-"):
        argv[0] = Path(argv[0]).name  # /venv/bin/evalflow: evalflow
    text = " ".join(" ".join(redact_argv(argv)).split())  # one line: `-c` code has several
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _parent(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("PPid:"):
            parent = int(line.split()[1])
            return parent if parent > 1 else None
    return None
