"""The sandbox contains hostile programs: each becomes failed tests with a reason, the
batch goes on, and the machine is untouched. Needs bubblewrap (CI installs it)."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from evaluation.metrics import _code as code_metrics
from evaluation.metrics import get_metric
from evaluation.sandbox import Limits, Sandbox, SandboxUnavailable
from evaluation.sandbox._bubblewrap import RunResult
from evaluation.sandbox._programs import CodeExecution
from evaluation.suites import Case
from tests.support.processes import not_another_test_runs

needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None,
    reason="bubblewrap (bwrap) is not installed: `apt-get install bubblewrap` (.ci/run does)",
)

TESTS = ("assert f(1) == 2", "assert f(2) == 3")
GOOD = "def f(x):\n    return x + 1\n"


@pytest.fixture(scope="module")
def execution() -> CodeExecution:
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap (bwrap) is not installed: `apt-get install bubblewrap`")
    # CPU limits are what the hostile programs meet, each spent in full: the least the
    # sandbox takes (whole seconds), and a quarter of a second per test (a test here needs
    # a few ms). The wall limit is wide because a loaded machine gives a sandbox a small
    # share of a core.
    limits = Limits(cpu_s=1, wall_s=60, output_bytes=64 * 1024)
    return CodeExecution(Sandbox(), limits, test_timeout_s=0.25, max_parallel=4)


def _harness_processes() -> list[int]:
    """Processes still running the sandbox harness (none after a run; those of another
    test run's sandboxes, on another xdist worker say, are not this test's)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"def run_test(runner, source):" in cmdline:
            found.append(int(pid))
    return not_another_test_runs(found)


@needs_bwrap
def test_hostile_programs_fail_with_reasons_and_the_batch_goes_on(
    execution: CodeExecution, tmp_path: Path, listener: tuple[int, list[object]]
) -> None:
    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE KEY")
    database = tmp_path / "evalflow.db"
    database.write_bytes(b"SQLite format 3\x00")
    port, accepted = listener
    hostile = {
        "infinite loop": "def f(x):\n    while True:\n        pass\n",
        "C-level loop": "def f(x):\n    return sum(range(10**13))\n",
        "loop at import": "while True:\n    pass\n",
        "fork bomb": "import os\nwhile True:\n    try:\n        os.fork()\n"
        "    except OSError:\n        pass\n",
        "memory bomb": "blob = bytearray(8 * 2**30)\n" + GOOD,
        "memory creep": "def f(x):\n    hoard = []\n    while True:\n"
        "        hoard.append(bytearray(2**24))\n",
        "1 GB of output": "import sys\nfor _ in range(1024):\n    sys.stdout.write('x' * 2**20)\n"
        + GOOD,
        "read ~/.ssh": f"print(open({str(Path.home() / '.ssh' / 'id_rsa')!r}).read())\n" + GOOD,
        "read a host file": f"print(open({str(secret)!r}).read())\n" + GOOD,
        "read the database": f"print(open({str(database)!r}, 'rb').read())\n" + GOOD,
        "write outside tmp": "open('/usr/evalflow-was-here', 'w').write('x')\n" + GOOD,
        "network": f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=60)\n"
        + GOOD,
        "internet": "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=60)\n" + GOOD,
        "delete files": f"import shutil\nshutil.rmtree({str(tmp_path)!r})\n" + GOOD,
        "delete the interpreter": "import os, sys\nos.remove(sys.executable)\n" + GOOD,
        "exit early": "import os\nos._exit(0)\n",
    }
    reports = execution.run_tests([(GOOD, TESTS), *[(p, TESTS) for p in hostile.values()]])

    assert reports[0].all_passed
    for (name, _), report in zip(hostile.items(), reports[1:], strict=True):
        assert report.passed == 0, name
        assert all(o.reason for o in report.outcomes), name
    reasons = {name: r.outcomes[0].reason for name, r in zip(hostile, reports[1:], strict=True)}
    # the harness's per-test CPU alarm, or under heavy load the sandbox's own CPU kill
    assert any(
        why in reasons["infinite loop"] for why in ("TimeoutError", "CPU time limit", "wall time")
    )
    assert "CPU time limit" in reasons["C-level loop"] or "wall time" in reasons["C-level loop"]
    assert "MemoryError" in reasons["memory bomb"]
    assert "output limit" in reasons["1 GB of output"]
    for name in ("read ~/.ssh", "read a host file", "read the database"):
        assert "FileNotFoundError" in reasons[name], reasons[name]
    assert "Read-only file system" in reasons["write outside tmp"]
    # The sandbox's own loopback has nothing listening; the host's server is not reachable.
    assert "Connection refused" in reasons["network"]
    assert "Network is unreachable" in reasons["internet"]
    assert "exit code 0" in reasons["exit early"]

    assert secret.read_text() == "PRIVATE KEY" and database.exists()
    assert not Path("/usr/evalflow-was-here").exists()
    assert os.path.exists(execution.sandbox.python)
    time.sleep(0.5)
    assert accepted == []
    assert _harness_processes() == []


