"""Running a program's hidden unit tests in the sandbox, many programs at once.

Each program runs in its own sandbox (evaluation.sandbox) under a small harness that
executes the program as a module, then each test statement on its own with a per-test
limit on CPU time (and a wider one on wall time), and reports every test's outcome and
its reason ("expected 3, got 2", "TimeoutError: test used more than 3 s of CPU time",
"NameError: ...") as soon as the test ends. Whatever the program does (loop forever in C
where the per-test alarm cannot interrupt it, fork, allocate, print a gigabyte, exit), the
sandbox ends within its limits, and the outcomes already reported stand: the test that was
running fails with the reason (the limit that ended it), and the tests after it run in a
new sandbox, so one runaway test costs only itself. Budgets add up: the sandbox's CPU,
wall and output limits are shared by the tests it runs, so a test that meets one of them
after other tests used part of it is not failed but run again, first in a new sandbox
(where it has the whole budget, more than its own per-test limit), and fails only if it
meets the limit there. A program gets at most
``MAX_SANDBOXES`` sandboxes (its total cost is bounded by that many times the sandbox's
limits); tests still unrun then fail, saying so. A sandbox that ends before the program
has loaded fails every test with its reason. At most ``max_parallel`` sandboxes run at
once; identical (program, tests) pairs run once per call.

The harness shares the process with the program, so a program written to forge its
report could; the sandbox protects the machine, not the score from deliberate gaming.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from evaluation.sandbox._bubblewrap import Limits, RunResult, Sandbox

DEFAULT_TEST_TIMEOUT_S = 3.0  # CPU seconds per test: a loaded machine does not fail tests
TEST_WALL_FACTOR = 5  # and wall seconds per test, for a test that sleeps or waits
MAX_SANDBOXES = 4  # per program: the first, and more after tests that ended one
# Limits of the sandbox that every test it runs draws on: a test that meets one after
# other tests used part of it is run again, first in a new sandbox, and fails only there.
CUMULATIVE_LIMITS = frozenset({"wall time", "CPU time", "SIGXCPU", "output"})

# Runs inside the sandbox with `python3 -I -S -c`; reads its job as JSON on stdin, and
# writes one line per event (prefixed by the job's nonce) as it happens: the program
# loaded, each test's outcome, and at the end the CPU time used.
HARNESS = r"""
import ast, json, os, signal, sys
job = json.loads(sys.stdin.read())
report = os.fdopen(os.dup(1), "w")
harness = os.getpid()
def send(event):
    if os.getpid() != harness:  # a forked child that came back into the harness
        os._exit(0)
    report.write("\n" + job["nonce"] + json.dumps(event) + "\n")
    report.flush()
def cpu_limit(signum, frame):
    raise TimeoutError("test used more than %g s of CPU time" % job["timeout_s"])
def wall_limit(signum, frame):
    raise TimeoutError("test took longer than %g s" % job["wall_s"])
signal.signal(signal.SIGPROF, cpu_limit)
signal.signal(signal.SIGALRM, wall_limit)
def limit(on):
    signal.setitimer(signal.ITIMER_PROF, job["timeout_s"] if on else 0)
    signal.setitimer(signal.ITIMER_REAL, job["wall_s"] if on else 0)
def short(value):
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
def reason(exc):
    text = str(exc)
    name = type(exc).__name__
    return (name + ": " + text if text else name)[:300]
def run(source, namespace):
    tree = ast.parse(source)
    node = tree.body[0] if len(tree.body) == 1 else None
    if (isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare)
            and len(node.test.ops) == 1 and isinstance(node.test.ops[0], ast.Eq)):
        got = eval(compile(ast.Expression(node.test.left), "test", "eval"), namespace)
        want = eval(compile(ast.Expression(node.test.comparators[0]), "test", "eval"), namespace)
        if not got == want:
            raise AssertionError("expected %s, got %s" % (short(want), short(got)))
        return
    exec(compile(tree, "test", "exec"), namespace)
namespace = {"__name__": "solution"}
failure = None
try:
    limit(True)
    exec(compile(job["program"], "solution.py", "exec"), namespace)
except BaseException as exc:
    failure = "program failed to load: " + reason(exc)
finally:
    limit(False)
send({"loaded": failure is None})
for index, test in enumerate(job["tests"]):
    if failure:
        send({"test": index, "passed": False, "reason": failure})
        continue
    try:
        limit(True)
        run(test, namespace)
        outcome = (True, "")
    except BaseException as exc:
        outcome = (False, reason(exc))
    finally:
        limit(False)
    send({"test": index, "passed": outcome[0], "reason": outcome[1]})
