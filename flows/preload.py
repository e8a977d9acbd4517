"""Modules a flow needs only after its generations, loaded while the hosts generate.

Importing the comparison and report stages (scipy.stats, statsmodels: ~1 s of CPU)
when `evalflow run` starts put them on the critical path beside Prefect's server
start-up; during generation the process mostly waits on the hosts. A module still
loading when the flow reaches it is simply waited for (Python's import lock).
matplotlib is not among them: it loads when the report draws its figures
(``evaluation/report/html.py``), so a run does not hold its ~27 MiB through the
comparison stage, a run's highest point of memory (issue 46).

Not while the event loop is busy, though (``preload_when_idle``): against a fast many-slot
host the client's loop is what limits the rate, and the import thread took the GIL from
it, ~1.8 s of CPU in a 64-slot parallel map's generation phase
(benchmarks/perf/pipeline_throughput.py, py-spy), most of it as the lanes started. Nor
while the process is busy off the loop: with ``run --workers N`` the loop idles while
threads read the workers' records, and the import (scipy's, ~40% of the process's
GIL-held samples over 4 s) slowed the dispatch so much that when the first chunks of a
64-slot host ended together their next ones took ~0.6 s to start, the host nearly idle
(16 cores, benchmarks/perf/throughput_goal.py --profile).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import threading
import time
from collections.abc import Callable

from evaluation.run._in_flight import cases_in_flight


def preload(*modules: str) -> threading.Thread:
    """Import ``modules`` in a daemon thread; an import error surfaces later, where the
    flow imports the module itself."""

    def load() -> None:
        for name in modules:
            with contextlib.suppress(Exception):  # raised again where the flow imports it
                importlib.import_module(name)

    thread = threading.Thread(target=load, name="evalflow-preload", daemon=True)
    thread.start()
    return thread


def preload_while_generating(*modules: str, beside_others: bool) -> asyncio.Task | None:
    """``preload_when_idle(*modules)``, or nothing where ``beside_others``: other
    processes of the run (lane workers, a record writer process) hold memory while the
    hosts generate, so the generation phase is the run's peak of memory, and the
    modules (pandas, pyarrow, scipy: ~85 MiB) loaded then raised it: 100,000
    generations with ``--workers 2``, 657 MiB for the tree where they were loaded by
    then, 582 where they were not (the idle test passes or not with the machine's
    load; benchmarks/perf/results/issue46-stop79-2026-11-29.md). The stages import
    them after the phase, when those processes are gone."""
    return None if beside_others else preload_when_idle(*modules)


CALM_S = 0.5  # the loop idle this long before the preload starts
TICK_S = 0.05
LATE_S = 0.005  # a tick woken this much late: the loop was busy
BUSY_SHARE = 0.25  # the process used more than this share of a core over a tick: busy


def preload_when_idle(*modules: str) -> asyncio.Task:
    """``preload(*modules)`` once this event loop and process have been idle for
    ``CALM_S`` while cases are in flight: soon where the hosts are slow, never while a
    fast host keeps the loop or the process busy (the flow then imports them where it
    needs them). Not before the
    first case is sent: the phase's start waits on the Prefect API, idle, and a preload
    begun there ran on as the lanes started. Cancel the task when generation ends."""
    return asyncio.create_task(
        when_idle(lambda: preload(*modules), working=lambda: cases_in_flight() > 0)
    )


async def when_idle(
    then: Callable[[], object],
    *,
    working: Callable[[], bool] = lambda: True,
    calm_s: float = CALM_S,
    late_s: float = LATE_S,
    busy_share: float = BUSY_SHARE,
    cpu_time: Callable[[], float] = time.process_time,
) -> None:
    """Call ``then()`` once every tick of the last ``calm_s`` woke at most ``late_s``
    late (nothing else held the loop) and the process's threads together used at most
    ``busy_share`` of a core over it, while ``working()`` said True."""
    loop = asyncio.get_running_loop()
    calm = 0.0
    while calm < calm_s:
        asked, cpu = loop.time(), cpu_time()
        await asyncio.sleep(TICK_S)
        took = loop.time() - asked
        calm_tick = working() and took - TICK_S <= late_s and cpu_time() - cpu <= busy_share * took
        calm = calm + TICK_S if calm_tick else 0.0
    then()
