"""Hostile programs through the real scorer: the ``tests_passed`` metric on stored
generations (``score_generations_detailed``, the path ``evalflow run`` and ``score`` take),
with small limits so that the battery stays fast. Each program is what a model could
write; each asserts that nothing of evalflow's environment, files or processes is
reachable, that no limit of the sandbox is exceeded, that nothing survives the run, and
that the harness reports each case with a sensible reason.

The sandbox is bounded by a cgroup where this machine lets evalflow create one (as root)
and by per-process rlimits otherwise (CI's runner): every case holds under either, and the
cases that differ assert the bound the run says it applied. Each case also holds when
evalflow runs as a user other than root (``user``: CI runs as root, so the battery's
programs run again, all in one process, as a user that owns nothing but its own files;
its sandboxes, pipes and files are then that user's, not root's). Needs bubblewrap (CI
installs it)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from evaluation.metrics import _code as code_metrics
from evaluation.metrics import get_metric
from evaluation.run._scoring import score_generations_detailed
from evaluation.sandbox import Limits, Sandbox
from evaluation.sandbox._bubblewrap import RLIMITS, _default_python
from evaluation.sandbox._cgroups import PREFIX
from evaluation.sandbox._programs import MAX_SANDBOXES, CodeExecution
from evaluation.suites import Case, Suite
from tests.evaluation.conftest import listening
from tests.support.processes import not_another_test_runs

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None,
    reason="bubblewrap (bwrap) is not installed: `apt-get install bubblewrap` (.ci/run does)",
)

REPO = Path(__file__).resolve().parents[3]
MIB = 2**20
LIMITS = Limits(
    cpu_s=1,
    wall_s=60,  # wide: a loaded machine gives a sandbox a small share of a core
    memory_bytes=192 * MIB,
    processes=12,
    output_bytes=64 * 1024,
    tmpfs_bytes=4 * MIB,
    shm_bytes=MIB,
)
# Parts of the secret, joined only at run time inside the sandbox: the programs' text
# never holds the secret itself, so finding it means it leaked.
SECRET_PARTS = ("hunter2", "-canary-", "7f3a")
SECRET = "".join(SECRET_PARTS)
GOOD = "def f(x):\n    return x + 1\n"


Programs = dict[str, tuple[str, list[str]]]  # name -> (program, its tests)
Scores = dict[str, tuple[float, dict]]  # name -> (share of tests passed, its detail or {})


@dataclass(frozen=True)
class Battery:
    """Where the battery's programs run: ``score`` gives their scores; ``enforcement`` is
    what bounded the sandboxes; ``port`` and ``accepted`` are a server on the host's
    loopback and the connections it got; ``database`` and ``secrets`` are files of the
    user evalflow runs as (the database holds ``SECRET``); ``cgroups_left`` lists the
    sandboxes' control groups still there."""

    score: Callable[[Programs], Scores]
    enforcement: str
    port: int
    accepted: list[object]
    database: Path
    secrets: list[str]
    cgroups_left: Callable[[], list[Path]]


def _bound(enforcement: str) -> int:
    """The memory the whole sandbox may hold, under the bound that applies."""
    if enforcement == RLIMITS:
        low = LIMITS.fallback()
        return low.processes * low.memory_bytes
    return LIMITS.memory_bytes


def _secrets(folder: Path, home: Path) -> tuple[Path, list[str]]:
    """A database and a file in the home of the user evalflow runs as, holding SECRET,
    and the paths a program must not read (those, and the machine's own secrets)."""
    database = folder / "evalflow.db"
    database.write_bytes(b"SQLite format 3\x00" + SECRET.encode())
    # a name of this test run's own: another run of the suite on the machine has its own
    home_secret = home / f".evalflow-hostile-test-{uuid.uuid4().hex}"
    home_secret.write_text(SECRET)
    paths = [database, REPO / "README.md", home_secret]
    machine = ["/etc/shadow", "/etc/passwd", "/root/.bashrc", "/proc/1/root/etc/hostname"]
    return database, [*map(str, paths), *machine]


