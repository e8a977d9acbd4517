"""The seccomp filter every sandboxed program runs under: a classic-BPF program, given to
bubblewrap with ``--seccomp FD``, that denies (EPERM) the system calls a program could use
to reach another process or the kernel's wider state, and allows the rest.

Denied: ptrace and reading or writing another process's memory (process_vm_readv/writev,
pidfd_getfd, kcmp), perf_event_open, bpf, userfaultfd, the keyring, io_uring, mounts,
namespaces, module and kexec loading, swap, acct and reboot. A system call of another ABI
than the machine's own (x32 on x86-64, or a foreign ``AUDIT_ARCH``) kills the process.
Built with ``struct`` for x86-64 and aarch64; on other machines ``filter_program`` raises,
and the sandbox refuses to run code rather than run it unfiltered.
"""

from __future__ import annotations

import errno
import platform
import struct

# linux/audit.h: EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE, and EM_AARCH64 likewise
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
X32_SYSCALL_BIT = 0x40000000

# linux/bpf_common.h and linux/seccomp.h
_LD_W_ABS = 0x00 | 0x00 | 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x05 | 0x10 | 0x00  # BPF_JMP | BPF_JEQ | BPF_K
_JGE_K = 0x05 | 0x30 | 0x00  # BPF_JMP | BPF_JGE | BPF_K
_RET_K = 0x06 | 0x00  # BPF_RET | BPF_K
RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000
RET_ALLOW = 0x7FFF0000
_NR_OFFSET, _ARCH_OFFSET = 0, 4  # struct seccomp_data

DENIED: dict[str, dict[str, int]] = {
    "x86_64": {
        "ptrace": 101,
        "process_vm_readv": 310,
        "process_vm_writev": 311,
        "pidfd_getfd": 438,
        "kcmp": 312,
        "perf_event_open": 298,
        "bpf": 321,
        "userfaultfd": 323,
        "add_key": 248,
        "request_key": 249,
        "keyctl": 250,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
        "mount": 165,
        "umount2": 166,
        "pivot_root": 155,
        "unshare": 272,
        "setns": 308,
        "open_by_handle_at": 304,
        "init_module": 175,
        "finit_module": 313,
        "delete_module": 176,
        "kexec_load": 246,
        "kexec_file_load": 320,
        "swapon": 167,
        "swapoff": 168,
        "acct": 163,
        "reboot": 169,
    },
    "aarch64": {
        "ptrace": 117,
        "process_vm_readv": 270,
        "process_vm_writev": 271,
        "pidfd_getfd": 438,
        "kcmp": 272,
        "perf_event_open": 241,
        "bpf": 280,
        "userfaultfd": 282,
        "add_key": 217,
        "request_key": 218,
        "keyctl": 219,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
        "mount": 40,
        "umount2": 39,
        "pivot_root": 41,
        "unshare": 97,
        "setns": 268,
        "open_by_handle_at": 265,
        "init_module": 105,
        "finit_module": 273,
        "delete_module": 106,
        "kexec_load": 104,
        "kexec_file_load": 294,
        "swapon": 224,
        "swapoff": 225,
        "acct": 89,
        "reboot": 142,
    },
}


class UnsupportedArchitecture(Exception):
    """No seccomp filter is written for this machine's architecture."""


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)  # struct sock_filter, native byte order


def filter_program(machine: str | None = None) -> bytes:
    """The filter as ``bwrap --seccomp`` reads it: an array of ``struct sock_filter``."""
    machine = machine or platform.machine()
    if machine not in DENIED:
        raise UnsupportedArchitecture(
            f"no seccomp filter for the {machine!r} architecture (only {', '.join(DENIED)})"
        )
    numbers = sorted(DENIED[machine].values())
    # Layout: check arch, load nr, [x32 check], one JEQ per denied call, ALLOW, ERRNO, KILL.
    x32 = machine == "x86_64"
    checks = len(numbers) + x32
    program = [
        _insn(_LD_W_ABS, 0, 0, _ARCH_OFFSET),
        # equal: go on; else jump over the nr load, the checks, ALLOW and ERRNO to KILL
        _insn(_JEQ_K, 0, checks + 3, AUDIT_ARCH[machine]),
        _insn(_LD_W_ABS, 0, 0, _NR_OFFSET),
    ]
    if x32:
        program.append(_insn(_JGE_K, checks - 1 + 2, 0, X32_SYSCALL_BIT))  # to KILL
    for i, number in enumerate(numbers):
        program.append(_insn(_JEQ_K, len(numbers) - i, 0, number))  # to ERRNO
    program += [
        _insn(_RET_K, 0, 0, RET_ALLOW),
        _insn(_RET_K, 0, 0, RET_ERRNO | errno.EPERM),
        _insn(_RET_K, 0, 0, RET_KILL_PROCESS),
    ]
    return b"".join(program)
