"""evaluation/run/_semaphore_names.py reads what multiprocessing keeps to itself: each
named semaphore registers the unlink of its name as a finalizer,
``util.Finalize(self, SemLock._cleanup, ...)`` in ``util._finalizer_registry``
(CPython 3.11 to 3.13). Checked here against the installed Python, so that a Python that
keeps them otherwise fails this test, not a run: there the names were not unlinked, and
a run killed with ``kill -9`` left its resource tracker warning of leaked semaphores."""

from __future__ import annotations

import multiprocessing
import sys
from pathlib import Path

import pytest

from evaluation.run._semaphore_names import SemaphoreNames

SHM = Path("/dev/shm")  # where Linux keeps a named semaphore, as sem.NAME

CHANGE = (
    f"Python {sys.version_info.major}.{sys.version_info.minor}'s multiprocessing no longer "
    "registers a named semaphore's unlink as util.Finalize(self, SemLock._cleanup, ...) in "
    "util._finalizer_registry: evaluation/run/_semaphore_names.py must find the names "
    "another way"
)


@pytest.mark.skipif(not SHM.is_dir(), reason="named semaphores are files in /dev/shm on Linux")
def test_the_names_made_in_the_block_are_unlinked_and_the_semaphores_work_on():
    context = multiprocessing.get_context("spawn")  # the lane workers' (_workers.py)
    try:
        with SemaphoreNames() as names:
            lock, event = context.Lock(), context.Event()
        file = SHM / f"sem.{lock._semlock.name.lstrip('/')}"
        assert file.exists(), CHANGE
        names.unlink()
    except AttributeError as exc:
        pytest.fail(f"{CHANGE} ({exc})")
    assert not file.exists(), CHANGE
    with lock:  # unlinked, the semaphores themselves work on
        event.set()
    assert event.is_set()