@pytest.fixture(params=["machine", "rlimits", "user"])
def battery(request, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Battery]:
    """The battery's sandbox with its limits: evalflow as this process's user with the
    machine's own bound (a cgroup where it can create one), then with the rlimit fallback;
    then (``user``) evalflow as a user other than root."""
    if request.param == "user":
        yield request.getfixturevalue("as_user")
        return
    sandbox = Sandbox(use_cgroups=request.param == "machine")
    execution = CodeExecution(sandbox, LIMITS, test_timeout_s=1.0, max_parallel=4)
    monkeypatch.setattr(code_metrics, "code_execution", lambda: execution)
    monkeypatch.setattr(code_metrics, "_reports", type(code_metrics._reports)())
    # what evalflow's own environment holds while it scores
    for name, value in SECRET_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    database, secrets = _secrets(tmp_path, Path.home())
    try:
        with listening() as (port, accepted):
            yield Battery(
                _score, sandbox.enforcement, port, accepted, database, secrets,
                lambda: _cgroups_left(sandbox),
            )  # fmt: skip
    finally:
        Path(secrets[2]).unlink()


SECRET_ENVIRONMENT = {
    "EVALFLOW_DATABASE_URL": f"postgresql://evalflow:{SECRET}@db:5432/x",
    "OPENAI_API_KEY": f"sk-{SECRET}",
}


def _score(programs: Programs) -> Scores:
    """Each program (as a model's fenced answer) scored by tests_passed through
    score_generations_detailed."""
    cases = [
        Case(id=name, input="write f", metadata={"entry_point": "f", "tests": tests})
        for name, (_, tests) in programs.items()
    ]
    suite = Suite(
        name="hostile", version="1", task_type="code", default_metrics=("tests_passed",),
        cases=tuple(cases),
    )  # fmt: skip
    frame = pd.DataFrame(
        {
            "config_hash": "A",
            "case_id": list(programs),
            "sample_index": 0,
            "output": [_answer(program) for program, _ in programs.values()],
        }
    )
    scored = score_generations_detailed(frame, suite, [get_metric("tests_passed")])
    result = scored["tests_passed"]
    return {
        name: (float(value), json.loads(detail) if detail else {})
        for name, value, detail in zip(programs, result.values, result.details, strict=True)
    }


def _answer(program: str) -> str:
    return f"```python\n{program}\n```"


def _reasons(detail: dict) -> dict[str, str]:
    return {f["test"]: f["reason"] for f in detail.get("failed", [])}


def _got(reason: str) -> str:
    return reason.rsplit("got ", 1)[1]


