"""Running a program's hidden unit tests in the sandbox, many programs at once.

Each program runs in its own sandbox (evaluation.sandbox) under a small harness that has
a second interpreter (the runner) execute the program as a module, then each test
statement on its own with a per-test
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

What decides a test is out of the program's reach. The harness (the sandbox's first
process) never runs the program: it starts a fresh interpreter (RUNNER) that loads the
program and runs each test's statements one at a time as the harness asks, and it keeps
to itself what they are compared with. An ``assert`` that reduces to ``<call> <op>
<literal>`` (``_shapes``: the program's own function called, ``==``, ``!=``, ``is`` or
``is not`` with True, False or None; ``not``, ``bool()`` and ``(...) is True`` folded in)
is checked by the harness: the runner sends the call's result as plain built-in data (ints,
floats, strings, bytes, lists, tuples, dicts, sets; a subclass counts as its built-in
base, any other object fails the test) and the harness compares it, so a custom
``__eq__`` counts for nothing. So is ``try: <statements>; raise AssertionError(...) /
except <Name>: pass`` (the runner names the exception's classes; the harness checks).
The program can write to the runner's channel, so the harness takes exactly one reply per
request, of the shape it asked for; anything else fails the test and the tests after it.
What a program can still forge: any other statement (``assert abs(f(x) - y) < 1e-9``,
``assert len(f(x)) == 3``, ``assert g(x)``) runs inside the program's interpreter, where a
program written to game its tests can make it look as if it ran without an exception, or
make its own objects' operators say yes. Suites flag such tests when they load
(``evaluation.suites``, with the same ``_shapes``).

The harness reports to evalflow on a pipe of its own (``Sandbox.run(report=True)``), never
on the output the program shares: the program's processes run as the same user as the
harness, so they could reopen any pipe they hold through ``/proc/self/fd`` in either
direction, but they never hold this one (bwrap's init closes it, the runner does not
inherit it), and the harness is non-dumpable, so nothing under ``/proc/<harness>/``
(``fd/``, ``mem``) opens for them. Whatever user evalflow runs as, the program can
neither read the report nor write to it; what it prints is only its output.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluation.sandbox import _shapes
from evaluation.sandbox._bubblewrap import Limits, RunResult, Sandbox

DEFAULT_TEST_TIMEOUT_S = 3.0  # CPU seconds per test: a loaded machine does not fail tests
TEST_WALL_FACTOR = 5  # and wall seconds per test, for a test that sleeps or waits
MAX_SANDBOXES = 4  # per program: the first, and more after tests that ended one
# Limits of the sandbox that every test it runs draws on: a test that meets one after
# other tests used part of it is run again, first in a new sandbox, and fails only there.
CUMULATIVE_LIMITS = frozenset({"wall time", "CPU time", "SIGXCPU", "output"})

# Runs the program, in a fresh interpreter the harness starts inside the sandbox: reads
# one request per line on the descriptor named by its first argument (the program, then
# each step of each test) and writes one reply per request on the second. It never sees
# what a value is compared with, so what it replies (the program can write replies too)
# is only what the program computed or raised.
RUNNER = r"""
import json, os, signal, sys
for high, fd in ((10, int(sys.argv[1])), (11, int(sys.argv[2]))):
    os.dup2(fd, high, inheritable=False)
    os.close(fd)
for low in (3, 4):  # always the same descriptors: 3 the requests, 4 the replies
    os.dup2(low + 7, low, inheritable=False)
    os.close(low + 7)
requests = os.fdopen(3, "r")
replies = os.fdopen(4, "w")
runner = os.getpid()
armed = running = False
expired = None
def reply(message):
    if os.getpid() != runner:  # a forked child that came back into the runner
        os._exit(0)
    replies.write(json.dumps(message) + "\n")
    replies.flush()
def expire(why):
    def handler(signum, frame):
        global expired
        if armed and expired is None:  # a second limit, or one after the test, is ignored
            expired = why
            if running:
                raise TimeoutError(why)
    return handler
limits = {}
def limit(on):
    global armed, expired
    armed = False
    signal.setitimer(signal.ITIMER_PROF, limits["timeout_s"] if on else 0)
    signal.setitimer(signal.ITIMER_REAL, limits["wall_s"] if on else 0)
    expired, armed = None, on
