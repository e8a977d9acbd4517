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

Cycles made meanwhile are still collected.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_EVERY = 50_000  # allocations between young collections (Python's default: 700)


def fewer_collections() -> None:
    """Collect the young generation every ``YOUNG_EVERY`` allocations in this process
    (the older generations' thresholds as they were)."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_EVERY, middle, old)


@contextmanager
def settled_heap() -> Iterator[None]:
    """Freeze what is alive now for the block; unfrozen when it ends."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