def _sandbox_processes() -> list[int]:
    """Processes a hostile program left running (none after a run)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"@@evalflow-hostile@@" in cmdline:
            found.append(int(pid))
    return not_another_test_runs(found)


def _cgroups_left(sandbox: Sandbox) -> list[Path]:
    if sandbox.cgroups is None:
        return []
    return [d for p in sandbox.cgroups.parents for d in p.glob(f"{PREFIX}{os.getpid()}-*")]


SNOOP = textwrap.dedent(
    """
    import glob, os
    NEEDLE = "".join(%r)
    def places():
        found = {}
        paths = ["/proc/1/environ", "/proc/self/environ", "/proc/1/cmdline"]
        paths += glob.glob("/proc/*/environ") + glob.glob("/proc/*/cmdline")
        paths += glob.glob("/proc/*/task/*/environ")
        for path in paths:
            try:
                found[path] = open(path, "rb").read().decode("latin-1")
            except OSError:
                pass
        found["os.environ"] = repr(dict(os.environ))
        for fd in range(3, 1024):
            try:
                found["fd %%d" %% fd] = os.readlink("/proc/self/fd/%%d" %% fd)
                found["fd %%d data" %% fd] = os.pread(fd, 65536, 0).decode("latin-1")
            except OSError:
                pass
        return found
    def leaks():
        return sorted(name for name, text in places().items() if NEEDLE in text
                      or "EVALFLOW_DATABASE_URL" in text or "OPENAI_API_KEY" in text)
    def fds():
        return sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
    def pids():
        return sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    def init_environ():
        return open("/proc/1/environ", "rb").read()
    def f(x):
        return x + 1
    """
) % (SECRET_PARTS,)

DISK = textwrap.dedent(
    """
    import os
    def fill(folder, mib=64):
        written = 0
        try:
            for i in range(mib):
                with open(os.path.join(folder, "fill-%d" % i), "wb") as out:
                    out.write(b"x" * 2**20)
                written += 2**20
        except OSError:
            pass
        return written
    def f(x):
        return x + 1
    """
)

MEMORY = textwrap.dedent(
    """
    import os, select
    def hogs(children=6, mib=60):
        '''How many children hold ``mib`` MiB of touched memory at the same moment. Each
        child touches its memory and says so; once every child has said so or died, each
        one that said so is asked again, and only the answers count. A child the kernel
        killed for memory closes its pipe instead of answering, and every such kill was
        signalled before the allocation that caused it returned, so a child counted once
        but killed later (by the last child's allocation) is not counted.'''
        children_pipes = []
        for _ in range(children):
            up_r, up_w = os.pipe()
            down_r, down_w = os.pipe()
            try:
                pid = os.fork()
            except OSError:
                break
            if pid == 0:
                try:
                    blob = bytearray(mib * 2**20)
                    for i in range(0, len(blob), 4096):
                        blob[i] = 1
                    os.write(up_w, b"1")
                    if os.read(down_r, 1) == b"?":
                        os.write(up_w, b"2")
                    select.select([], [], [], 30)
                finally:
                    os._exit(0)
            os.close(up_w)  # the child then holds the last writer: its death is EOF
            os.close(down_r)
            children_pipes.append((up_r, down_w))
        def said(up_r, word):
            ready, _, _ = select.select([up_r], [], [], 10)
            return bool(ready) and os.read(up_r, 1) == word
        touched = [pipes for pipes in children_pipes if said(pipes[0], b"1")]
        for _, down_w in touched:
            try:
                os.write(down_w, b"?")
            except OSError:  # the child is gone
                pass
        return sum(said(up_r, b"2") for up_r, _ in touched)
    def f(x):
        return x + 1
    """
)

NETWORK = textwrap.dedent(
    """
    import socket
    def connect(host, port):
        try:
            socket.create_connection((host, port), timeout=2).close()
            return "connected"
        except OSError as exc:
            return type(exc).__name__ + " " + str(exc.errno)
    def f(x):
        return x + 1
    """
)

FILES = textwrap.dedent(
    """
    import os
    def readable(paths):
        found = []
        for path in paths:
            try:
                with open(path, "rb") as f:
                    f.read(1)
                found.append(path)
            except OSError:
                pass
        return found
    def listing(path):
        try:
            return sorted(os.listdir(path))
        except OSError as exc:
            return type(exc).__name__
    def f(x):
        return x + 1
    """
)

ESCAPES = textwrap.dedent(
    """
    import ctypes, errno, os
    libc = ctypes.CDLL(None, use_errno=True)
    def become_root():
        for attempt in (lambda: os.setuid(0), lambda: os.setgid(0), lambda: os.seteuid(0)):
            try:
                attempt()
                return "root"
            except OSError:  # EPERM, or EINVAL: uid 0 is not even mapped in the sandbox
                pass
        return "refused" if os.geteuid() != 0 else "root"
    def setuid_exec_possible():
        '''Whether exec'ing a setuid binary could raise privileges: not with
        no_new_privs set, nor on a nosuid mount.'''
        status = open("/proc/self/status").read()
        nnp = int(status.split("NoNewPrivs:")[1].split()[0])
        usr = [line.split() for line in open("/proc/self/mountinfo") if line.split()[4] == "/usr"]
        return nnp == 0 and "nosuid" not in usr[0][5]
    def ptrace_attach(pid):
        if libc.ptrace(16, pid, 0, 0) == 0:  # PTRACE_ATTACH
            return "attached"
        return errno.errorcode[ctypes.get_errno()]
    def read_other(pid):
        class iovec(ctypes.Structure):
            _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
        buf = ctypes.create_string_buffer(16)
        local = iovec(ctypes.cast(buf, ctypes.c_void_p), 16)
        remote = iovec(0x400000, 16)
        libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
        return errno.errorcode[ctypes.get_errno()]
    def harness_descriptors():
        try:  # the harness (the program's parent) is not dumpable: its fd/ does not open
            return os.listdir("/proc/%d/fd" % os.getppid())
        except OSError as exc:
            return type(exc).__name__
    def kill_init():
        import signal
        try:
            os.kill(1, signal.SIGKILL)
        except OSError as exc:
            return type(exc).__name__
        return "sent"
    def f(x):
        return x + 1
    """
)

SURVIVOR = textwrap.dedent(
    """
    import os, time
    def daemon():
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv("/bin/sh", ["/bin/sh", "-c", "sleep 300; : @@evalflow-hostile@@"])
            os._exit(0)
        os.wait()
        return "started"
    def f(x):
        return x + 1
    """
)

FORK_BOMB = textwrap.dedent(
    """
    import os, time
    def forks():
        started = 0
        try:
            for _ in range(1000):
                if os.fork() == 0:
                    time.sleep(60)  # held until the sandbox ends (CPU burn is a case below)
                    os._exit(0)
                started += 1
        except OSError:
            pass
        return started
    def f(x):
        return x + 1
    """
)

CPU_BURN = textwrap.dedent(
    """
    import os
    def burn(children=3):
        for _ in range(children):
            try:
                if os.fork() == 0:
                    while True:
                        pass
            except OSError:
                break
        return sum(range(10**13))
    def f(x):
        return x + 1
    """
)

FLOOD = "import sys\ndef flood():\n    while True:\n        sys.stdout.write('x' * 65536)\n" + GOOD


def reaching_programs(port: int, secrets: list[str]) -> Programs:
    """Programs that try to reach evalflow's environment, files, processes and network,
    and to exceed the sandbox's limits."""
    shm_limit, tmp_limit = LIMITS.shm_bytes, LIMITS.tmpfs_bytes
    return {
        "snoop": (
            SNOOP,
            [
                "assert leaks() == []",
                # 3 and 4: the pipes from and to the harness, 5: the listing
                "assert fds() == [0, 1, 2, 3, 4, 5]",
                # bwrap's init, the harness and the program's interpreter: nothing else
                "assert pids() == [1, 2, 3]",
                "assert init_environ() == b''",
                "assert f(1) == 2",
            ],
        ),
        "disk": (
            DISK,
            [
                "assert fill('/') == 0",
                "assert fill('/dev') == 0",
                "assert fill('/usr') == 0",
                f"assert fill('/dev/shm') <= {shm_limit}",
                f"assert fill('/tmp') <= {tmp_limit}",
                "assert f(1) == 2",
            ],
        ),
        "memory": (MEMORY, ["assert hogs() == -1", "assert f(1) == 2"]),
        "network": (
            NETWORK,
            [
                "assert connect('127.0.0.1', 5432) == 'ConnectionRefusedError 111'",
                f"assert connect('127.0.0.1', {port}) == 'ConnectionRefusedError 111'",
                "assert connect('1.1.1.1', 53) == 'OSError 101'",  # ENETUNREACH
                "assert f(1) == 2",
            ],
        ),
        "files": (
            FILES,
            [
                f"assert readable({secrets!r}) == []",
                "assert sorted(set(listing('/')) - {'bin', 'dev', 'lib', 'lib64', 'proc', "
                "'sbin', 'tmp', 'usr'}) == []",
                "assert f(1) == 2",
            ],
        ),
        "escapes": (
            ESCAPES,
            [
                "assert become_root() == 'refused'",
                "assert setuid_exec_possible() == False",
                "assert ptrace_attach(1) == 'EPERM'",
                "assert read_other(1) == 'EPERM'",
                "assert harness_descriptors() == 'PermissionError'",
                "assert kill_init() in ('sent', 'PermissionError')",
                "assert f(1) == 2",
            ],
        ),
        "survivor": (SURVIVOR, ["assert daemon() == 'started'", "assert f(1) == 2"]),
        "fork bomb": (FORK_BOMB, ["assert f(1) == 2", "assert forks() == -1", "assert f(2) == 3"]),
        "cpu burn": (CPU_BURN, ["assert f(1) == 2", "assert burn() == 0", "assert f(2) == 3"]),
        "flood": (FLOOD, ["assert f(1) == 2", "flood()", "assert f(2) == 3"]),
    }


