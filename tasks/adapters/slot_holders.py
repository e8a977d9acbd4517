"""Which run holds which host slot, on disk, so the slots of a run that died come back
at once.

Prefect frees a lease's slot only when the lease expires (60 s at the least, plus the
server's 15 s expiry loop), and never on the embedded server, which runs no expiry
service; its API cannot list a limit's leases either (lease holders are shown for
``tag:`` limits only). So each run appends the leases it takes and gives back to its own
file, which it keeps locked (``flock``) while it lives. The kernel drops the lock when
the process ends, however it ends (``kill -9`` included), so a file another run can lock
belongs to a dead run, and what it still lists are slots nobody will give back.

One folder per Prefect server (its API URL), or per embedded database: the runs that
share a limit's counter share the folder. Lines: ``= LIMIT NAME`` for each host the
run uses (what its spec calls the host whose limit that is: another run calling another
server by the same name is told), ``+ LEASE LIMIT`` after a slot was taken,
``- LEASE`` before it is given back, so a file never lists a slot its run had
already given back (a slot taken by a request the kill cut short may go unlisted: a real
server frees it at lease expiry; see ``HostSlots.open`` for the embedded server). Slots
taken in one write (``HostSlots.reserve``) are listed one line each, ``GRANT/i`` (one
lease of N slots on a shared server, a count on the embedded one), in one append: a
file is never left listing part of a grant. ``Held.grant`` groups them back. The
file's first line notes its process and, after ``run=``, the run in words (a lane
worker's, its run's): a run waiting for slots names who holds them (``holders_of``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from evaluation.run._slot_waits import HOLDING, TAKING

SUFFIX = ".holder"
_HEAD = 8192  # a file's first bytes: its note and its hosts (``uses``) come first


@dataclass(frozen=True)
class Held:
    lease_id: str
    limit: str

    @property
    def grant(self) -> str:
        """The write that took the slot: its lease on a shared server (``GRANT/i`` is
        slot ``i`` of a lease of several)."""
        return self.lease_id.partition("/")[0]


class HolderFile:
    """One run's record of the slots it holds, locked until ``close``."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd
        self._lock = threading.Lock()  # the run's loop and an interrupt's thread
        self._handed_over = False

    @classmethod
    def create(cls, folder: Path, note: str) -> HolderFile:
        folder.mkdir(parents=True, exist_ok=True)
        name = uuid.uuid4().hex
        # Locked under a name no scan looks at, then renamed: a run scanning meanwhile
        # never sees it unlocked (and takes it for a dead run's).
        draft = folder / f"{name}.new"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, f"# {note}\n".encode())
        path = folder / f"{name}{SUFFIX}"
        os.rename(draft, path)
        return cls(path, fd)

    def uses(self, hosts: dict[str, str]) -> None:
        """Record the run's hosts: name -> its limit."""
        os.write(self._fd, "".join(f"= {limit} {name}\n" for name, limit in hosts.items()).encode())

    def took(self, lease_id: str, limit: str) -> None:
        self.took_all([Held(lease_id, limit)])

    def took_all(self, slots: Iterable[Held]) -> None:
        """Slots taken in one write, listed in one append (all or none of them)."""
        os.write(self._fd, "".join(f"+ {s.lease_id} {s.limit}\n" for s in slots).encode())

    def giving_back(self, *lease_ids: str) -> bool:
        """Mark slots given back, before the write that gives them back; False once
        ``hand_over`` ran: the interrupt gave them back, and the caller must not again
        (a count given back twice frees a slot another run holds)."""
        with self._lock:
            if self._handed_over:
                return False
            os.write(self._fd, "".join(f"- {lease_id}\n" for lease_id in lease_ids).encode())
            return True

    def hand_over(self) -> list[Held]:
        """For an interrupt's thread: every slot listed now, marked given back, for it
        to give back; from here on the run gives back nothing itself (``giving_back``).
        Slots the run takes later stay listed for the next run."""
        with self._lock:
            self._handed_over = True
            held = self.held()
            os.write(self._fd, "".join(f"- {h.lease_id}\n" for h in held).encode())
            return held

    def held(self) -> list[Held]:
        return _parse(self.path.read_text())

    def close(self) -> None:
        """Remove the record (everything in it was given back)."""
        with self._lock:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self._close_fd()

    def leave(self) -> None:
        """Unlock the record but keep it: what it lists is for another run to give back."""
        with self._lock:
            self._close_fd()

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, -1  # a write after this fails, never lands in another file
        os.close(fd)


