"""Benchmark suites: the data model (``_model``: Suite, Case, Message, task types) and
the loader that validates a suite's ``.jsonl`` and ``.suite.yaml`` (``_load``; imported
on first use, because it checks metric names and the metrics name ``Case``)."""

from __future__ import annotations

from evaluation._lazy import lazy_exports
from evaluation.suites._model import (
    TASK_TYPES,
    Case,
    Message,
    Role,
    Suite,
    TaskType,
    suite_file_problem,
)

__all__ = [
    "TASK_TYPES",
    "Case",
    "ForgeableTestWarning",
    "Message",
    "Role",
    "Suite",
    "TaskType",
    "load_suite",
    "suite_file_problem",
    "suite_paths",
]


__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ForgeableTestWarning": "evaluation.suites._load",
        "load_suite": "evaluation.suites._load",
        "suite_paths": "evaluation.suites._load",
    },
    globals(),
)