def reason(exc):
    if expired:
        return "TimeoutError: " + expired
    try:
        text = str(exc)
    except BaseException:
        text = ""
    name = type(exc).__name__
    return (name + ": " + text if text else name)[:300]
def plain(value, depth=0):
    # The value as a tree of built-in values only: the harness compares it, not the program.
    if depth > 100:
        raise RecursionError("nested more than 100 deep")
    if value is None or type(value) is bool:
        return value
    for kind, base in (("i", int), ("f", float), ("c", complex), ("s", str), ("b", bytes)):
        if isinstance(value, base):
            if kind == "i":
                return {"i": int.__repr__(value)}
            if kind == "f":
                return {"f": float.__repr__(value)}
            if kind == "c":
                parts = (complex.__getattribute__(value, n) for n in ("real", "imag"))
                return {"c": [float.__repr__(part) for part in parts]}
            if kind == "s":
                return {"s": str.__str__(value)}
            return {"b": bytes.hex(value)}
    if isinstance(value, dict):
        return {"d": [[plain(k, depth + 1), plain(v, depth + 1)] for k, v in dict.items(value)]}
    for kind, base in (("l", list), ("t", tuple), ("set", set), ("fs", frozenset)):
        if isinstance(value, base):
            return {kind: [plain(item, depth + 1) for item in base.__iter__(value)]}
    raise TypeError(type(value).__qualname__)
def step(request, namespace):
    global running
    kind, source = next((k, request[k]) for k in ("exec", "value", "raises") if k in request)
    answer = {"raised": None} if kind == "raises" else {"ok": True}
    try:
        running = not expired
        if kind == "value" and running:
            value = eval(compile(source, "test", "eval"), namespace)
            running = False
            try:
                answer = {"value": plain(value)}
            except TypeError as exc:
                answer = {"unplain": str(exc)}
        elif running:
            exec(compile(source, request.get("file", "test"), "exec"), namespace)
        running = False
    except BaseException as exc:
        running = False
        answer = {"error": reason(exc)}
        if kind == "raises" and not expired and isinstance(exc, Exception):
            answer = {"raised": [c.__name__ for c in type(exc).__mro__], "reason": reason(exc)}
    return {"error": "TimeoutError: " + expired} if expired else answer
namespace = {"__name__": "solution"}
for line in requests:
    request = json.loads(line)
    if "program" in request:
        limits = request
        handlers = {signal.SIGPROF: "test used more than %g s of CPU time" % request["timeout_s"],
                    signal.SIGALRM: "test took longer than %g s" % request["wall_s"]}
        for signum, why in handlers.items():
            signal.signal(signum, expire(why))
        limit(True)
        answer = step({"exec": request["program"], "file": "solution.py"}, namespace)
        limit(False)
        error = answer.get("error")
        reply({"error": "program failed to load: " + error} if error else {"ok": True})
        continue
    if request["first"]:
        limit(True)
    answer = step(request["step"], namespace)
    if request["last"] or "error" in answer:
        limit(False)
    reply(answer)
os._exit(0)
"""

# Runs inside the sandbox with `python3 -I -S -c`, after the source of _shapes (which
# statements it decides itself: shape_plan); reads its job as JSON on stdin. It never
# runs the program: it starts RUNNER (a fresh interpreter) to load the program and run
# the tests, sends it each test's statements but never what they are compared with, and
# decides each outcome itself from the plain values the runner sends back. It writes one
# line per event as it happens (the program loaded, each test's outcome, and at the end
# the CPU time used) on the sandbox's report pipe, whose descriptor is its one argument:
# the runner and its children never hold it (only stdout, stderr and their two pipes).
HARNESS = (
    Path(_shapes.__file__).read_text(encoding="utf-8")
    + r"""
import ast, ctypes, json, os, select, signal, sys, time
# Not dumpable (or the harness runs nothing): the program's processes, of the same user,
# can then open nothing under /proc/<harness>/ (fd/, mem): not its report pipe, not the
# tests' expected values in its memory.
if ctypes.CDLL(None).prctl(4, 0, 0, 0, 0) or ctypes.CDLL(None).prctl(3, 0, 0, 0, 0):
    raise SystemExit("the harness could not make itself non-dumpable")  # PR_SET/GET_DUMPABLE
