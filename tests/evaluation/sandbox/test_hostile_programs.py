"""Hostile programs through the real scorer: the ``tests_passed`` metric on stored
generations (``score_generations_detailed``, the path ``evalflow run`` and ``score`` take),
with small limits so that the battery stays fast. Each program is what a model could
write; each asserts that nothing of evalflow's environment, files or processes is
reachable, that no limit of the sandbox is exceeded, that nothing survives the run, and
that the harness reports each case with a sensible reason.

The sandbox is bounded by a cgroup where this machine lets evalflow create one (as root)
and by per-process rlimits otherwise (CI's runner): every case holds under either, and the
cases that differ assert the bound the run says it applied. Needs bubblewrap (CI installs
it)."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from evaluation.metrics import _code as code_metrics
from evaluation.metrics import get_metric
from evaluation.run._scoring import score_generations_detailed
from evaluation.sandbox import Limits, Sandbox
from evaluation.sandbox._bubblewrap import RLIMITS
from evaluation.sandbox._cgroups import PREFIX
from evaluation.sandbox._programs import MAX_SANDBOXES, CodeExecution
from evaluation.suites import Case, Suite

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


def _bound(sandbox: Sandbox) -> int:
    """The memory the whole sandbox may hold, under the bound that applies."""
    if sandbox.enforcement == RLIMITS:
        low = LIMITS.fallback()
        return low.processes * low.memory_bytes
    return LIMITS.memory_bytes


@pytest.fixture(params=["machine", "rlimits"])
def execution(request, monkeypatch: pytest.MonkeyPatch) -> Iterator[CodeExecution]:
    """The scorer's code execution, with the battery's limits: the machine's own bound
    (a cgroup where it can create one), then the rlimit fallback."""
    sandbox = Sandbox(use_cgroups=request.param == "machine")
    execution = CodeExecution(sandbox, LIMITS, test_timeout_s=1.0, max_parallel=4)
    monkeypatch.setattr(code_metrics, "code_execution", lambda: execution)
    monkeypatch.setattr(code_metrics, "_reports", type(code_metrics._reports)())
    # what evalflow's own environment holds while it scores
    monkeypatch.setenv("EVALFLOW_DATABASE_URL", f"postgresql://evalflow:{SECRET}@db:5432/x")
    monkeypatch.setenv("OPENAI_API_KEY", f"sk-{SECRET}")
    yield execution


def _score(programs: dict[str, tuple[str, list[str]]]) -> dict[str, tuple[float, dict]]:
    """Each program (as a model's fenced answer) scored by tests_passed through
    score_generations_detailed: name -> (share of tests passed, its detail or {})."""
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
            "output": [f"```python\n{program}\n```" for program, _ in programs.values()],
        }
    )
    scored = score_generations_detailed(frame, suite, [get_metric("tests_passed")])
    result = scored["tests_passed"]
    return {
        name: (float(value), json.loads(detail) if detail else {})
        for name, value, detail in zip(programs, result.values, result.details, strict=True)
    }


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
    return found


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


def test_hostile_programs_reach_nothing_and_stay_within_the_limits(
    execution: CodeExecution, tmp_path: Path, listener: tuple[int, list[object]]
) -> None:
    sandbox = execution.sandbox
    port, accepted = listener
    database = tmp_path / "evalflow.db"
    database.write_bytes(b"SQLite format 3\x00" + SECRET.encode())
    # a name of this test run's own: another run of the suite on the machine has its own
    home_secret = Path.home() / f".evalflow-hostile-test-{uuid.uuid4().hex}"
    secrets_on_disk = [
        str(database),
        str(REPO / "README.md"),
        str(home_secret),
        "/etc/shadow",
        "/etc/passwd",
        "/root/.bashrc",
        "/proc/1/root/etc/hostname",
    ]
    shm_limit, tmp_limit = LIMITS.shm_bytes, LIMITS.tmpfs_bytes
    programs = {
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
                f"assert readable({secrets_on_disk!r}) == []",
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
                "assert kill_init() in ('sent', 'PermissionError')",
                "assert f(1) == 2",
            ],
        ),
        "survivor": (SURVIVOR, ["assert daemon() == 'started'", "assert f(1) == 2"]),
        "fork bomb": (FORK_BOMB, ["assert f(1) == 2", "assert forks() == -1", "assert f(2) == 3"]),
        "cpu burn": (CPU_BURN, ["assert f(1) == 2", "assert burn() == 0", "assert f(2) == 3"]),
        "flood": (FLOOD, ["assert f(1) == 2", "flood()", "assert f(2) == 3"]),
    }
    home_secret.write_text(SECRET)
    try:
        scores = _score(programs)
    finally:
        home_secret.unlink(missing_ok=True)
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
    assert 0 < held * 60 * MIB <= _bound(sandbox), (held, sandbox.enforcement)

    # A fork bomb meets the process limit; its processes end with the sandbox.
    share, detail = scores["fork bomb"]
    assert share == pytest.approx(2 / 3), detail
    started = int(_got(_reasons(detail)["assert forks() == -1"]))
    assert 0 < started < LIMITS.processes

    share, detail = scores["cpu burn"]
    assert share == pytest.approx(2 / 3), detail
    assert detail["sandbox"] == LIMITS.describe(sandbox.enforcement)  # the bound that applied
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
    assert accepted == []
    assert _sandbox_processes() == []
    assert _cgroups_left(sandbox) == []
    assert database.read_bytes().startswith(b"SQLite format 3")


def test_a_killed_sandbox_keeps_the_outcomes_of_finished_tests(execution: CodeExecution) -> None:
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
    runaway = ["assert f(1) == 2", *[f"assert spin() == {i}" for i in range(4)]]
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
    scores = _score(
        {
            "six": (program, six),
            "runaway": (program, runaway),
            "budgets add up": (busy, budgets),
        }
    )

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
        assert reasons[f"assert spin() == {i}"].startswith("killed: CPU time limit")
    assert reasons[f"assert spin() == {MAX_SANDBOXES - 1}"].startswith(
        f"not run: {MAX_SANDBOXES} sandboxes of this program ended early (last: killed: CPU"
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
        try:  # the harness: its memory holds the nonce and the expected values
            with open("/proc/%d/mem" % os.getppid(), "rb") as mem:
                raise SystemExit("opened the harness's memory")
        except OSError:
            pass
    """,
}
ADD_TESTS = ["assert add(0, 0) == 0", "assert add(1, 2) == 3", "assert add(2, 2) == 4"]