def test_hostile_programs_reach_nothing_and_stay_within_the_limits(battery: Battery) -> None:
    scores = battery.score(reaching_programs(battery.port, battery.secrets))
    details = json.dumps(scores)
    assert SECRET not in details and "EVALFLOW_DATABASE_URL" not in details

    # Nothing of the environment, other processes or descriptors is readable.
    assert scores["snoop"] == (1.0, {}), scores["snoop"]
    # Only /tmp and /dev/shm are writable, each up to its size.
    assert scores["disk"] == (1.0, {}), scores["disk"]
    assert scores["network"] == (1.0, {}), scores["network"]
    assert scores["files"] == (1.0, {}), scores["files"]
    assert scores["escapes"] == (1.0, {}), scores["escapes"]
    assert scores["survivor"] == (1.0, {}), scores["survivor"]

    # Memory: the children together never hold more than the sandbox may.
    share, detail = scores["memory"]
    assert share == 0.5
    held = int(_got(_reasons(detail)["assert hogs() == -1"]))
    assert 0 < held * 60 * MIB <= _bound(battery.enforcement), (held, battery.enforcement)

    # A fork bomb meets the process limit; its processes end with the sandbox.
    share, detail = scores["fork bomb"]
    assert share == pytest.approx(2 / 3), detail
    started = int(_got(_reasons(detail)["assert forks() == -1"]))
    assert 0 < started < LIMITS.processes

    share, detail = scores["cpu burn"]
    assert share == pytest.approx(2 / 3), detail
    assert detail["sandbox"] == LIMITS.describe(battery.enforcement)  # the bound that applied
    reason = _reasons(detail)["assert burn() == 0"]
    # Each process's own limit, or (in a cgroup) all processes' together; the latter is
    # checked on its own below, as which one comes first depends on the machine's load.
    assert reason in (
        f"killed: CPU time limit ({LIMITS.cpu_s} s)",
        f"killed: CPU time limit of the sandbox ({LIMITS.cpu_s} s)",
    ), reason

    share, detail = scores["flood"]
    assert share == pytest.approx(2 / 3), detail
    assert _reasons(detail)["flood()"] == f"killed: output limit ({LIMITS.output_bytes} bytes)"

    # Nothing reached the host, nothing survives, nothing is left behind.
    assert battery.accepted == []
    assert _sandbox_processes() == []
    assert battery.cgroups_left() == []
    assert battery.database.read_bytes().startswith(b"SQLite format 3")


