"""A run's process gives Arrow (pandas' strings) the system allocator, so that what its
stages free goes back to the system with the rest (evaluation/run/_heap.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow
import pytest

from evaluation.run._heap import arrow_from_malloc

REPO = Path(__file__).resolve().parents[2]
BACKEND = (
    "from evaluation.run._heap import arrow_from_malloc\n"
    "arrow_from_malloc()\n"
    "import pandas as pd, pyarrow\n"
    "pd.Series(['a', 'b'], dtype='str')\n"
    "print(pyarrow.default_memory_pool().backend_name)\n"
)


def backend_in_fresh_process(**env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    environ["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-c", BACKEND],
        env=environ | env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


def test_before_pyarrow_is_imported_its_pool_is_the_system_allocator() -> None:
    assert backend_in_fresh_process() == "system"


def test_a_pool_the_user_chose_is_kept() -> None:
    assert backend_in_fresh_process(ARROW_DEFAULT_MEMORY_POOL="mimalloc") == "mimalloc"


def test_with_pyarrow_imported_the_default_pool_becomes_the_system_allocator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    before = pyarrow.default_memory_pool()
    try:
        arrow_from_malloc()
        assert pyarrow.default_memory_pool().backend_name == "system"
        assert os.environ["ARROW_DEFAULT_MEMORY_POOL"] == "system"  # the children's too
    finally:
        pyarrow.set_memory_pool(before)
