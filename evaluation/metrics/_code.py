"""Code metrics: extract the program from an output, run the case's hidden tests in the
sandbox, and score it (share of tests passed, pass@1, pass@k).

A code case carries ``metadata``: ``entry_point`` (the function to write), ``prefix``
(the signature and docstring given to the model, with any imports) and ``tests`` (the
hidden test statements, e.g. ``assert add(1, 2) == 3``).

Extraction rule, in order:

1. Fenced blocks (``` or ~~~ and an optional language tag, then a line break; the block
   ends at the next fence of the same kind, or with the output if there is none): the
   first block that defines ``def <entry_point>(`` (or ``class``), else the first block
   tagged python/py, else the first block.
2. No fence: if the output defines ``def <entry_point>(`` at the start of a line, the
   output from its first line that starts with ``def``, ``class``, ``import``, ``from`` or
   ``@`` (prose before the code is dropped).
3. Otherwise, and for a chosen block that does not define the entry point, the text is a
   completion of the prefix: the program is the prefix followed by it.

The prefix's import lines missing from the program are put in front of it.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from evaluation.errors import MetricError
from evaluation.metrics._base import Scored
from evaluation.metrics._pass_at_k import pass_at_k
from evaluation.sandbox import Sandbox
from evaluation.sandbox._programs import CodeExecution, ProgramReport
from evaluation.suites import Case

_FENCE = re.compile(r"(```|~~~)[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:\1|\Z)", re.S)
_CODE_START = re.compile(r"^(?:def |class |import |from |@)", re.M)
_IMPORT = re.compile(r"^(?:import |from \S+ import ).*$", re.M)


@dataclass(frozen=True)
class CodeTask:
    """What a code case asks for."""

    entry_point: str
    prefix: str
    tests: tuple[str, ...]

    @classmethod
    def of(cls, case: Case) -> CodeTask:
        meta = case.metadata
        entry, prefix, tests = meta.get("entry_point"), meta.get("prefix", ""), meta.get("tests")
        if not isinstance(entry, str) or not isinstance(tests, list) or not tests:
            raise MetricError(
                f"case '{case.id}' is not a code case: its metadata needs 'entry_point' "
                "(a function name) and 'tests' (a non-empty list of test statements)"
            )
        return cls(entry, str(prefix), tuple(str(t) for t in tests))


def extract_code(output: str, entry_point: str, prefix: str = "") -> str:
    """The program an output stands for (see the module docstring for the rule)."""
    defines = re.compile(rf"^[ \t]*(?:def|class) {re.escape(entry_point)}\b", re.M)
    blocks = [(m.group(2).lower(), m.group(3)) for m in _FENCE.finditer(output)]
    if blocks:
        chosen = next((code for _, code in blocks if defines.search(code)), None)
        if chosen is None:
            tagged = [code for tag, code in blocks if tag in ("python", "py", "python3")]
            chosen = tagged[0] if tagged else blocks[0][1]
        program = chosen if defines.search(chosen) else _complete(prefix, chosen)
    elif defines.search(output):
        start = _CODE_START.search(output)
        program = output[start.start() :] if start else output
    else:
        program = _complete(prefix, output)
    missing = [line for line in _IMPORT.findall(prefix) if line not in program]
    return "\n".join([*missing, program]) if missing else program


def _complete(prefix: str, completion: str) -> str:
    return prefix + completion if prefix.endswith("\n") or not prefix else f"{prefix}\n{completion}"


# --- running, with a bounded cache so pass@1, pass@k and tests_passed run each once ----

_CACHE_SIZE = 50_000
_reports: OrderedDict[str, ProgramReport] = OrderedDict()


@cache
def _sandbox() -> Sandbox:
    return Sandbox()


def code_execution() -> CodeExecution:
    """The sandbox (SandboxUnavailable if there is none) with the configured parallelism."""
    from evaluation.settings import sandbox_parallel  # read when code is scored, not before

    return CodeExecution(_sandbox(), max_parallel=sandbox_parallel())


def _key(execution: CodeExecution, program: str, tests: tuple[str, ...]) -> str:
    parts = (program, "\x00".join(tests), repr(execution.limits), repr(execution.test_timeout_s))
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def program_reports(
    outputs: Sequence[str], cases: Sequence[Case], execution: CodeExecution | None = None
) -> list[ProgramReport]:
    """Each output's test report (its program run in the sandbox, or taken from the cache)."""
    tasks = [CodeTask.of(case) for case in cases]
    execution = execution or code_execution()
    jobs = [
        (extract_code(output, task.entry_point, task.prefix), task.tests)
        for output, task in zip(outputs, tasks, strict=True)
    ]
    keys = [_key(execution, program, tests) for program, tests in jobs]
    todo = {key: job for key, job in zip(keys, jobs, strict=True) if key not in _reports}
    for key, report in zip(todo, execution.run_tests(list(todo.values())), strict=True):
        _reports[key] = report
        if len(_reports) > _CACHE_SIZE:
            _reports.popitem(last=False)
    return [_reports[key] for key in keys]


def _details(reports: Sequence[ProgramReport]) -> tuple[str | None, ...]:
    """What failed and why, for programs that failed a test (None for the others)."""
    return tuple(None if r.all_passed else r.detail() for r in reports)


def tests_passed(outputs, cases, results, labels) -> Scored:
    """Share of the case's hidden tests the program passes."""
    reports = program_reports(outputs, cases)
    values = np.array([r.passed / r.total for r in reports], dtype=float)
    return Scored(values, _details(reports))


def pass_at_1(outputs, cases, results, labels) -> Scored:
    """1.0 when the program passes every hidden test (its mean over samples is pass@1)."""
    reports = program_reports(outputs, cases)
    values = np.array([float(r.all_passed) for r in reports])
    return Scored(values, _details(reports))


def pass_at(k: int):
    """pass@k per problem from all its samples (one config's generations at a time),
    given to each of the problem's generations; NaN with fewer than k samples."""

    def score(outputs, cases, results, labels) -> Scored:
        reports = program_reports(outputs, cases)
        values = np.full(len(outputs), np.nan)
        details = list(_details(reports))
        by_case: dict[str, list[int]] = {}
        for i, case in enumerate(cases):
            by_case.setdefault(case.id, []).append(i)
        for case_id, positions in by_case.items():
            n = len(positions)
            if n < k:
                for i in positions:
                    details[i] = f"pass@{k} needs at least {k} samples of '{case_id}', got {n}"
                continue
            c = sum(reports[i].all_passed for i in positions)
            values[positions] = pass_at_k(n, c, k)
        return Scored(values, tuple(details))

    return score