def killing_programs() -> Programs:
    """Programs whose tests end sandboxes, alone or together."""
    program = textwrap.dedent(
        """
        def f(x):
            return x + 1
        def spin():
            return sum(range(10**13))  # in C: the per-test alarm cannot interrupt it
        """
    )
    six = [
        "assert f(1) == 2",
        "assert f(2) == 3",
        "assert spin() == 0",
        "assert f(3) == 5",
        "assert f(0) == 7",
        "assert g(1) == 1",
    ]
    # Ends its sandbox at once, at the output limit (spin's CPU limit costs a second each).
    flood = program + (
        "import sys\ndef flood():\n    while True:\n        sys.stdout.write('x' * 65536)\n"
    )
    runaway = ["assert f(1) == 2", *[f"assert flood() == {i}" for i in range(4)]]
    # 0.35 s of CPU each: within the per-test 1 s, 1.4 s together > the sandbox's 1 s
    busy = program + (
        "import time\n"
        "def busy():\n"
        "    end = time.process_time() + 0.35\n"
        "    while time.process_time() < end:\n"
        "        pass\n"
        "    return 1\n"
    )
    budgets = [f"assert busy() == 1 + {i} - {i}" for i in range(4)]
    return {"six": (program, six), "runaway": (flood, runaway), "budgets add up": (busy, budgets)}