@needs_bwrap
def test_processes_are_limited_per_sandbox(execution: CodeExecution) -> None:
    program = (
        "import os\n"
        "def f(x):\n"
        "    started = 0\n"
        "    try:\n"
        "        for _ in range(64):\n"
        "            if os.fork() == 0:\n"
        "                import time; time.sleep(2); os._exit(0)\n"
        "            started += 1\n"
        "    except OSError:\n"
        "        pass\n"
        "    return started\n"
    )
    report = execution.run_tests([(program, ("assert f(0) == 64",))])[0]
    assert not report.all_passed
    started = int(report.outcomes[0].reason.rsplit("got ", 1)[1])
    assert 0 < started < execution.limits.processes


@needs_bwrap
def test_a_program_sees_an_empty_private_tmp_and_no_home(execution: CodeExecution) -> None:
    program = (
        "import os\n"
        "open('/tmp/scratch', 'w').write('ok')\n"
        "def f(x):\n"
        "    return sorted(os.listdir('/'))\n"
    )
    report = execution.run_tests([(program, ("assert f(0) == []",))])[0]
    listing = report.outcomes[0].reason
    assert "'tmp'" in listing and "'usr'" in listing
    assert "'root'" not in listing and "'home'" not in listing and "'work'" not in listing


class _Overlap:
    """A sandbox's ``run`` that counts the runs under way at once (``peak``); with
    ``until`` it holds each run until that many were under way together (or a minute
    passed), so that what runs at once does not depend on how fast each one is."""

    def __init__(self, sandbox: Sandbox, until: int | None = None) -> None:
        self.inner, self.until = sandbox.run, until
        self.running = self.peak = 0
        self.changed = threading.Condition()

    def run(self, *args: object, **kwargs: object) -> RunResult:
        with self.changed:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.changed.notify_all()
            if self.until is not None:
                self.changed.wait_for(lambda: self.peak >= self.until, timeout=60)
        try:
            return self.inner(*args, **kwargs)
        finally:
            with self.changed:
                self.running -= 1


@needs_bwrap
def test_sandboxes_run_at_once_up_to_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = [(GOOD + f"# {i}\n", TESTS) for i in range(5)]
    parallel = CodeExecution(Sandbox(), max_parallel=4)
    overlap = _Overlap(parallel.sandbox, until=4)
    monkeypatch.setattr(parallel.sandbox, "run", overlap.run)
    assert all(r.all_passed for r in parallel.run_tests(jobs))
    assert overlap.peak == 4
    serial = CodeExecution(Sandbox(), max_parallel=1)
    one_at_a_time = _Overlap(serial.sandbox)
    monkeypatch.setattr(serial.sandbox, "run", one_at_a_time.run)
    assert all(r.all_passed for r in serial.run_tests(jobs[:2]))
    assert one_at_a_time.peak == 1


def test_without_bubblewrap_code_is_refused_and_never_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name, **kwargs: None)
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        Sandbox()

    code_metrics._sandbox.cache_clear()
    monkeypatch.setattr(code_metrics, "_reports", type(code_metrics._reports)())
    marker = tmp_path / "ran"
    program = f"open({str(marker)!r}, 'w').write('ran unsandboxed')\n" + GOOD
    case = Case(id="c", input="write f", metadata={"entry_point": "f", "tests": list(TESTS)})
    try:
        with pytest.raises(SandboxUnavailable, match="never runs model-written code outside"):
            get_metric("pass@1").score([f"```python\n{program}```"], [case])
    finally:
        code_metrics._sandbox.cache_clear()
    assert not marker.exists()


def test_a_broken_bubblewrap_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "bwrap"
    fake.write_text(
        "#!/bin/sh\necho 'bwrap: No permissions to creating new namespace' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    if shutil.which("prlimit", path="/usr/bin:/bin") is None:
        pytest.skip("prlimit (util-linux) is not installed")
    with pytest.raises(SandboxUnavailable, match="failed to start a sandbox") as info:
        Sandbox(bwrap=str(fake))
    assert "apt-get install bubblewrap" in str(info.value)


class _HarnessWriting:
    """A sandbox whose harness reports the given events: what a harness that went wrong
    could write. Not a sandbox: nothing runs."""

    python = "python3"
    enforcement = "none"

    def __init__(self, events: list[object]) -> None:
        self.events = events

    def run(self, argv: list[str], stdin: bytes, limits: Limits, report: bool) -> RunResult:
        lines = "".join(f"{json.dumps(event)}\n" for event in self.events)
        return RunResult(0, b"", 0.01, report=lines.encode())


def test_malformed_harness_events_fail_the_test_not_the_sweep() -> None:
    events = [
        {"loaded": True},
        {"cpu_s": "not-a-number"},
        {"cpu_s": None},
        {"cpu_s": float("nan")},
        {"cpu_s": [1]},
        {"test": 0, "passed": "yes", "reason": ""},
        {"test": 1, "passed": True, "reason": 5},
        {"test": True, "passed": True, "reason": ""},
        {"test": 2, "passed": True, "reason": ""},
        {"test": 3, "passed": True, "reason": "", "extra": {}},
        ["not", "an", "object"],
        "text",
    ]
    execution = CodeExecution(_HarnessWriting(events))  # type: ignore[arg-type]
    tests = ("assert f(0) == 0", "assert f(1) == 1", "assert f(2) == 2", "assert f(3) == 3")
    (report,) = execution.run_tests([("def f(x): return x", tests)])
    assert [o.passed for o in report.outcomes] == [False, False, True, False]
    assert all(o.reason.startswith("malformed report: ") for o in report.outcomes if not o.passed)
    assert report.cpu_s == 0.0