times = os.times()
send({"cpu_s": times.user + times.system + times.children_user + times.children_system})
os._exit(0)
"""


@dataclass(frozen=True)
class TestOutcome:
    test: str
    passed: bool
    reason: str = ""


@dataclass(frozen=True)
class ProgramReport:
    """The outcome of each hidden test of one program, and how its runs ended.
    ``sandbox`` says what bounded the sandbox as a whole (``Limits.describe``)."""

    outcomes: tuple[TestOutcome, ...]
    wall_s: float
    killed: str | None = None  # the limit that ended the first sandbox cut short, if any
    cpu_s: float | None = None  # the harness processes' CPU time, as far as they reported
    sandbox: str = ""

    @property
    def passed(self) -> int:
        return sum(o.passed for o in self.outcomes)

    @property
    def total(self) -> int:
        return len(self.outcomes)

    @property
    def all_passed(self) -> bool:
        return self.total > 0 and self.passed == self.total

    def detail(self) -> str:
        """A JSON summary for the score's detail: counts and each failure's reason (and,
        when a limit ended a sandbox, which limit and what bounded the sandbox)."""
        failed = [{"test": o.test[:200], "reason": o.reason} for o in self.outcomes if not o.passed]
        body: dict[str, object] = {"passed": self.passed, "total": self.total, "failed": failed}
        if self.killed:
            body["killed"] = self.killed
            body["sandbox"] = self.sandbox
        return json.dumps(body)


@dataclass(frozen=True)
class CodeExecution:
    """How to run programs: the sandbox, its limits, the per-test time limit and how
    many sandboxes may run at once."""

    sandbox: Sandbox
    limits: Limits = field(default_factory=Limits)
    test_timeout_s: float = DEFAULT_TEST_TIMEOUT_S
    max_parallel: int = 2

    def run_tests(self, jobs: Sequence[tuple[str, tuple[str, ...]]]) -> list[ProgramReport]:
        """One report per (program, tests) job, in order."""
        unique = list(dict.fromkeys(jobs))
        workers = max(1, min(self.max_parallel, len(unique)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox") as pool:
            reports = dict(zip(unique, pool.map(lambda job: self._run(*job), unique), strict=True))
        return [reports[job] for job in jobs]

    def _run(self, program: str, tests: tuple[str, ...]) -> ProgramReport:
        """Run the tests, in as many sandboxes as runaway tests end (at most MAX_SANDBOXES)."""
        outcomes: dict[int, TestOutcome] = {}
        pending = list(range(len(tests)))
        wall, cpu, first_kill, why = 0.0, None, None, ""
        for _ in range(MAX_SANDBOXES):
            batch = pending
            result, events, tail = self._sandbox_run(program, [tests[i] for i in batch])
            wall += result.wall_s
            first_kill = first_kill or result.killed
            for event in events:
                if "cpu_s" in event:
                    cpu = (cpu or 0.0) + float(event["cpu_s"])
                elif isinstance(event.get("test"), int) and 0 <= event["test"] < len(batch):
                    i = batch[event["test"]]
                    passed, reason = bool(event.get("passed")), str(event.get("reason", ""))
                    outcomes.setdefault(i, TestOutcome(tests[i], passed, reason))
            pending = [i for i in batch if i not in outcomes]
            if not pending:
                break
            why = _why(result, self.limits, tail)
            if not any("loaded" in e for e in events):  # ended while loading the program
                outcomes.update({i: TestOutcome(tests[i], False, why) for i in pending})
                pending = []
                break
            running = pending[0]  # the test that was running when the sandbox ended
            if result.killed in CUMULATIVE_LIMITS and running != batch[0]:
                continue  # the tests before it used up the sandbox: it runs first in the next
            outcomes[running] = TestOutcome(tests[running], False, why)
            pending = pending[1:]
        why = f"not run: {MAX_SANDBOXES} sandboxes of this program ended early (last: {why})"
        outcomes.update({i: TestOutcome(tests[i], False, why) for i in pending})
        ordered = tuple(outcomes[i] for i in range(len(tests)))
        sandbox = self.limits.describe(self.sandbox.enforcement)
        return ProgramReport(ordered, wall, first_kill, cpu, sandbox)

    def _sandbox_run(
        self, program: str, tests: list[str]
    ) -> tuple[RunResult, list[dict[str, Any]], str]:
        """One sandbox for ``tests``: its result, the harness's events in order, and the
        last line the program itself printed."""
        nonce = "@@evalflow-report-" + secrets.token_hex(8) + "@@"
        job = {
            "program": program,
            "tests": tests,
            "timeout_s": self.test_timeout_s,
            "wall_s": self.test_timeout_s * TEST_WALL_FACTOR,
        }
        result = self.sandbox.run(
            [self.sandbox.python, "-I", "-S", "-c", HARNESS],
            stdin=json.dumps(job | {"nonce": nonce}).encode(),
            limits=self.limits,
        )
        events, printed = [], []
        for line in result.output.decode("utf-8", errors="replace").splitlines():
            if not line.startswith(nonce):
                printed.append(line)
                continue
            try:
                event = json.loads(line[len(nonce) :])
            except ValueError:
                continue  # cut short by the kill
            if isinstance(event, dict):
                events.append(event)
        tail = next((line.strip() for line in reversed(printed) if line.strip()), "")
        return result, events, tail


def _why(result: RunResult, limits: Limits, tail: str) -> str:
    """Why a sandbox ended before its harness reported every test."""
    reasons = {
        "wall time": f"killed: wall time limit ({limits.wall_s:g} s)",
        "output": f"killed: output limit ({limits.output_bytes} bytes)",
        "CPU time": f"killed: CPU time limit of the sandbox ({limits.cpu_s} s)",
        "SIGXCPU": f"killed: CPU time limit ({limits.cpu_s} s)",
        "SIGXFSZ": f"killed: file size limit ({limits.file_bytes} bytes)",
        "memory": f"killed: memory limit of the sandbox ({limits.memory_bytes // 2**20} MiB)",
    }
    if result.killed in reasons:
        return reasons[result.killed]
    if result.killed:
        return f"killed by {result.killed}"
    last = f": {tail[:200]}" if tail else ""
    return f"the program ended (exit code {result.exit_code}) before reporting this test{last}"