def test_a_killed_sandbox_keeps_the_outcomes_of_finished_tests(battery: Battery) -> None:
    scores = battery.score(killing_programs())

    share, detail = scores["six"]
    assert share == pytest.approx(2 / 6)
    reasons = _reasons(detail)
    assert reasons["assert spin() == 0"].startswith("killed: CPU time limit")
    assert reasons["assert f(3) == 5"] == "AssertionError: expected 5, got 4"
    assert reasons["assert f(0) == 7"] == "AssertionError: expected 7, got 1"
    assert reasons["assert g(1) == 1"] == "NameError: name 'g' is not defined"

    # Each runaway test ends a sandbox (the first one twice: it met the sandbox's limit
    # after another test, so it ran again alone); after MAX_SANDBOXES the rest are not run.
    share, detail = scores["runaway"]
    assert share == pytest.approx(1 / 5)
    reasons = _reasons(detail)
    for i in range(MAX_SANDBOXES - 1):
        assert reasons[f"assert flood() == {i}"].startswith("killed: output limit")
    assert reasons[f"assert flood() == {MAX_SANDBOXES - 1}"].startswith(
        f"not run: {MAX_SANDBOXES} sandboxes of this program ended early (last: killed: output"
    )

    # Tests within their own limit that together exceed the sandbox's all pass: the one
    # the sandbox's limit met is run again, first in a new sandbox.
    share, detail = scores["budgets add up"]
    assert share == 1.0, detail


def test_the_sandbox_cpu_time_is_bounded_for_all_processes_together() -> None:
    sandbox = Sandbox()
    if sandbox.cgroups is None:
        pytest.skip("no cgroup can be created here: per-process CPU limits apply (see above)")
    # 8 processes of 1 s CPU each: 8 s with per-process limits alone
    burn = "import os\nfor _ in range(3):\n    os.fork()\nwhile True:\n    pass\n"
    result = sandbox.run([sandbox.python, "-I", "-S", "-c", burn], limits=LIMITS)
    assert result.killed == "CPU time"
    assert result.cpu_s is not None
    # watched every 50 ms; the margin is for a watcher a loaded machine keeps waiting
    assert LIMITS.cpu_s <= result.cpu_s < 3 * LIMITS.cpu_s


