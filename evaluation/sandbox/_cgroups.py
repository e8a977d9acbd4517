"""A control group per sandbox: memory, processes and CPU time bounded for the sandbox as a
whole (every process in it, bubblewrap's own included), not per process.

Where evalflow may create cgroups (as root, or with a delegated subtree), each run gets a
new group below evalflow's own one: cgroup v1 (``memory``, ``pids`` and ``cpuacct``
hierarchies) or cgroup v2 (one unified hierarchy with the ``memory`` and ``pids``
controllers enabled). Its limits are the memory bytes (swap included where the kernel
accounts it; tmpfs files count too), the number of tasks, and the CPU time, which the
kernel only counts: ``SandboxGroup.cpu_s`` reads it and the caller kills the sandbox past
its budget. The group is removed after the run; groups left by an evalflow process that was
killed are removed by the next ``Cgroups.detect`` in the same parent group.

Where none can be created, ``Cgroups.detect`` returns None and the sandbox falls back on
per-process rlimits (see ``_bubblewrap``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path

PREFIX = "evalflow-sandbox-"
V1_CONTROLLERS = ("memory", "pids", "cpuacct")


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, file system type, super options) of each cgroup mount."""
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            fstype, _source, options = [*right.split(" "), "", ""][:3]
            if fstype in ("cgroup", "cgroup2"):
                found.append((left.split(" ")[4], fstype, set(options.split(","))))
    return found


def _own_paths() -> dict[str, str]:
    """This process's group in each hierarchy: controller name (or "" for v2) -> path."""
    paths = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                paths[name] = path
    return paths


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Cgroups:
    """Where this process may create per-sandbox groups: ``parents`` (one directory per
    v1 hierarchy, or the one v2 directory) and the version."""

    version: int
    parents: tuple[Path, ...]

    @property
    def name(self) -> str:
        return f"cgroup v{self.version}"

    @classmethod
    def detect(cls) -> Cgroups | None:
        """Per-sandbox groups where they can be created and limited here, else None (a
        trial group is created, limited and removed)."""
        mounts, own = _mounts(), _own_paths()
        unified = [m for m in mounts if m[1] == "cgroup2" and m[0] == "/sys/fs/cgroup"]
        candidates: list[Cgroups] = []
        v1 = {c: m[0] for m in mounts if m[1] == "cgroup" for c in V1_CONTROLLERS if c in m[2]}
        if all(c in v1 and c in own for c in V1_CONTROLLERS):
            parents = tuple(Path(v1[c] + own[c]) for c in V1_CONTROLLERS)
            candidates.append(cls(1, parents))
        if unified and "" in own:
            candidates.append(cls(2, (Path(unified[0][0] + own[""]),)))
        for candidate in candidates:
            candidate.remove_stale()
            try:
                candidate.create(2**26, 4).remove()
            except OSError:
                continue
            return candidate
        return None

    def create(self, memory_bytes: int, tasks: int) -> SandboxGroup:
        """A new, empty group with these limits (OSError if the kernel refuses)."""
        name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
        group = SandboxGroup(self.version, tuple(p / name for p in self.parents))
        try:
            for directory in group.directories:
                directory.mkdir()
            group.limit(memory_bytes, tasks)
        except OSError:
            group.remove()
            raise
        return group

    def remove_stale(self) -> None:
        """Remove the groups of evalflow processes that are gone (killed before cleaning)."""
        for parent in self.parents:
            with contextlib.suppress(OSError):
                for directory in parent.glob(PREFIX + "*"):
                    owner = directory.name[len(PREFIX) :].split("-", 1)[0]
                    if owner.isdigit() and not _alive(int(owner)):
                        SandboxGroup(self.version, (directory,)).remove()


@dataclass(frozen=True)
class SandboxGroup:
    """The group of one sandboxed run (one directory per v1 hierarchy, or one for v2)."""

    version: int
    directories: tuple[Path, ...]

    def _file(self, controller: str, name: str) -> Path:
        if self.version == 2:
            return self.directories[0] / name
        return self.directories[V1_CONTROLLERS.index(controller)] / name

    def limit(self, memory_bytes: int, tasks: int) -> None:
        if self.version == 1:
            self._file("memory", "memory.limit_in_bytes").write_text(str(memory_bytes))
            swap = self._file("memory", "memory.memsw.limit_in_bytes")
            if swap.exists():  # memory and swap together: no swapping past the limit
                swap.write_text(str(memory_bytes))
        else:
            self._file("memory", "memory.max").write_text(str(memory_bytes))
            swap = self._file("memory", "memory.swap.max")
            if swap.exists():
                swap.write_text("0")
        self._file("pids", "pids.max").write_text(str(tasks))

    def add(self, pid: int) -> None:
        """Move ``pid`` into the group (its later children are born in it)."""
        for directory in self.directories:
            (directory / "cgroup.procs").write_text(str(pid))

    def cpu_s(self) -> float:
        """CPU time used by every process that ran in the group."""
        try:
            if self.version == 1:
                return int(self._file("cpuacct", "cpuacct.usage").read_text()) / 1e9
            stat = self._file("cpu", "cpu.stat").read_text().split()
            return int(stat[stat.index("usage_usec") + 1]) / 1e6
        except (OSError, ValueError):
            return 0.0

    def oom_kills(self) -> int:
        """How many processes the kernel killed for the group's memory limit."""
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        try:
            fields = self._file("memory", name).read_text().split()
            return int(fields[fields.index("oom_kill") + 1])
        except (OSError, ValueError, IndexError):
            return 0

    def pids(self) -> list[int]:
        found: set[int] = set()
        for directory in self.directories:
            with contextlib.suppress(OSError, ValueError):
                found.update(int(p) for p in (directory / "cgroup.procs").read_text().split())
        return sorted(found)

    def kill(self) -> None:
        """SIGKILL every process in the group."""
        kill_file = self.directories[0] / "cgroup.kill"
        if self.version == 2 and kill_file.exists():
            with contextlib.suppress(OSError):
                kill_file.write_text("1")
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def remove(self, wait_s: float = 5.0) -> None:
        """Kill what is left in the group, then remove it (a group with processes cannot
        be removed; dying processes leave it within milliseconds). Another user's group
        (a root evalflow's, seen by one run as another user) is left at once."""
        deadline = time.monotonic() + wait_s
        for directory in self.directories:
            while directory.exists():
                try:
                    directory.rmdir()
                except (FileNotFoundError, PermissionError):
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    self.kill()
                    time.sleep(0.01)