report = os.fdopen(int(sys.argv[1]), "w")  # the report pipe: never inherited by the runner
os.set_inheritable(report.fileno(), False)
job = json.loads(sys.stdin.read())
def send(event):
    report.write(json.dumps(event) + "\n")
    report.flush()
def short(value):
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
def decode(tree, depth=0):
    if depth > 100:
        raise ValueError("nested too deeply")
    if tree is None or type(tree) is bool:
        return tree
    (kind, body), = tree.items()
    if kind == "i":
        return int(body)
    if kind == "f":
        return float(body)
    if kind == "c":
        return complex(float(body[0]), float(body[1]))
    if kind == "s" and type(body) is str:
        return body
    if kind == "b":
        return bytes.fromhex(body)
    if kind == "d":
        return {decode(k, depth + 1): decode(v, depth + 1) for k, v in body}
    items = [decode(item, depth + 1) for item in body]
    return {"l": list, "t": tuple, "set": set, "fs": frozenset}[kind](items)
MAX_REPLY = 2**20
class Runner:
    def __init__(self):
        requests, ask = os.pipe()
        self.replies, replies = os.pipe()
        os.set_inheritable(requests, True)
        os.set_inheritable(replies, True)
        self.pid = os.posix_spawn(  # not subprocess: its import costs more than the rest
            sys.executable,
            [sys.executable, "-I", "-S", "-c", job["runner"], str(requests), str(replies)],
            dict(os.environ), file_actions=[(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0)])
        os.close(requests)
        os.close(replies)
        self.requests = os.fdopen(ask, "w")
        self.buffer, self.ended = b"", False
    def ask(self, message):
        try:
            self.requests.write(json.dumps(message) + "\n")
            self.requests.flush()
        except OSError:
            pass  # the runner ended: its reply is the end of the file
    def reply(self):
        # The runner's next line as a dict, None at the end of the file; raises ValueError on
        # anything else.
        while b"\n" not in self.buffer and not self.ended and len(self.buffer) <= MAX_REPLY:
            chunk = os.read(self.replies, 65536)
            self.ended = not chunk
            self.buffer += chunk
        if b"\n" not in self.buffer:
            if self.ended and not self.buffer:
                return None
            raise ValueError("a reply without an end of line, or longer than %d bytes" % MAX_REPLY)
        line, self.buffer = self.buffer.split(b"\n", 1)
        message = json.loads(line)
        if type(message) is not dict:
            raise ValueError("a reply that is not an object")
        return message
    def quiet(self):
        # Whether nothing more was written than was asked for.
        if not self.buffer and not self.ended and select.select([self.replies], [], [], 0)[0]:
            chunk = os.read(self.replies, 65536)
            self.ended = not chunk
            self.buffer += chunk
        return not self.buffer
    def wait(self, timeout=None):
        # The runner's exit code (negative: the signal that ended it), None if it runs on.
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            pid, status = os.waitpid(self.pid, 0 if deadline is None else os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() > deadline:
                return None
            time.sleep(0.02)
    def end(self):
        # The runner ended on its own while asked something: end the same way.
        report.flush()
        code = self.wait(5)
        if code is None:
            raise ValueError("the program closed the harness's channel")
        if code < 0:
            signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
        os._exit(code)
def verdict(step, check, message):
    # (passed, reason) for one step's reply, or None to go on to the test's next step.
    keys = set(message)
    if keys == {"error"} and type(message["error"]) is str:
        return False, message["error"][:300]
    if "value" in step and keys == {"value"}:
        got = decode(message["value"])
        op, want = check
        if shape_holds(got, op, want):
            return None
        expected = short(want) if op in ("==", "is") else "anything but " + short(want)
        return False, "AssertionError: expected %s, got %s" % (expected, short(got))
    if "value" in step and keys == {"unplain"} and type(message["unplain"]) is str:
        what = (short(check[1]), message["unplain"][:100])
        return False, ("AssertionError: expected %s, got an object of type %s (only plain"
                       " built-in values are compared)" % what)
    if "raises" in step and message == {"raised": None}:
        return False, check[1][:300]
    if "raises" in step and keys == {"raised", "reason"} and type(message["reason"]) is str:
        if type(message["raised"]) is list and check[0] in message["raised"]:
            return None
        return False, message["reason"][:300]
    if "exec" in step and message == {"ok": True}:
        return None
    raise ValueError("an unexpected reply")
def run_test(runner, source):
    # (passed, reason); raises on a reply the runner would not write (the program did).
    try:
        planned = shape_plan(source)
        steps, checks = [s for s, _ in planned], [c for _, c in planned]
    except Exception as exc:
        return False, (type(exc).__name__ + ": " + str(exc))[:300]
    for number, (step, check) in enumerate(zip(steps, checks)):
        runner.ask({"step": step, "first": number == 0, "last": number == len(steps) - 1})
        message = runner.reply()
        if message is None:
            runner.end()
        if not runner.quiet():
            raise ValueError("more replies than requests")
        outcome = verdict(step, check, message)
        if outcome is not None:
            return outcome
    return True, ""
runner = Runner()
runner.ask({"program": job["program"], "timeout_s": job["timeout_s"], "wall_s": job["wall_s"]})
try:
    loaded = runner.reply()
    if loaded is None:
        runner.end()
    failure = None if loaded == {"ok": True} else str(loaded["error"])[:300]
except Exception as exc:
    failure = ("program failed to load: malformed reply (" + type(exc).__name__ + ")")
send({"loaded": failure is None})
for index, test in enumerate(job["tests"]):
    if failure:
        send({"test": index, "passed": False, "reason": failure})
        continue
    try:
        passed, why = run_test(runner, test)
    except Exception as exc:  # the runner never writes such a reply: the program did
        passed = False
        why = "the program wrote to the harness's channel: " + type(exc).__name__ + ": " + str(exc)
        why = why[:300]
        failure = "not run: " + why
        os.kill(runner.pid, signal.SIGKILL)
    send({"test": index, "passed": passed, "reason": why})
try:
    runner.requests.close()
except OSError:
    pass
runner.wait()
times = os.times()
send({"cpu_s": times.user + times.system + times.children_user + times.children_system})
os._exit(0)
"""
)


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
                    cpu = (cpu or 0.0) + _seconds(event["cpu_s"])
                elif type(event.get("test")) is int and 0 <= event["test"] < len(batch):
                    i = batch[event["test"]]
                    outcomes.setdefault(i, _outcome(tests[i], event))
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
        """One sandbox for ``tests``: its result, the harness's events in order (from its
        report pipe), and the last line the program itself printed."""
        job = {
            "program": program,
            "runner": RUNNER,
            "tests": tests,
            "timeout_s": self.test_timeout_s,
            "wall_s": self.test_timeout_s * TEST_WALL_FACTOR,
        }
        result = self.sandbox.run(
            [self.sandbox.python, "-I", "-S", "-c", HARNESS],
            stdin=json.dumps(job).encode(),
            limits=self.limits,
            report=True,
        )
        events = []
        for line in result.report.decode("utf-8", errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue  # cut short by the kill
            if isinstance(event, dict):
                events.append(event)
        printed = result.output.decode("utf-8", errors="replace").splitlines()
        tail = next((line.strip() for line in reversed(printed) if line.strip()), "")
        return result, events, tail


def _seconds(value: object) -> float:
    """A CPU time the harness reported; 0 for anything that is not a number of seconds."""
    if type(value) in (int, float) and math.isfinite(value) and value >= 0:  # type: ignore[arg-type]
        return float(value)  # type: ignore[arg-type]
    return 0.0


def _outcome(test: str, event: dict[str, Any]) -> TestOutcome:
    """A test's outcome from the harness's event; a malformed event fails the test (only
    the program could have written it), it never fails the sweep."""
    passed, reason = event.get("passed"), event.get("reason", "")
    if type(passed) is bool and type(reason) is str and set(event) <= {"test", "passed", "reason"}:
        return TestOutcome(test, passed, reason[:300])
    return TestOutcome(test, False, f"malformed report: {json.dumps(event)[:200]}")


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
