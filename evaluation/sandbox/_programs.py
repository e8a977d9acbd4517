"""Running a program's hidden unit tests in the sandbox, many programs at once.

Each program runs in its own sandbox (evaluation.sandbox) under a small harness that
executes the program as a module, then each test statement on its own with a per-test
limit on CPU time (and a wider one on wall time), and reports every test's outcome and
its reason ("expected 3, got 2", "TimeoutError: test used more than 3 s of CPU time",
"NameError: ..."). Whatever the program does (loop forever, fork, allocate, print a
gigabyte, exit early), the run ends within the sandbox's limits and each unreported test
counts as failed with the reason (the limit that ended it). At most ``max_parallel``
sandboxes run at once; identical (program, tests) pairs run once per call.

The harness shares the process with the program, so a program written to forge its
report could; the sandbox protects the machine, not the score from deliberate gaming.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from evaluation.sandbox._bubblewrap import Limits, RunResult, Sandbox

DEFAULT_TEST_TIMEOUT_S = 3.0  # CPU seconds per test: a loaded machine does not fail tests
TEST_WALL_FACTOR = 5  # and wall seconds per test, for a test that sleeps or waits

# Runs inside the sandbox with `python3 -I -S -c`; reads its job as JSON on stdin.
HARNESS = r"""
import ast, json, os, signal, sys
job = json.loads(sys.stdin.read())
report = os.fdopen(os.dup(1), "w")
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
outcomes = []
failure = None
try:
    limit(True)
    exec(compile(job["program"], "solution.py", "exec"), namespace)
except BaseException as exc:
    failure = "program failed to load: " + reason(exc)
finally:
    limit(False)
for test in job["tests"]:
    if failure:
        outcomes.append([False, failure])
        continue
    try:
        limit(True)
        run(test, namespace)
        outcomes.append([True, ""])
    except BaseException as exc:
        outcomes.append([False, reason(exc)])
    finally:
        limit(False)
times = os.times()
cpu = times.user + times.system + times.children_user + times.children_system
report.write("\n" + job["nonce"] + json.dumps({"outcomes": outcomes, "cpu_s": cpu}) + "\n")
report.flush()
os._exit(0)
"""


@dataclass(frozen=True)
class TestOutcome:
    test: str
    passed: bool
    reason: str = ""


@dataclass(frozen=True)
class ProgramReport:
    """The outcome of each hidden test of one program, and how its run ended."""

    outcomes: tuple[TestOutcome, ...]
    wall_s: float
    killed: str | None = None
    cpu_s: float | None = None  # the harness process's CPU time, when it reported

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
        """A JSON summary for the score's detail: counts and each failure's reason."""
        failed = [{"test": o.test[:200], "reason": o.reason} for o in self.outcomes if not o.passed]
        body: dict[str, object] = {"passed": self.passed, "total": self.total, "failed": failed}
        if self.killed:
            body["killed"] = self.killed
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
        nonce = "@@evalflow-report-" + secrets.token_hex(8) + "@@"
        job = {
            "program": program,
            "tests": list(tests),
            "timeout_s": self.test_timeout_s,
            "wall_s": self.test_timeout_s * TEST_WALL_FACTOR,
        }
        result = self.sandbox.run(
            [self.sandbox.python, "-I", "-S", "-c", HARNESS],
            stdin=json.dumps(job | {"nonce": nonce}).encode(),
            limits=self.limits,
        )
        return _report(result, tests, nonce, self.limits)


def _report(result: RunResult, tests: tuple[str, ...], nonce: str, limits: Limits) -> ProgramReport:
    text = result.output.decode("utf-8", errors="replace")
    marker = text.rfind(nonce)
    if marker >= 0 and result.killed is None:
        line = text[marker + len(nonce) :].split("\n", 1)[0]
        try:
            reported = json.loads(line)
            outcomes = tuple(
                TestOutcome(t, bool(p), str(r))
                for t, (p, r) in zip(tests, reported["outcomes"], strict=True)
            )
            return ProgramReport(outcomes, result.wall_s, cpu_s=float(reported["cpu_s"]))
        except (ValueError, TypeError, KeyError):
            pass
    why = _why(result, limits)
    return ProgramReport(
        tuple(TestOutcome(t, False, why) for t in tests), result.wall_s, result.killed
    )


def _why(result: RunResult, limits: Limits) -> str:
    reasons = {
        "wall time": f"killed: wall time limit ({limits.wall_s:g} s)",
        "output": f"killed: output limit ({limits.output_bytes} bytes)",
        "SIGXCPU": f"killed: CPU time limit ({limits.cpu_s} s)",
        "SIGXFSZ": f"killed: file size limit ({limits.file_bytes} bytes)",
    }
    if result.killed in reasons:
        return reasons[result.killed]
    if result.killed:
        return f"killed by {result.killed}"
    tail = result.output.decode("utf-8", errors="replace").strip().splitlines()[-1:]
    last = f": {tail[0][:200]}" if tail else ""
    return f"the program ended (exit code {result.exit_code}) before the tests reported{last}"