# Wrong answers (add returns 0) that try to forge their report, each against the harness
# that shared the program's process (its names: run, send, job) and against the runner
# that now loads the program (its names: step, reply, plain, descriptor 4). The first test
# passes honestly (0 + 0 == 0), which shows each program loaded and ran its attack.
FORGERS = {
    "patch the test runner": """
        import __main__
        def add(a, b):
            return 0
        __main__.run = lambda source, namespace: None
        __main__.step = lambda request, namespace: {"ok": True}
    """,
    "send passes first": """
        import sys
        def add(a, b):
            return 0
        h = sys.modules["__main__"]
        if hasattr(h, "job"):
            for i in range(len(h.job["tests"])):
                h.send({"test": i, "passed": True, "reason": ""})
        if hasattr(h, "reply"):
            for i in range(4):
                h.reply({"ok": True})
    """,
    "write the report lines": """
        import json, os, sys
        def add(a, b):
            return 0
        j = getattr(sys.modules["__main__"], "job", None)
        for i in range(4):
            if j:
                line = j["nonce"] + json.dumps({"test": i, "passed": True, "reason": ""})
                os.write(1, ("\\n" + line + "\\n").encode())
            else:
                try:
                    os.write(4, b'{"ok": true}\\n')
                except OSError:
                    pass
    """,
    "equal to everything": """
        class Anything:
            def __eq__(self, other):
                return True
            def __ne__(self, other):
                return False
        def add(a, b):
            return Anything()
    """,
    "an int equal to everything": """
        class Anything(int):
            def __eq__(self, other):
                return True
            def __ne__(self, other):
                return False
            __hash__ = int.__hash__
        def add(a, b):
            return Anything(0)
    """,
    "read the harness's memory": """
        import os, re
        def add(a, b):
            return 0
        try:  # the harness: its memory holds the expected values
            with open("/proc/%d/mem" % os.getppid(), "rb") as mem:
                raise SystemExit("opened the harness's memory")
        except OSError:
            pass
    """,
}
# Writes "passed" events for every test, in the report's form (as bare lines, and after a
# nonce where one was learned), on every descriptor the program holds or can open: its
# own (stdout and stderr, its stdin reopened for writing) and every other process's under
# /proc. Not the runner's own pipes to the harness (3 and 4), which the harness guards.
WRITE_EVERYWHERE = textwrap.dedent(
    """
    import json, os
    EVENTS = [{"loaded": True}] + [{"test": i, "passed": True, "reason": ""} for i in range(8)]
    def forged(nonce=""):
        return "".join("\\n" + nonce + json.dumps(e) + "\\n" for e in EVENTS).encode()
    def descriptors():
        found = ["/proc/self/fd/%d" % fd for fd in (0, 1, 2)]
        for pid in os.listdir("/proc"):
            if pid.isdigit() and int(pid) != os.getpid():
                try:
                    fds = os.listdir("/proc/%s/fd" % pid)
                except OSError:
                    continue
                found += ["/proc/%s/fd/%s" % (pid, fd) for fd in fds]
        return found
    def write_everywhere(nonce=""):
        data = forged(nonce)
        for fd in (0, 1, 2, *range(5, 64)):
            try:
                os.write(fd, data)
            except OSError:
                pass
        for path in descriptors():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                continue
            try:
                os.write(fd, data)
            except OSError:
                pass
            os.close(fd)
    """
)
# The report's channel as a program run by a non-root user could reach it when the
# harness reported on the sandbox's stdout: reopened through /proc/self/fd/1 for reading,
# the pipe gave the harness's lines and their nonce to a thread of the program, which
# wrote "passed" lines for every test ahead of the real ones.
FORGERS["read the report on its own stdout"] = WRITE_EVERYWHERE + textwrap.dedent(
    """
    import re, threading
    heard, forged_all = threading.Event(), threading.Event()
    def steal():
        try:
            pipe = os.open("/proc/self/fd/1", os.O_RDONLY)
        except OSError:
            return
        seen = b""
        while True:
            chunk = os.read(pipe, 65536)
            if not chunk:
                return
            heard.set()
            seen += chunk
            nonce = re.search(rb"@@evalflow-report-[0-9a-f]+@@", seen)
            if nonce or b'"passed"' in seen:
                write_everywhere(nonce.group().decode() if nonce else "")
                forged_all.set()
                return
    threading.Thread(target=steal, daemon=True).start()
    def add(a, b):
        if heard.is_set():  # the report is readable: forge before the next real line
            forged_all.wait(5)
        return 0
    """
)
FORGERS["write a report on every descriptor"] = WRITE_EVERYWHERE + textwrap.dedent(
    """
    def add(a, b):
        write_everywhere()
        return 0
    """
)
FORGERS["stop the harness and report for it"] = WRITE_EVERYWHERE + textwrap.dedent(
    """
    import signal
    def add(a, b):
        os.kill(os.getppid(), signal.SIGSTOP)
        write_everywhere()
        os.kill(os.getppid(), signal.SIGCONT)
        return 0
    """
)
ADD_TESTS = ["assert add(0, 0) == 0", "assert add(1, 2) == 3", "assert add(2, 2) == 4"]


def forging_programs() -> Programs:
    """Wrong answers (add returns 0) that try to forge their report."""
    return {
        name: (textwrap.dedent(source), [*ADD_TESTS, "assert add(2, 3) is 5"])
        for name, source in FORGERS.items()
    }


def test_a_program_cannot_forge_its_report(battery: Battery) -> None:
    scores = battery.score(forging_programs())
    for name, (share, detail) in scores.items():
        failed = _reasons(detail)
        assert share <= 0.25, (name, detail)
        for test in ADD_TESTS[1:]:
            assert test in failed, (name, detail)
    # Each loaded and ran its attack (its first test passes honestly); no other process's
    # memory (the harness's) could be opened.
    for name in ("read the harness's memory", *list(FORGERS)[-3:]):
        assert scores[name][0] == 0.25, (name, scores[name])
    reasons = _reasons(scores["equal to everything"][1])
    assert reasons["assert add(1, 2) == 3"] == (
        "AssertionError: expected 3, got an object of type Anything "
        "(only plain built-in values are compared)"
    )


