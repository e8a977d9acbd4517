"""Which assertion shapes a program can forge, against the real sandbox: many shapes of
hidden test (parenthesised, ``bool()``, ``is True``, ``== True``, ``not``, ``!=``, ``in``,
chained, nested calls, builtins and helpers around the call) run against an always-equal
forger, a correct and an honest wrong program. Every shape the suite loader does not flag
(``ForgeableTestWarning``) fails the forger, every shape the forger passes is flagged, and
honest programs get Python's own verdict either way. All tests of a program run in one
sandbox, so the whole battery costs three sandboxes. Needs bubblewrap (CI installs it)."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import pytest

from evaluation.sandbox import Limits, Sandbox
from evaluation.sandbox._programs import CodeExecution
from evaluation.suites import ForgeableTestWarning, load_suite
from evaluation.suites._code_tests import checked_in_process

HELPERS = "class Box:\n    def __init__(self, x):\n        self.x = x\n    def get(self):\n"
CORRECT = "def sq(x):\n    return x * x\n" + HELPERS + "        return sq(self.x)\n"
WRONG = "def sq(x):\n    return x * x + 1\n" + HELPERS + "        return sq(self.x)\n"
# Says yes to every comparison, truth test and membership, and shadows the builtins a
# test might lean on (the tests run in the program's namespace).
FORGER = (
    "class Yes:\n"
    "    def __eq__(self, other): return True\n"
    "    def __ne__(self, other): return False\n"
    "    __lt__ = __le__ = __gt__ = __ge__ = __contains__ = __eq__\n"
    "    def __bool__(self): return True\n"
    "    def __hash__(self): return 0\n"
    "    def __len__(self): return 1\n"
    "    def __abs__(self): return self\n"
    "    def __getitem__(self, i): return self\n"
    "def sq(x):\n    return Yes()\n" + HELPERS + "        return Yes()\n"
    "def bool(x):\n    return True\n"
)

# A call of the program, and its values for CORRECT and WRONG (both literals are tried).
CALLS = {"sq(2)": (4, 5), "sq(sq(2))": (16, 26), "sq(*[3])": (9, 10), "c.get()": (4, 5)}
ATOMS = (
    "{c} == {v}",
    "{v} == {c}",
    "{c} != {v}",
    "{c} is None",
    "{c} is not None",
    "{c} in [{v}, -1]",
    "{c} < {v} + 1",
    "{c} == {v} == {c}",
    "abs({c}) == {v}",
    "len([{c}]) == 1",
    "{c}",
)
WRAPS = (
    "{e}",
    "({e})",
    "bool({e})",
    "({e}) is True",
    "({e}) is False",
    "({e}) == True",
    "({e}) != False",
    "({e}) is not False",
    "not ({e})",
    "not not ({e})",
    "bool({e}) is True",
    "(({e}) is True) is True",
    "not (({e}) == False)",
)


def shapes() -> list[str]:
    tests = []
    for (call, values), atom, wrap in itertools.product(CALLS.items(), ATOMS, WRAPS):
        for value in values:
            expression = wrap.format(e=atom.format(c=call, v=value))
            prefix = "c = Box(2)\n" if call.startswith("c.") else ""
            tests.append(f"{prefix}assert {expression}")
    tests.append("r = sq(2)\nassert r == 4")  # a name the test binds: checked inside
    tests.append("c = Box(2)\nc = Box(3)\nassert c.get() == 9")  # bound twice: inside
    return tests


def python_verdict(program: str, test: str) -> bool:
    """What Python itself says of an honest program's test."""
    namespace: dict[str, object] = {"__name__": "solution"}
    exec(program, namespace)
    try:
        exec(test, namespace)
    except AssertionError:
        return False
    return True


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")
def test_only_the_shapes_the_harness_decides_go_unflagged_and_they_cannot_be_forged() -> None:
    tests = tuple(shapes())
    flagged = {test: checked_in_process(test) for test in tests}
    execution = CodeExecution(Sandbox(), Limits(cpu_s=30, wall_s=120), max_parallel=3)
    reports = execution.run_tests([(p, tests) for p in (FORGER, CORRECT, WRONG)])
    forged, correct, wrong = ({o.test: o for o in r.outcomes} for r in reports)

    for program, outcomes in ((CORRECT, correct), (WRONG, wrong)):
        for test in tests:
            expected = python_verdict(program, test)
            assert outcomes[test].passed is expected, (test, outcomes[test].reason)
    for test in tests:
        if not flagged[test]:
            assert not forged[test].passed, test
        if forged[test].passed:
            assert flagged[test], test
    unflagged = [t for t in tests if not flagged[t]]
    # Not vacuous: the attacker's shapes and their relatives are decided outside (and
    # fail the forger), and the forger does pass flagged shapes.
    for shape in (
        "assert (sq(2) == 4) is True",
        "assert bool(sq(2) == 4) is True",
        "assert (sq(2) == 4) == True",
        "assert not (sq(2) != 4)",
        "c = Box(2)\nassert c.get() == 4",
        "assert sq(sq(2)) == 16",
    ):
        assert shape in unflagged, shape
        assert correct[shape].passed and not forged[shape].passed, shape
    assert "assert sq(2) == 4 == sq(2)" not in unflagged
    assert sum(forged[t].passed for t in tests) > 100
    assert len(unflagged) > 100


def test_the_loader_flags_exactly_the_shapes_the_harness_leaves_inside(tmp_path: Path) -> None:
    """One warning per flagged test, each one line naming file:line and the field."""
    tests = shapes()
    (tmp_path / "c.suite.yaml").write_text(
        "name: c\nversion: '1'\ntask_type: code\ndefault_metrics: [pass@1]\n"
    )
    case = {"id": "a", "input": "x", "references": [CORRECT]}
    case["metadata"] = {"entry_point": "sq", "tests": tests}
    (tmp_path / "c.jsonl").write_text(json.dumps(case) + "\n")
    with pytest.warns(ForgeableTestWarning) as caught:
        load_suite(tmp_path / "c.jsonl")
    fields = [str(w.message).split(": ")[1] for w in caught]
    assert fields == [f"metadata.tests[{i}]" for i, t in enumerate(tests) if checked_in_process(t)]
    assert all("\n" not in str(w.message) for w in caught)