def holders_of(folder: Path, limit: str, *, besides: str = "") -> list[tuple[str, int]]:
    """Who holds slots of ``limit`` as the files in ``folder`` list them, most first:
    each run in words (the ``run=`` of its note: its workers' files count as the run),
    and how many; ``besides``: a run left out (the caller's own). Read without a lock,
    so no run ever waits on it: a dead run's file is named until a run gives its slots
    back (a run waiting for slots does within ``RECLAIM_EVERY_S``)."""
    held: Counter[str] = Counter()
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        try:
            text = path.read_text()
        except OSError:  # given back and removed meanwhile
            continue
        who = _who(text)
        if who != besides and (n := sum(h.limit == limit for h in _parse(text))):
            held[who] += n
    return held.most_common()


def used_by_others(folder: Path, limit: str, mine: HolderFile | None) -> bool:
    """Whether a live run other than ``mine`` (its lane workers count as other runs) uses
    ``limit``'s host, as its file says (``uses``): the host serves that run, whether or
    not its file lists a slot at this moment (a slot's line is written after the write
    that took it, and its give-back's before the write). Its lock is tried, not taken."""
    for path in folder.glob(f"*{SUFFIX}"):
        if mine is not None and path == mine.path:
            continue
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            if limit not in _hosts(os.pread(fd, _HEAD, 0).decode(errors="replace")).values():
                continue
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True  # locked by its run: alive
        finally:
            os.close(fd)
    return False


def run_holders(folder: Path, limit: str, run: str, *, taking: int = 0) -> list[tuple[str, int]]:
    """Who holds slots of ``limit``, as run ``run`` (its label) waiting for one says it:
    its own lanes first, those whose take is under way (``taking``: ``TAKING``) and the
    slots it holds itself (``HOLDING``, its lane workers' too), then the other runs
    (``holders_of``)."""
    held = holders_of(folder, limit)
    own = dict(held).get(run, 0)
    return [
        *([(TAKING, taking)] if taking else []),
        *([(HOLDING, own)] if own else []),
        *((who, n) for who, n in held if who != run),
    ]


def _who(text: str) -> str:
    """The run a holder file is, in words: its note's ``run=``, else its process."""
    note = text.partition("\n")[0].removeprefix("# ")
    before, _, label = note.partition(" run=")
    if label:
        return label
    fields = dict(part.partition("=")[::2] for part in before.split())
    return f"a run (process {fields.get('pid', '?')} on {fields.get('host', '?')})"


def _hosts(text: str) -> dict[str, str]:
    """A record's hosts: name -> limit (``uses``)."""
    hosts = {}
    for line in text.splitlines():
        if line.startswith("= "):
            limit, _, name = line[2:].partition(" ")
            hosts[name] = limit
    return hosts


def _parse(text: str) -> list[Held]:
    held: dict[str, Held] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "+":
            held[parts[1]] = Held(parts[1], parts[2])
        elif len(parts) == 2 and parts[0] == "-":
            held.pop(parts[1], None)
    return list(held.values())


class FolderLock:
    """Held while a run creates its file, and while one looks for live runs and acts on
    "nobody else is here": no run can join between the look and the act."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._fd: int | None = None

    def acquire(self) -> None:
        """Blocks while another run holds the lock."""
        self._folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock
            self._fd = None


@dataclass
class Scan:
    dead: list[HolderFile]  # files of dead runs, now locked by us
    alive: int  # other runs' files still locked by their runs
    alive_hosts: list[dict[str, str]] = field(default_factory=list)  # theirs: name -> limit


def scan(folder: Path, mine: HolderFile | None) -> Scan:
    """Lock the files of dead runs (for the caller to give their slots back and
    ``close``) and count the live runs' files. A file another run is reclaiming counts as
    live."""
    found = Scan([], 0)
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        if mine is not None and path == mine.path:
            continue
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            found.alive += 1
            with contextlib.suppress(OSError):
                found.alive_hosts.append(_hosts(path.read_text()))
            continue
        if not _still_there(path, fd):  # reclaimed and removed since we listed it
            os.close(fd)
            continue
        found.dead.append(HolderFile(path, fd))
    return found


def _still_there(path: Path, fd: int) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False
