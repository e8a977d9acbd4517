"""Benchmark suites: the data model (``_model``: Suite, Case, Message, task types) and
the loader that validates a suite's ``.jsonl`` and ``.suite.yaml`` (``_load``; imported
on first use, because it checks metric names and the metrics name ``Case``)."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from evaluation.suites._model import TASK_TYPES, Case, Message, Role, Suite, TaskType

_LAZY = {"load_suite", "suite_paths"}

__all__ = [
    "TASK_TYPES",
    "Case",
    "Message",
    "Role",
    "Suite",
    "TaskType",
    "load_suite",
    "suite_paths",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'evaluation.suites' has no attribute {name!r}")
    value = getattr(import_module("evaluation.suites._load"), name)
    globals()[name] = value
    return value
