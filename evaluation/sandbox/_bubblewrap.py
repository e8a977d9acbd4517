"""Running untrusted programs (model-written code) inside a bubblewrap sandbox.

Every run gets new namespaces (user, pid, network, ipc, uts, cgroup): no network, its
own process tree that dies with evalflow (``--die-with-parent``; ``/proc`` shows only the
sandbox's processes). The file system is a read-only root holding only a read-only
``/usr`` (and the interpreter's prefix), ``/proc`` and a minimal read-only ``/dev``; the
only writable places are a size-capped tmpfs ``/tmp`` (also the working directory) and a
small size-capped ``/dev/shm``. The home directory, ``/etc``, the results database and the
working tree are not mounted at all. bwrap itself starts with an empty environment and no
file descriptors but stdin, stdout and stderr (and, when asked, the write end of a report
pipe, which bwrap's init closes: only the first process holds it), so nothing of
evalflow's environment is readable inside, not even through ``/proc/1/environ`` (bwrap's
init). A seccomp filter
(``_seccomp``) denies ptrace and the other calls that reach another process; no
capabilities and no further user namespaces. Run as root, the sandbox drops to the
unprivileged ``nobody`` user first, since the kernel does not limit root's processes.
bwrap's init (PID 1 inside) is kept rather than ``--as-pid-1``, under which the program
itself would be PID 1 and ignore default-action signals such as SIGXCPU; the init is out
of the program's reach (ptrace is denied, and the kernel drops signals sent to a
namespace's init from inside it) and, in the control group, within the sandbox's limits.

Limits for the whole sandbox come from a control group per run (``_cgroups``: memory,
tasks, and CPU time, which evalflow watches and kills at) where one can be created; inside
the sandbox ``prlimit`` also sets per-process CPU seconds, address space, processes, file
size and open files. Without a control group the per-process limits are the bound: the
address space and process count are then lowered so that their product bounds the
sandbox's memory (``Limits.fallback``). evalflow bounds the wall time and the bytes of
output it reads, and kills the whole sandbox past any limit. ``Sandbox.enforcement`` says
which bound applies.

There is no fallback without a sandbox: without a working ``bwrap`` (or on a machine the
seccomp filter is not written for), ``Sandbox`` raises ``SandboxUnavailable`` saying why,
and nothing runs.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from evaluation.errors import MetricError
from evaluation.sandbox._cgroups import Cgroups, SandboxGroup
from evaluation.sandbox._seccomp import UnsupportedArchitecture, filter_program

INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`; Fedora: "
    "`dnf install bubblewrap`; Arch: `pacman -S bubblewrap`) and make sure user "
    "namespaces are enabled; evalflow never runs model-written code outside a sandbox"
)
NOBODY = 65534
RLIMITS = "rlimits"  # ``Sandbox.enforcement`` without a control group
WATCH_INTERVAL_S = 0.05  # how often the wall clock and the sandbox's CPU time are checked
# Waits until the parent has moved it into the sandbox's control group (then writes a line
# on stdin), then becomes bwrap: every process of the sandbox is born inside the group.
# (sh exports PWD of its own accord: unset, bwrap's environment stays empty.)
JOIN_THEN_EXEC = 'read -r go && unset PWD && exec "$@"'


class SandboxUnavailable(MetricError):
    """bubblewrap is missing or cannot create its namespaces on this machine."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed run. Where a control group holds the sandbox,
    memory, processes and CPU time bound the sandbox as a whole (and each process too);
    without one, see ``fallback``."""

    cpu_s: int = 10
    wall_s: float = 20.0
    memory_bytes: int = 512 * 2**20  # the whole sandbox; and each process's address space
    processes: int = 16  # processes and threads, the first included
    output_bytes: int = 2**20  # stdout and stderr together, and the report pipe (if any)
    file_bytes: int = 16 * 2**20  # per file written
    tmpfs_bytes: int = 32 * 2**20  # the whole private /tmp
    shm_bytes: int = 2**20  # the whole /dev/shm; nothing else is writable
    open_files: int = 64
    fallback_processes: int = 4  # without a control group: at most this many processes

    def fallback(self) -> Limits:
        """The per-process limits that bound a sandbox without a control group: fewer
        processes, each with half the address space, so that all of them together hold
        at most twice ``memory_bytes`` (and use at most that many times ``cpu_s``)."""
        processes = min(self.processes, self.fallback_processes)
        return replace(self, processes=processes, memory_bytes=self.memory_bytes // 2)

    def describe(self, enforcement: str) -> str:
        """What bounds the whole sandbox, in words (for a run's details)."""
        mib = self.memory_bytes // 2**20
        if enforcement == RLIMITS:
            low = self.fallback()
            return (
                f"rlimits (no cgroup): {low.processes} processes x {low.memory_bytes // 2**20}"
                f" MiB address space, {self.cpu_s} s CPU each"
            )
        return f"{enforcement}: {mib} MiB, {self.processes} processes, {self.cpu_s} s CPU"


@dataclass(frozen=True)
class RunResult:
    """What a sandboxed run did. ``killed`` names the limit that ended it, if any:
    "wall time", "output", "CPU time" (the sandbox's, from its control group), "memory"
    (the kernel killed a process at the sandbox's memory limit), or a signal the kernel
    sent (e.g. SIGXCPU for a process's CPU time). ``cpu_s`` is the whole sandbox's CPU
    time where a control group counted it. ``output`` is stdout and stderr together."""

    exit_code: int
    output: bytes
    wall_s: float
    killed: str | None = None
    cpu_s: float | None = None
    report: bytes = b""  # what the first process wrote on its report pipe (``run(report=True)``)

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
    ``use_cgroups=False`` forces the per-process fallback (for tests and comparisons).
    Construction checks that the sandbox really works and raises SandboxUnavailable if
    not."""

    def __init__(
        self, *, python: str | None = None, bwrap: str | None = None, use_cgroups: bool = True
    ) -> None:
        self.bwrap = bwrap or shutil.which("bwrap")
        if self.bwrap is None:
            raise SandboxUnavailable(
                f"cannot run code: bubblewrap (bwrap) is not found; {INSTALL_HINT}"
            )
        self.bwrap = os.path.abspath(self.bwrap)  # bwrap starts with no PATH
        self.prlimit = shutil.which("prlimit", path="/usr/bin:/bin")
        self.shell = shutil.which("sh", path="/usr/bin:/bin")
        if self.prlimit is None or self.shell is None:
            raise SandboxUnavailable(
                "cannot run code: prlimit (util-linux) or sh is not in /usr/bin"
            )
        try:
            self.seccomp = filter_program()
        except UnsupportedArchitecture as exc:
            raise SandboxUnavailable(f"cannot run code: {exc}") from exc
        self.python = python or _default_python()
        self._as_root = os.geteuid() == 0
        self.cgroups = Cgroups.detect() if use_cgroups else None
        _probe(self)

    @property
    def enforcement(self) -> str:
        """What bounds the sandbox as a whole: "cgroup v1", "cgroup v2" or "rlimits"."""
        return self.cgroups.name if self.cgroups else RLIMITS

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

    def command(self, argv: list[str], limits: Limits, seccomp_fd: int) -> list[str]:
        per_process = limits if self.cgroups else limits.fallback()
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
            str(limits.shm_bytes),
            "--tmpfs",
            "/dev/shm",
            "--size",
            str(limits.tmpfs_bytes),
            "--tmpfs",
            "/tmp",
            "--remount-ro",
            "/dev",
            "--remount-ro",
            "/",
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
            # glibc reserves 64 MiB of address space per thread's arena: with an address
            # space limit, threads would run out long before memory does
            "--setenv",
            "MALLOC_ARENA_MAX",
            "2",
            "--seccomp",
            str(seccomp_fd),
            "--",
            self.prlimit,
            f"--cpu={limits.cpu_s}:{limits.cpu_s + 1}",  # SIGXCPU first, SIGKILL a second later
            f"--as={per_process.memory_bytes}",
            f"--nproc={per_process.processes}",
            f"--fsize={limits.file_bytes}",
            f"--nofile={limits.open_files}",
            "--core=0",
            "--",
            *argv,
        ]

    def run(
        self,
        argv: list[str],
        *,
        stdin: bytes = b"",
        limits: Limits | None = None,
        report: bool = False,
    ) -> RunResult:
        """Run ``argv`` in the sandbox, feeding ``stdin``; never raises for anything the
        program does. With ``report``, the sandbox's first process also gets the write end
        of a pipe of its own, its descriptor's number appended to ``argv``: what it writes
        there is ``RunResult.report``. No other process of the sandbox inherits it unless
        the first process passes it on (bwrap's init closes it)."""
        limits = limits or Limits()
        group = self._new_group(limits)
        report_fd: int | None = None
        try:
            seccomp_fd = self._seccomp_pipe()
            passed = [seccomp_fd]
            if report:
                report_fd, writer = os.pipe()
                passed.append(writer)
                argv = [*argv, str(writer)]
            command = self.command(argv, limits, seccomp_fd)
            if group is not None:
                command = [self.shell, "-c", JOIN_THEN_EXEC, "sh", *command]
                stdin = b"go\n" + stdin
            started = time.perf_counter()
            try:
                proc = subprocess.Popen(
                    command,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    env={},  # nothing of evalflow's environment, not even for bwrap's init
                    cwd="/",
                    pass_fds=passed,
                    start_new_session=True,
                    **_user_args(self._as_root),
                )
            finally:
                for fd in passed:  # the sandbox's own now: the report's end is its EOF
                    os.close(fd)
            return self._watch(proc, group, stdin, limits, started, report_fd)
        finally:
            if report_fd is not None:
                os.close(report_fd)
            if group is not None:
                group.remove()

    def _seccomp_pipe(self) -> int:
        """A pipe's read end holding the seccomp filter, for ``bwrap --seccomp``."""
        reader, writer = os.pipe()
        try:
            os.write(writer, self.seccomp)  # a few hundred bytes: within the pipe's buffer
        finally:
            os.close(writer)
        return reader

    def _new_group(self, limits: Limits) -> SandboxGroup | None:
        if self.cgroups is None:
            return None
        try:  # bwrap's own two processes are in the group too
            return self.cgroups.create(limits.memory_bytes, limits.processes + 2)
        except OSError as exc:
            raise SandboxUnavailable(
                f"cannot run code: the sandbox's {self.enforcement} group could not be "
                f"created ({exc})"
            ) from exc

    def _watch(
        self,
        proc: subprocess.Popen[bytes],
        group: SandboxGroup | None,
        stdin: bytes,
        limits: Limits,
        started: float,
        report_fd: int | None,
    ) -> RunResult:
        killed: list[str] = []
        done = threading.Event()

        def kill(reason: str) -> None:
            if not killed:
                killed.append(reason)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            if group is not None:
                group.kill()

        def watch() -> None:
            deadline = started + limits.wall_s
            while not done.wait(WATCH_INTERVAL_S):
                if time.perf_counter() > deadline:
                    kill("wall time")
                elif group is not None and group.cpu_s() > limits.cpu_s:
                    kill("CPU time")

        if group is not None:
            try:
                group.add(proc.pid)
            except OSError as exc:
                kill("setup")
                proc.communicate()
                raise SandboxUnavailable(
                    f"cannot run code: could not join the sandbox's {self.enforcement} "
                    f"group ({exc})"
                ) from exc
        watcher = threading.Thread(target=watch, name="sandbox-watch", daemon=True)
        watcher.start()
        try:
            try:
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(stdin)
                proc.stdin.close()
            except BrokenPipeError:
                pass
            pipes = [proc.stdout.fileno()] + ([] if report_fd is None else [report_fd])
            (output, *reported), over = _read_until_closed(pipes, limits.output_bytes)
            if over:
                kill("output")
            proc.stdout.close()
            code = proc.wait()
        finally:
            done.set()
            watcher.join()
            if proc.poll() is None:
                kill("wall time")
                proc.wait()
        cpu = group.cpu_s() if group is not None else None
        if not killed and group is not None and code != 0 and group.oom_kills():
            killed.append("memory")
        if not killed and code < 0:
            killed.append(signal.Signals(-code).name)
        elif not killed and code >= 128 and code - 128 in _KERNEL_KILLS:
            killed.append(_KERNEL_KILLS[code - 128])  # bwrap's init reports the child's signal
        wall = time.perf_counter() - started
        report = reported[0] if reported else b""
        return RunResult(code, output, wall, killed[0] if killed else None, cpu, report)


def _read_until_closed(pipes: list[int], limit: int) -> tuple[list[bytes], bool]:
    """What was written on each pipe until every writer closed it; or, as soon as they
    hold more than ``limit`` bytes together, what they held then (cut to ``limit`` bytes
    together) and True."""
    read = {fd: bytearray() for fd in pipes}
    total = 0
    with selectors.DefaultSelector() as selector:
        for fd in pipes:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            for key, _ in selector.select():
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                read[key.fd] += chunk[: max(0, limit - total)]
                total += len(chunk)
                if total > limit:
                    return [bytes(read[fd]) for fd in pipes], True
    return [bytes(read[fd]) for fd in pipes], False


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


# (bwrap, python, as root, enforcement) -> what failed, or None: one probe per kind
_probed: dict[tuple[str, str, bool, str], str | None] = {}


def _probe_problem(sandbox: Sandbox) -> str | None:
    """Why a trivial program does not run in the sandbox, or None when it does."""
    try:
        done = sandbox.run([sandbox.python, "-I", "-S", "-c", "print('sandboxed')"])
    except OSError as exc:
        return str(exc)
    if done.exit_code != 0 or done.output.strip() != b"sandboxed":
        return done.output.decode(errors="replace").strip() or "no output"
    return None


def _probe(sandbox: Sandbox) -> None:
    key = (sandbox.bwrap, sandbox.python, sandbox._as_root, sandbox.enforcement)
    if key not in _probed:
        _probed[key] = _probe_problem(sandbox)
    problem = _probed[key]
    if problem is not None:
        raise SandboxUnavailable(
            f"cannot run code: bubblewrap ({sandbox.bwrap}) failed to start a sandbox "
            f"({problem}); {INSTALL_HINT}"
        )