def signalling_programs() -> Programs:
    """A program whose failure's reason is written while the CPU limit's signal comes."""
    program = textwrap.dedent(
        """
        import os, signal
        class Boom(Exception):
            def __str__(self):
                os.kill(os.getpid(), signal.SIGPROF)
                return "boom"
        def f(x):
            if x == 1:
                raise Boom()
            return x + 1
        """
    )
    return {"pending": (program, ["assert f(1) == 2", "assert f(2) == 3"])}


def test_a_limit_signal_while_the_reason_is_written_is_reported(battery: Battery) -> None:
    # The CPU limit's signal arrives while the failure's reason is being written (here
    # sent by the exception's own __str__, deterministically; in a sweep, the pending
    # signal of a second limit): the test fails with the limit, and the next one runs.
    share, detail = battery.score(signalling_programs())["pending"]
    assert share == 0.5, detail
    reason = _reasons(detail)["assert f(1) == 2"]
    assert reason == "TimeoutError: test used more than 1 s of CPU time"


FIRST_USER_ID = 61000  # the battery's other user: the first uid from here that names no account


def _unused_user_id() -> int:
    uid = FIRST_USER_ID
    while True:
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid
        uid += 1


def _as(uid: int) -> dict[str, object]:
    return {"user": uid, "group": uid, "extra_groups": []}


@pytest.fixture(scope="module")
def as_user() -> Iterator[Battery]:
    """The battery with evalflow run by a user other than root, who owns nothing but its
    copy of evalflow's sandbox (``evaluation/``), a home, and a database: every program of
    the battery, in one process (``_as_user.py``) so that their sandboxes run side by side,
    through the sandbox itself rather than the scorer (which needs this suite's
    interpreter and packages, out of that user's reach)."""
    if os.geteuid() != 0:
        pytest.skip(
            "evalflow runs as a user other than root here: the machine and rlimits runs "
            "of the battery are already that user's"
        )
    uid, python = _unused_user_id(), _default_python()
    folder = Path(tempfile.mkdtemp(prefix="evalflow-as-user-"))
    try:
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(REPO / "evaluation", folder / "evaluation", ignore=ignore)
        shutil.copy(Path(__file__).with_name("_as_user.py"), folder)
        (folder / "home").mkdir()
        database, secrets = _secrets(folder, folder / "home")
        for path in [folder, *folder.rglob("*")]:
            os.chown(path, uid, uid, follow_symlinks=False)
        reach = f"open({str(folder / '_as_user.py')!r}).close()"
        if subprocess.run([python, "-c", reach], env={}, **_as(uid)).returncode:
            pytest.skip(f"{python} cannot run or reach {folder} as uid {uid}")
        with listening() as (port, accepted):
            programs = {
                **reaching_programs(port, secrets),
                **killing_programs(),
                **forging_programs(),
                **signalling_programs(),
            }
            job = {
                "limits": LIMITS.__dict__,
                "test_timeout_s": 1.0,
                "max_parallel": 4,
                "jobs": [[_program(text), tests] for text, tests in programs.values()],
            }
            done = subprocess.run(
                [python, "-E", "-s", "_as_user.py"],
                input=json.dumps(job),
                capture_output=True,
                text=True,
                check=False,
                cwd=folder,
                env={"PATH": "/usr/bin:/bin", "HOME": str(folder / "home"), **SECRET_ENVIRONMENT},
                **_as(uid),
            )
            assert done.returncode == 0, done.stderr
            ran = json.loads(done.stdout)
            if "unavailable" in ran:  # evalflow refuses to score code as that user, rightly
                pytest.skip(f"no sandbox for uid {uid} on this machine: {ran['unavailable']}")
            scores = {
                name: (share, json.loads(detail) if detail else {})
                for name, (share, detail) in zip(programs, ran["scores"], strict=True)
            }

            def score(asked: Programs) -> Scores:
                for name, job in asked.items():
                    assert programs.get(name) == job, f"{name}: not among as_user's programs"
                return {name: scores[name] for name in asked}

            yield Battery(score, ran["enforcement"], port, accepted, database, secrets, list)
    finally:
        shutil.rmtree(folder)


def _program(text: str) -> str:
    """The program the scorer runs for ``text`` given as a model's answer."""
    return code_metrics.extract_code(_answer(text), "f")
