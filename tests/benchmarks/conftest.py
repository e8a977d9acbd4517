"""The benchmark scripts (benchmarks/perf/) imported as their own modules: they import
each other by name, so their folder is put on the path while a test module uses them."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.conftest import REPO


def _perf_module(name: str) -> Iterator[ModuleType]:
    sys.path.insert(0, str(REPO / "benchmarks/perf"))
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(str(REPO / "benchmarks/perf"))


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    """benchmarks/perf/selector_benchmark.py."""
    yield from _perf_module("selector_benchmark")


@pytest.fixture(scope="module")
def paired() -> Iterator[ModuleType]:
    """benchmarks/perf/selector_paired.py."""
    yield from _perf_module("selector_paired")


@pytest.fixture(scope="module")
def real_engine() -> Iterator[ModuleType]:
    """benchmarks/perf/real_engine_parallel.py."""
    yield from _perf_module("real_engine_parallel")


@pytest.fixture(scope="module")
def trends_bench() -> Iterator[ModuleType]:
    """benchmarks/perf/trends_benchmark.py."""
    yield from _perf_module("trends_benchmark")
