"""A run's process gives Arrow (pandas' strings) the system allocator, so that what its
stages free goes back to the system with the rest; what its lanes leave in cycles is
collected without walking what was alive before them (evaluation/run/_heap.py)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref
from pathlib import Path

import pyarrow
import pytest

from evaluation.run._heap import arrow_from_malloc, settled_heap

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


class _Node:
    """An object that can be in a reference cycle."""

    me: _Node | None = None


def test_what_a_settled_block_left_in_cycles_is_collected_as_it_ends_with_the_rest_frozen():
    """The collection that ends ``settled_heap(collect=True)`` runs before the unfreeze:
    it walks only what the block made, not what was alive before it (_heap)."""
    frozen_while_collecting: list[int] = []

    def seen(phase: str, info: dict) -> None:
        if phase == "start" and info["generation"] == 2:
            frozen_while_collecting.append(gc.get_freeze_count())

    was_enabled = gc.isenabled()
    gc.disable()  # no automatic collection takes the cycle first
    gc.callbacks.append(seen)
    try:
        with settled_heap(collect=True):
            made = _Node()
            made.me = made
            left = weakref.ref(made)
            del made
            assert left() is not None  # a cycle: only a collection frees it
        assert left() is None
        assert frozen_while_collecting and min(frozen_while_collecting) > 0
        assert gc.get_freeze_count() == 0  # given back to the collector afterwards
    finally:
        gc.callbacks.remove(seen)
        if was_enabled:
            gc.enable()