def test_a_program_cannot_forge_its_report(execution: CodeExecution) -> None:
    programs = {
        name: (textwrap.dedent(source), [*ADD_TESTS, "assert add(2, 3) is 5"])
        for name, source in FORGERS.items()
    }
    for name, (share, detail) in _score(programs).items():
        failed = _reasons(detail)
        assert share <= 0.25, (name, detail)
        for test in ADD_TESTS[1:]:
            assert test in failed, (name, detail)
    # It loaded and ran, and no other process's memory (the harness's) could be opened.
    assert _score({"mem": programs["read the harness's memory"]})["mem"][0] == 0.25
    reasons = _reasons(_score({"eq": programs["equal to everything"]})["eq"][1])
    assert reasons["assert add(1, 2) == 3"] == (
        "AssertionError: expected 3, got an object of type Anything "
        "(only plain built-in values are compared)"
    )


def test_a_limit_signal_while_the_reason_is_written_is_reported(
    execution: CodeExecution,
) -> None:
    # The CPU limit's signal arrives while the failure's reason is being written (here
    # sent by the exception's own __str__, deterministically; in a sweep, the pending
    # signal of a second limit): the test fails with the limit, and the next one runs.
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
    tests = ["assert f(1) == 2", "assert f(2) == 3"]
    share, detail = _score({"pending": (program, tests)})["pending"]
    assert share == 0.5, detail
    reason = _reasons(detail)["assert f(1) == 2"]
    assert reason == "TimeoutError: test used more than 1 s of CPU time"
