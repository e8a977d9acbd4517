"""Which of the machine's processes a test may call its own, when other test runs (another
pytest-xdist worker, another checkout's pytest) run the same kind of program meanwhile."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import REPO


def _each_process(name: str) -> Iterator[tuple[int, bytes]]:
    """Each live process of the machine and its /proc file ``name`` (those that cannot
    be read, a process of another user's environment or one gone meanwhile, left out)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                yield int(entry.name), (entry / name).read_bytes()
            except OSError:
                continue


def parent_pids() -> dict[int, int]:
    """Each live process of the machine and its parent (read from /proc)."""
    return {pid: int(stat.rsplit(b")", 1)[1].split()[1]) for pid, stat in _each_process("stat")}


def carrying(variable: str, value: str) -> list[int]:
    """The live processes whose environment sets ``variable`` to ``value`` (read from
    /proc): those a command started, whatever became of their parent, where the command
    was given a value of its own (its Prefect home: every server it or Prefect started
    inherits it)."""
    wanted = f"{variable}={value}".encode()
    return [pid for pid, environ in _each_process("environ") if wanted in environ.split(b"\0")]


def _is_pytest(pid: int) -> bool:
    try:
        return b"pytest" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def not_another_test_runs(pids: list[int]) -> list[int]:
    """``pids`` less those that descend from a pytest process other than this one (or
    than this worker's controller): this run's processes and orphans (a process that
    escaped its parent, whoever started it) are kept."""
    parents, me = parent_pids(), os.getpid()
    kept = []
    for pid in pids:
        ancestor, others = parents.get(pid, 0), False
        while ancestor > 1 and ancestor != me:
            others = others or _is_pytest(ancestor)
            ancestor = parents.get(ancestor, 0)
        if ancestor == me or not others:
            kept.append(pid)
    return kept


def python_against_api(code: str, api_url: str) -> subprocess.Popen:
    """Another Python process of this checkout running ``code`` against the Prefect API at
    ``api_url`` (stdout and stderr piped together): a second run, as a test sees one."""
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=os.environ | {"PREFECT_API_URL": api_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def python_run(code: str) -> subprocess.CompletedProcess[str]:
    """A fresh Python process of this checkout run on ``code``, finished (its output
    captured as text). No time limit of its own: a process that does not end is the test's
    timeout's (pytest-timeout, pyproject.toml); a limit here only measured the machine's
    load (a fresh import of Prefect, ~3.5 s of CPU, ran past 120 s at load 12-15)."""
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)


def python_output(code: str) -> str:
    """What a fresh Python process of this checkout prints running ``code`` (it must exit
    0): what a module loads is seen only in a process that had not loaded it."""
    done = python_run(code)
    assert done.returncode == 0, done.stderr
    return done.stdout


@contextmanager
def sigint_at_start(handler: Callable | int) -> Iterator[None]:
    """The processes started in the block start with SIGINT ``handler``'s action (and
    this process has it while the block runs):
    ``signal.default_int_handler`` gives them the default, as a shell with job control
    starts a command; ``signal.SIG_IGN`` ignores it, as a script starts a background job
    (and as pytest itself may have been started: a command that stores work takes an
    ignored Ctrl-C, one that only reads keeps it ignored, docs/hosts-that-fail.md). An
    action is inherited through fork and exec (a Python handler as the default), so it
    is set here around the start (main thread)."""
    before = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


# `evalflow` started as its console script is, and sent ``argv[1]`` (a signal's number)
# as it begins to import the CLI's modules (~0.4 s, seconds under load).
HUNG_UP_MID_IMPORT = """
import builtins, os, signal, sys
from flows.cli import console_main

real_import = builtins.__import__

def profiled(frame, event, arg):
    if event == "call" and frame.f_code.co_name == "RunModel":  # series_runs made
        sys.setprofile(None)
        os.kill(os.getpid(), signal.SIGHUP)

def importing(name, *args, **kwargs):
    if name == "evaluation.storage.db":
        builtins.__import__ = real_import
        sys.setprofile(profiled)
    return real_import(name, *args, **kwargs)

builtins.__import__ = importing
sys.argv = ["evalflow", *sys.argv[1:]]
sys.exit(console_main())
"""
"""`evalflow ARGS...` SIGHUPed in the middle of evaluation.series.schema's import (its
first table made, its second not), as a terminal closing in `run`'s first seconds may."""

SIGNALLED_WHILE_IMPORTING = """
import builtins, os, signal, sys
from flows.cli import console_main

signum = int(sys.argv[1])
real_import = builtins.__import__

def importing(name, *args, **kwargs):
    if name == "flows.cli.app":
        builtins.__import__ = real_import
        os.kill(os.getpid(), signum)
    return real_import(name, *args, **kwargs)

builtins.__import__ = importing
sys.argv = ["evalflow", *sys.argv[2:]]
sys.exit(console_main())
"""
