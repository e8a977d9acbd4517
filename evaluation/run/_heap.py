"""The garbage collector in a process that runs a sweep.

Such a process holds Prefect, SQLAlchemy, pandas and the run's work items: millions of
objects that live until the run ends, and it allocates millions more while it
generates (each request's objects live for its few milliseconds). With Python's
thresholds (a young collection every 700 allocations) the collector walked the live
ones again and again: at 4,000 generations on 64 slots the client spent 2.1 of its 15.8
s of CPU collecting (10 full collections of up to 0.21 s of CPU each, every lane stalled
meanwhile; 1,432 young ones); with what follows, 0.4 of 11.2 s
(benchmarks/perf/throughput_goal.py, collector callbacks timed in thread CPU, load 5-6).
So:

- ``fewer_collections``: a young collection every ``YOUNG_EVERY`` allocations; the whole
  run then made one full collection, not ten;
- ``settled_heap``: while the lanes generate, what was alive when they started is
  frozen out of the collector's walks (``gc.freeze``), and given back to it afterwards
  (a long-lived process, `evalflow serve`, runs many sweeps: what one leaves behind
  must stay collectable).

Cycles made meanwhile are still collected; ``settled_heap(collect=True)`` collects what
the block left in cycles as it ends, before the unfreeze, so that collection walks only
what was made since the freeze (the lanes left 43,000 objects in cycles at 100,000
generations, 10 MiB with what malloc kept), not the process's settled millions: a full
collection after the unfreeze took 0.24 s of CPU a run (1,200 generations, 268,000
objects frozen; 0.03 s so), 0.37 s in a test process. What the block made and its
callers drop after it ends (the slots' give-back writes: ~1,400 objects at 16 slots,
whatever the run's size) waits for the collector's next full collection.

And what the process frees goes back to the operating system (``release_freed``) after
each stage that reads a whole experiment: glibc keeps freed memory for reuse, so each
stage's peak stacked on what the earlier ones had freed (a 30,000-generation run's
scoring left 85 MiB behind in the process, its aggregation 39 MiB more). pandas keeps
its strings in Arrow buffers, which Arrow takes from its own allocator (mimalloc), out of
``malloc_trim``'s reach: there the stages of a 100,000-generation run left 48 MiB behind
one after the other, and each stage peaked higher (scores, aggregation, comparison and
report read standalone: 382 MiB at most, 346 from the system allocator). So a run's
process gives Arrow the system allocator (``arrow_from_malloc``).
"""

from __future__ import annotations

import ctypes
import functools
import gc
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

YOUNG_EVERY = 50_000  # allocations between young collections (Python's default: 700)


def fewer_collections() -> None:
    """Collect the young generation every ``YOUNG_EVERY`` allocations in this process
    (the older generations' thresholds as they were)."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_EVERY, middle, old)


@contextmanager
def settled_heap(*, collect: bool = False) -> Iterator[None]:
    """Freeze what is alive now for the block; unfrozen when it ends, after a full
    collection of what the block made when ``collect``."""
    gc.freeze()
    try:
        yield
    finally:
        if collect:
            gc.collect()  # the frozen are not walked: only what the block made
        gc.unfreeze()


def arrow_from_malloc() -> None:
    """Arrow's buffers from the system allocator in this process (and its children),
    unless the user chose another (``ARROW_DEFAULT_MEMORY_POOL``)."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"  # read when pyarrow makes its pool
    if "pyarrow" in sys.modules:  # imported already: its pool may be made
        import pyarrow

        pyarrow.set_memory_pool(pyarrow.system_memory_pool())


def release_freed() -> None:
    """Hand the memory this process has freed back to the operating system (glibc's
    ``malloc_trim``, which takes a few milliseconds; nothing where there is none)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc's; musl has none
    except OSError:
        return None
