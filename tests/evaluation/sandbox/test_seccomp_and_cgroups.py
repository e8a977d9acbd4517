"""The seccomp filter, checked by running its BPF program on system calls of both
architectures it is written for (only one of which the machine can run), and the
per-sandbox cgroups: the cleanup of groups an evalflow process left when it was killed,
and the cgroup v2 mechanics where a v2 hierarchy is writable."""

from __future__ import annotations

import errno
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evaluation.sandbox._cgroups import PREFIX, Cgroups, SandboxGroup, _mounts, _own_paths
from evaluation.sandbox._seccomp import (
    AUDIT_ARCH,
    DENIED,
    RET_ALLOW,
    RET_ERRNO,
    RET_KILL_PROCESS,
    UnsupportedArchitecture,
    filter_program,
)


def _run_bpf(program: bytes, arch: int, nr: int) -> int:
    """What the kernel's classic-BPF interpreter returns for seccomp_data (nr, arch):
    the subset of instructions the filter uses (LD W ABS, JEQ K, JGE K, RET K)."""
    insns = [struct.unpack("=HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]
    data = struct.pack("=iI", nr, arch) + bytes(56)  # struct seccomp_data
    pc, acc = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        pc += 1
        if code == 0x20:
            acc = struct.unpack_from("=I", data, k)[0]
        elif code == 0x15:
            pc += jt if acc == k else jf
        elif code == 0x35:
            pc += jt if acc >= k else jf
        elif code == 0x06:
            return k
        else:
            raise AssertionError(f"unexpected BPF instruction {code:#x}")


@pytest.mark.parametrize("machine", sorted(DENIED))
def test_the_filter_denies_its_calls_allows_the_rest_and_kills_other_abis(machine: str) -> None:
    program = filter_program(machine)
    arch = AUDIT_ARCH[machine]
    for name, nr in DENIED[machine].items():
        assert _run_bpf(program, arch, nr) == RET_ERRNO | errno.EPERM, name
    denied = set(DENIED[machine].values())
    for nr in range(0, 460):
        if nr not in denied:
            assert _run_bpf(program, arch, nr) == RET_ALLOW, nr
    other = next(a for m, a in AUDIT_ARCH.items() if m != machine)
    assert _run_bpf(program, other, 0) == RET_KILL_PROCESS
    assert _run_bpf(program, 0x40000003, 0) == RET_KILL_PROCESS  # i386
    if machine == "x86_64":  # x32 calls: the same AUDIT_ARCH, bit 30 set
        assert _run_bpf(program, arch, 0x40000000 | 101) == RET_KILL_PROCESS


def test_a_machine_without_a_filter_is_refused() -> None:
    with pytest.raises(UnsupportedArchitecture, match="'riscv64'"):
        filter_program("riscv64")


def test_groups_left_by_a_killed_evalflow_are_removed() -> None:
    cgroups = Cgroups.detect()
    if cgroups is None:
        pytest.skip("no cgroup can be created here (not root, no delegated subtree)")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(dead.stdout)
    left = [parent / f"{PREFIX}{dead_pid}-0123456789ab" for parent in cgroups.parents]
    mine = cgroups.create(2**26, 4)
    try:
        for directory in left:
            directory.mkdir()
        assert Cgroups.detect() == cgroups
        assert not any(d.exists() for d in left)
        assert all(d.exists() for d in mine.directories)  # a live evalflow's group stays
    finally:
        mine.remove()
        for directory in left:
            if directory.exists():
                directory.rmdir()
    assert not any(d.exists() for d in mine.directories)


def test_a_group_left_by_another_users_evalflow_is_passed_over_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Run as another user, evalflow sees the groups a killed root evalflow left in the
    # same parent, and the kernel refuses to remove them: it must not wait (and kill) on.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    left = tmp_path / f"{PREFIX}{int(dead.stdout)}-0123456789ab"
    left.mkdir()

    def refused(self: Path) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    kills: list[SandboxGroup] = []
    monkeypatch.setattr(Path, "rmdir", refused)
    monkeypatch.setattr(SandboxGroup, "kill", lambda group: kills.append(group))
    Cgroups(2, (tmp_path,)).remove_stale()
    assert left.exists() and kills == []


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")
def test_bwrap_itself_starts_with_nothing_of_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from evaluation.sandbox import Sandbox

    monkeypatch.setenv("EVALFLOW_TEST_SECRET", "s3cret-value")
    sandbox = Sandbox()
    show = "import sys; sys.stdout.buffer.write(open('/proc/1/environ', 'rb').read())"
    result = sandbox.run([sandbox.python, "-I", "-S", "-c", show])
    assert result.ok and result.output == b""
    assert os.environ["EVALFLOW_TEST_SECRET"] == "s3cret-value"


def _writable_cgroup2() -> Path | None:
    """This process's group in a cgroup v2 hierarchy, if a child can be made there."""
    own = _own_paths().get("")
    for mount, fstype, _ in _mounts():
        if fstype == "cgroup2" and own is not None and os.access(mount + own, os.W_OK):
            return Path(mount + own)
    return None


def test_a_cgroup_v2_group_counts_cpu_kills_everything_and_is_removed() -> None:
    """The v2 mechanics where a cgroup2 hierarchy is writable (as root on a hybrid or
    unified machine), even without the memory controller: a group without it is refused
    (the sandbox then falls back), and the rest works as the sandbox uses it."""
    parent = _writable_cgroup2()
    if parent is None:
        pytest.skip("no writable cgroup v2 hierarchy here")
    v2 = Cgroups(2, (parent,))
    if "memory" not in (parent / "cgroup.subtree_control").read_text().split():
        with pytest.raises(OSError):
            v2.create(2**26, 4)
    assert not list(parent.glob(f"{PREFIX}{os.getpid()}-*"))

    group = SandboxGroup(2, (parent / f"{PREFIX}{os.getpid()}-v2test",))
    group.directories[0].mkdir()
    spin = "import os\nos.fork()\nwhile True:\n    pass\n"
    proc = subprocess.Popen(["/bin/sh", "-c", 'read -r go && exec "$@"', "sh", sys.executable,
                             "-c", spin], stdin=subprocess.PIPE)  # fmt: skip
    try:
        group.add(proc.pid)
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        proc.stdin.close()
        deadline = time.monotonic() + 60
        while group.cpu_s() < 0.2 or len(group.pids()) < 2:
            assert time.monotonic() < deadline, (group.cpu_s(), group.pids())
            time.sleep(0.05)
        group.kill()
        assert proc.wait(timeout=30) == -9
    finally:
        group.remove()
        if proc.poll() is None:
            proc.kill()
    assert not group.directories[0].exists()
