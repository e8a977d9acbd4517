"""A host's slots held across every evalflow process on this machine.

Prefect's concurrency limits hold a host's slots among the runs that share a Prefect
server (and a Prefect home, ``PREFECT_HOME``, where the embedded server keeps its
database). Two runs with different Prefect homes on one machine each had their own
limit: 8 requests open at a 4-slot host. So each model call also holds one of the host's
slots here: a lock file per slot, ``<lock dir>/<hash of the host URL>/slot-<i>``, taken
with ``flock`` for the HTTP call only. The kernel drops a lock when its process ends,
however it ends (``kill -9`` included), so a dead run never keeps a slot. Runs on
different machines share nothing here: for them the slots hold only through one shared
Prefect server.

Runs declaring different slot counts for one URL share the first slots: at most the
largest count is open at once. The URL is compared as written (scheme, host and port,
lower-cased): ``localhost`` and ``127.0.0.1`` are two hosts to this lock.
The directory is ``$EVALFLOW_SLOT_LOCK_DIR``, else ``evalflow-host-slots`` in the system's
temporary directory (shared by every user; the files are created readable by all, and a
read-only descriptor is enough for ``flock``).

``machine_slot_readings`` reads them back for the metrics endpoint without a Prefect
server: each host's slot files and how many are locked now, from ``/proc/locks`` (no
lock is taken to look, so no run ever waits on the reader).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import random
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

from evaluation.backends._sending import park, sending_stopped, waiting_for_slot

LOCK_DIR_ENV = "EVALFLOW_SLOT_LOCK_DIR"
POLL_S = 0.02  # while another process holds every slot: how often to look again


def lock_dir() -> Path:
    return Path(os.environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / "evalflow-host-slots")


def host_key(url: str) -> str:
    """The host a URL names, as this lock compares hosts: scheme://host:port."""
    parts = urlsplit(url.strip())
    scheme = (parts.scheme or "http").lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


LIMIT_PREFIX = "ollama-host-"


def host_limit_name(url: str) -> str:
    """The Prefect global concurrency limit that caps requests in flight to the host at
    ``url``: named after what the host is, its address (``ollama-host-127.0.0.1-11434``),
    not what a spec calls it. Two specs calling different servers by one name (every doc
    example's ``llama-cpp``) shared one limit and one slot count; two calling one server
    by two names did not share it. The address is compared as ``host_key`` compares it,
    as the machine's own slot locks do (``https`` keeps a suffix: a second server there)."""
    scheme, _, address = host_key(url).partition("://")
    hostname, _, port = address.rpartition(":")
    name = re.sub(r"[^a-z0-9.-]+", "-", hostname).strip("-.") or "host"
    return f"{LIMIT_PREFIX}{name}-{port}" + ("-https" if scheme == "https" else "")


class MachineSlots:
    """The ``slots`` lock files of one host URL, opened once per backend. Its own
    holders are tracked here (``flock`` on a descriptor already locked through it would
    succeed again); everyone else's, other processes' included, by the lock.

    A take tries the slots this process gave back first, the latest first: most often
    still free. From a random start alone, a lane worker of ``run --workers 4`` at 64
    slots tried 7-8 slots a take, 6-7 of them held by the other workers (~7% of its CPU
    in failed ``flock`` calls on a 16-core machine, benchmarks/perf/README.md)."""

    def __init__(self, url: str, slots: int) -> None:
        key = host_key(url)
        folder = lock_dir() / hashlib.sha256(key.encode()).hexdigest()[:16]
        folder.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # shared with other users: sticky, like /tmp
            os.chmod(folder.parent, 0o1777)
            os.chmod(folder, 0o1777)
        with contextlib.suppress(OSError):
            (folder / "host").write_text(key + "\n")
        self._fds = [_open(folder / f"slot-{i}") for i in range(slots)]
        self._held: set[int] = set()
        self._given_back: list[int] = []  # by this process, the latest last

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Hold one of the host's slots for the block: wait while all are taken."""
        index = await self._take()
        try:
            yield
        finally:
            fcntl.flock(self._fds[index], fcntl.LOCK_UN)
            self._held.discard(index)
            self._given_back.append(index)

    async def _take(self) -> int:
        index = self._try_take()
        if index is not None:
            return index
        # Every slot is held, by other processes (this one's lanes are held to the slots
        # by the run's own limit already): look again shortly. Nothing is on the wire
        # meanwhile, and a stop parks the call here (``evaluation.backends._sending``).
        with waiting_for_slot():
            while True:
                await asyncio.sleep(POLL_S)
                if sending_stopped():
                    await park()
                index = self._try_take()
                if index is not None:
                    return index

    def _try_take(self) -> int | None:
        """A slot free now, held here from now on; None when every one is held."""
        while self._given_back:  # one a take at least: never longer than the holders
            index = self._given_back.pop()
            if index not in self._held and self._lock(index):
                return index
        # from a random slot on, so runs do not all queue on slot 0 (a shuffled list of
        # the free slots cost ~0.1 ms a call at 64 slots: 10% of the lanes' CPU)
        count = len(self._fds)
        first = random.randrange(count)
        for step in range(count):
            index = (first + step) % count
            if index not in self._held and self._lock(index):
                return index
        return None

    def _lock(self, index: int) -> bool:
        """Whether slot ``index`` is now held here (False: another process holds it)."""
        try:
            fcntl.flock(self._fds[index], fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self._held.add(index)
        return True

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []


def _open(path: Path) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    except PermissionError:  # another user's file: reading is enough to lock it
        return os.open(path, os.O_RDONLY)


def machine_slot_readings(locks: Path = Path("/proc/locks")) -> list[tuple[str, int, int]] | None:
    """Each host this machine's runs called, as ``(host_limit_name, slots, in flight)``:
    its slot files (the largest ``slots`` a run here declared for it) and those a
    process holds now, whichever process. None where the kernel does not list its locks
    (not Linux): not measured, rather than 0 in flight."""
    try:
        held = {
            fields[5]
            for fields in (line.split() for line in locks.read_text().splitlines())
            if len(fields) > 5 and fields[1] == "FLOCK"
        }
    except OSError:
        return None
    readings = []
    for folder in sorted(lock_dir().glob("*/")):
        try:
            key = (folder / "host").read_text().strip()
            files = [f.stat() for f in folder.glob("slot-*")]
        except OSError:
            continue
        if not files:
            continue
        taken = sum(
            f"{os.major(s.st_dev):02x}:{os.minor(s.st_dev):02x}:{s.st_ino}" in held for s in files
        )
        readings.append((host_limit_name(key), len(files), taken))
    return readings
