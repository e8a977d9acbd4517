"""Running untrusted programs (model-written code) inside a bubblewrap sandbox.

Every run gets new namespaces (user, pid, network, ipc, uts, cgroup): no network, its
own process tree that dies with evalflow (``--die-with-parent``), a read-only view of
the system's ``/usr`` (and the interpreter's prefix), a private size-capped tmpfs as
``/tmp`` and working directory, an empty environment, no capabilities and no further
user namespaces. The home directory, the results database and the working tree are
not mounted at all. Inside the sandbox ``prlimit`` sets CPU seconds, address space,
processes, file size and open files before the program starts; evalflow itself bounds
the wall time and the bytes of output it reads, and kills the whole sandbox past either.
Run as root, the sandbox drops to the unprivileged ``nobody`` user first, since the
kernel does not limit root's processes.

There is no fallback: without a working ``bwrap``, ``Sandbox`` raises
``SandboxUnavailable`` saying how to install it, and nothing runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from evaluation.errors import MetricError

INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`; Fedora: "
    "`dnf install bubblewrap`; Arch: `pacman -S bubblewrap`) and make sure user "
    "namespaces are enabled; evalflow never runs model-written code outside a sandbox"
)
NOBODY = 65534


class SandboxUnavailable(MetricError):
    """bubblewrap is missing or cannot create its namespaces on this machine."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed run."""

    cpu_s: int = 10
    wall_s: float = 20.0
    memory_bytes: int = 512 * 2**20  # address space per process
    processes: int = 16  # processes and threads in the sandbox, the first included
    output_bytes: int = 2**20  # stdout and stderr together
    file_bytes: int = 16 * 2**20  # per file written
    tmpfs_bytes: int = 32 * 2**20  # the whole private /tmp
    open_files: int = 64


@dataclass(frozen=True)
class RunResult:
    """What a sandboxed run did. ``killed`` names the limit that ended it, if any:
    "wall time", "output", or a signal the kernel sent (e.g. SIGXCPU for CPU time)."""

    exit_code: int
    output: bytes
    wall_s: float
    killed: str | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.killed is None


def _user_args(as_root: bool) -> dict[str, object]:
    """Popen arguments that run the sandbox as ``nobody`` when evalflow runs as root
    (set in C between fork and exec: safe with threads, unlike ``preexec_fn``)."""
    return {"user": NOBODY, "group": NOBODY, "extra_groups": []} if as_root else {}


class Sandbox:
    """A bubblewrap sandbox for one kind of program. ``python`` is the interpreter that
    runs inside (default: /usr/bin/python3, else this interpreter's base installation).
    Construction checks that the sandbox really works and raises SandboxUnavailable if
    not."""

    def __init__(self, *, python: str | None = None, bwrap: str | None = None) -> None:
        self.bwrap = bwrap or shutil.which("bwrap")
        if self.bwrap is None:
            raise SandboxUnavailable(
                f"cannot run code: bubblewrap (bwrap) is not found; {INSTALL_HINT}"
            )
        self.prlimit = shutil.which("prlimit", path="/usr/bin:/bin")
        if self.prlimit is None:
            raise SandboxUnavailable("cannot run code: prlimit (util-linux) is not in /usr/bin")
        self.python = python or _default_python()
        self._as_root = os.geteuid() == 0
        _probe(self)

    def mounts(self) -> list[str]:
        """The bwrap arguments that build the file system view."""
        args = ["--ro-bind", "/usr", "/usr"]
        for name in ("bin", "lib", "lib64", "sbin"):
            path = Path("/") / name
            if path.is_symlink():
                args += ["--symlink", os.readlink(path), str(path)]
            elif path.is_dir():
                args += ["--ro-bind", str(path), str(path)]
        prefix = Path(self.python).resolve().parent.parent
        if not str(prefix).startswith("/usr"):
            args += ["--ro-bind", str(prefix), str(prefix)]
        return args

    def command(self, argv: list[str], limits: Limits) -> list[str]:
        return [
            self.bwrap,
            "--unshare-all",
            "--unshare-user",
            "--disable-userns",
            "--die-with-parent",
            "--new-session",
            *self.mounts(),
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--size",
            str(limits.tmpfs_bytes),
            "--tmpfs",
            "/tmp",
            "--chdir",
            "/tmp",
            "--clearenv",
            "--setenv",
            "PATH",
            "/usr/bin:/bin",
            "--setenv",
            "HOME",
            "/tmp",
            "--setenv",
            "LANG",
            "C.UTF-8",
            "--",
            self.prlimit,
            f"--cpu={limits.cpu_s}:{limits.cpu_s + 1}",  # SIGXCPU first, SIGKILL a second later
            f"--as={limits.memory_bytes}",
            f"--nproc={limits.processes}",
            f"--fsize={limits.file_bytes}",
            f"--nofile={limits.open_files}",
            "--core=0",
            "--",
            *argv,
        ]

    def run(
        self, argv: list[str], *, stdin: bytes = b"", limits: Limits | None = None
    ) -> RunResult:
        """Run ``argv`` in the sandbox, feeding ``stdin``; never raises for anything the
        program does."""
        limits = limits or Limits()
        started = time.perf_counter()
        proc = subprocess.Popen(
            self.command(argv, limits),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **_user_args(self._as_root),
        )
        killed: list[str] = []

        def kill(reason: str) -> None:
            if not killed:
                killed.append(reason)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(limits.wall_s, kill, args=("wall time",))
        timer.start()
        try:
            try:
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(stdin)
                proc.stdin.close()
            except BrokenPipeError:
                pass
            output = proc.stdout.read(limits.output_bytes + 1)
            if len(output) > limits.output_bytes:
                kill("output")
                output = output[: limits.output_bytes]
            proc.stdout.close()
            code = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                kill("wall time")
                proc.wait()
        if not killed and code < 0:
            killed.append(signal.Signals(-code).name)
        elif not killed and code >= 128 and code - 128 in _KERNEL_KILLS:
            killed.append(_KERNEL_KILLS[code - 128])  # bwrap's init reports the child's signal
        return RunResult(code, output, time.perf_counter() - started, killed[0] if killed else None)


_KERNEL_KILLS = {
    signal.SIGXCPU.value: "SIGXCPU",
    signal.SIGXFSZ.value: "SIGXFSZ",
    signal.SIGKILL.value: "SIGKILL",
    signal.SIGSEGV.value: "SIGSEGV",
}


def _default_python() -> str:
    if os.access("/usr/bin/python3", os.X_OK):
        return "/usr/bin/python3"
    return str(Path(sys.base_prefix) / "bin" / "python3")


@cache
def _probe_once(bwrap: str, python: str, as_root: bool, command: tuple[str, ...]) -> str | None:
    try:
        done = subprocess.run(
            list(command),
            capture_output=True,
            timeout=30,
            **_user_args(as_root),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode != 0 or done.stdout.strip() != b"sandboxed":
        return (done.stderr or done.stdout).decode(errors="replace").strip() or "no output"
    return None


def _probe(sandbox: Sandbox) -> None:
    command = sandbox.command([sandbox.python, "-I", "-S", "-c", "print('sandboxed')"], Limits())
    problem = _probe_once(sandbox.bwrap, sandbox.python, sandbox._as_root, tuple(command))
    if problem is not None:
        raise SandboxUnavailable(
            f"cannot run code: bubblewrap ({sandbox.bwrap}) failed to start a sandbox "
            f"({problem}); {INSTALL_HINT}"
        )
