"""Runs on this machine that share a host's slots take turns (``SlotTurns``).

A lane keeps its slot from one chunk to its next (``HostSlots.park``): a run alone on a
host writes nothing to the Prefect server between its chunks. With two runs on one host
the first kept its slots for its whole run, and the second's lanes, finding the limit
full, gave up after ``first_request_timeout_s``: a 1-slot host, 8 s, the second run
started while the first ran: 3 of its 36 generations failed ``SlotUnavailable``
(ncmon-9: 10). So a run whose lanes wait for a slot of a host the limit refused marks
the wait in the slot registry's folder (``turns/<limit>/<run>-<id>.wait``, locked while
it waits, as a holder file is while its run lives: a dead run's mark is removed by the
first run that finds it). A run that has held a slot of that host ``TURN_S`` or longer,
and holds more than half of it, gives the slot back between two requests or at a chunk's
end (``HostSlots.turn_due``, ``hand_over``), not at a chunk's end only: one lane's whole
run can be one chunk. It says so in the limit's ``handed-over`` file, which the waiting
lanes watch: they ask the limit at once, not at their next look up to a second later. The
waiting run takes the slot and removes its mark once none of its lanes waits; the first
run's lanes, once refused, mark their wait in turn. With nobody waiting a request's turn
check reads a directory that is not there (no write).

The folder is the registry's: the runs sharing a Prefect server's limits from this
machine. A run on another machine sharing the server is not seen here.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import uuid
from pathlib import Path

TURNS = "turns"
MARK = ".wait"
HANDED_OVER = "handed-over"
_HANDED_OVER_MAX = 4096  # the file's bytes (one a hand-over) before it starts again


class SlotTurns:
    """One process's waits for slots and hand-overs, in a registry's folder; ``run``: the
    run in words (its lane workers' marks are its own: a run does not hand its slots to
    itself)."""

    def __init__(self, folder: Path, run: str) -> None:
        self._folder = folder / TURNS
        self._run = hashlib.sha256(run.encode()).hexdigest()[:12] if run else uuid.uuid4().hex
        self._marks: dict[str, tuple[Path, int]] = {}  # limit -> this process's mark

    def wait_starts(self, limit: str) -> None:
        """Mark that this run's lanes wait for a slot of ``limit`` (once, until
        ``wait_ends``). Locked under a name no reader looks at, then renamed: a reader
        never finds it unlocked (and takes it for a dead run's)."""
        if limit in self._marks:
            return
        folder = self._folder / limit
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{self._run}-{uuid.uuid4().hex[:8]}"
        draft = folder / f"{name}.new"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path = folder / f"{name}{MARK}"
        os.rename(draft, path)
        self._marks[limit] = (path, fd)

    def marked(self, limit: str) -> bool:
        """Whether this process marked a wait for ``limit`` (``wait_starts``)."""
        return limit in self._marks

    def wait_ends(self, limit: str) -> None:
        """No lane of this process waits for ``limit`` now."""
        mark = self._marks.pop(limit, None)
        if mark is not None:
            path, fd = mark
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            os.close(fd)

    def close(self) -> None:
        for limit in list(self._marks):
            self.wait_ends(limit)

    def others_wait(self, limit: str) -> bool:
        """Whether another run's lanes wait for a slot of ``limit`` (a live mark of
        theirs; a dead run's is removed)."""
        folder = self._folder / limit
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return False
        return any(
            name.endswith(MARK) and not name.startswith(self._run) and _alive(folder / name)
            for name in names
        )

    def handed_over(self, limit: str) -> None:
        """Say that a slot of ``limit`` went back to the limit for a waiting run."""
        path = self._folder / limit / HANDED_OVER
        with contextlib.suppress(FileNotFoundError):  # nobody waits any more
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                if os.fstat(fd).st_size >= _HANDED_OVER_MAX:
                    os.ftruncate(fd, 0)
                os.write(fd, b".")
            finally:
                os.close(fd)

    def handovers(self, limit: str) -> tuple[int, int]:
        """What changes when a slot of ``limit`` is handed over (``handed_over``)."""
        try:
            seen = os.stat(self._folder / limit / HANDED_OVER)
        except FileNotFoundError:
            return (0, 0)
        return (seen.st_mtime_ns, seen.st_size)


def _alive(path: Path) -> bool:
    """Whether the run that marked ``path`` still waits (holds its lock); a dead run's
    mark is removed."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return False
