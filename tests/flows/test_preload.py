"""`evalflow run` starts without the post-generation stages' heavy libraries (pandas
included: ~0.3 s of CPU before the first generation); they load in the background while
the hosts generate (flows/preload.py)."""

from __future__ import annotations

import asyncio
import time

import pytest

from flows.preload import when_idle
from tests.support.processes import python_output, python_run

# A fresh process (what a module loads is seen only in one that had not loaded it) imports
# the evaluate flow, says which heavy libraries that loaded, preloads the post-generation
# stages, and says again: one Prefect import (~3.5 s of CPU) for the two tests below, each
# of which imported it in a process of its own.
_EVALUATE_THEN_PRELOAD = (
    "import sys\n"
    "from flows.evaluate import POST_GENERATION_MODULES\n"
    "from flows.preload import preload\n"
    "late = ('scipy.stats', 'matplotlib', 'sklearn', 'pandas')\n"
    "print(sorted(m for m in late if m in sys.modules))\n"
    "preload(*POST_GENERATION_MODULES).join()\n"
    "heavy = ('scipy.stats', 'statsmodels', 'scipy.optimize', 'matplotlib')\n"
    "print(all(m in sys.modules for m in POST_GENERATION_MODULES))\n"
    "print(sorted(m for m in heavy if m in sys.modules))\n"
)


@pytest.fixture(scope="module")
def evaluate_then_preload() -> list[str]:
    """The lines :data:`_EVALUATE_THEN_PRELOAD` prints."""
    return python_output(_EVALUATE_THEN_PRELOAD).splitlines()


def test_the_evaluate_flow_starts_without_scipy_stats_matplotlib_or_pandas(evaluate_then_preload):
    assert evaluate_then_preload[0] == "[]"


def test_preload_imports_in_the_background_and_leaves_errors_to_the_importer():
    script = (
        "import sys\n"
        "from flows.preload import preload\n"
        "print('tasks.compare' in sys.modules)\n"
        "preload('no_such_module_x', 'tasks.compare').join()\n"
        "print('tasks.compare' in sys.modules)\n"
    )
    done = python_run(script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"], done.stdout
    assert done.stderr == ""  # the failed import did not escape the thread


def test_the_preloaded_stages_leave_matplotlib_to_the_report_drawing(evaluate_then_preload):
    """matplotlib (~27 MiB) loads when the report draws, so a run does not hold it through
    its comparison stage; scipy.stats, statsmodels and scipy.optimize (~70 MiB) load
    nowhere in a run (evaluation/statistics/_plain.py; issue 46)."""
    assert evaluate_then_preload[1:] == ["True", "[]"], evaluate_then_preload


def test_the_preload_waits_while_the_event_loop_is_busy_and_starts_once_it_is_idle():
    """Against a fast many-slot host the client's loop limits the rate: the import
    thread must not take the GIL from it then (flows/preload.py)."""
    started: list[float] = []
    generating = False

    async def main() -> tuple[list[float], float]:
        nonlocal generating
        loop = asyncio.get_running_loop()
        waiting = asyncio.create_task(
            when_idle(
                lambda: started.append(loop.time()),
                working=lambda: generating,
                calm_s=0.2,
                late_s=0.03,
            )
        )
        await asyncio.sleep(0.5)  # idle, but nothing sent yet: waits
        generating = True
        for _ in range(8):  # busy: every tick of the waiter wakes >= 0.1 s late
            time.sleep(0.1)
            await asyncio.sleep(0)
        idle_since = loop.time()
        await asyncio.wait_for(waiting, 60)
        return started, idle_since

    started_at, idle_since = asyncio.run(main())
    assert len(started_at) == 1 and started_at[0] >= idle_since + 0.2


def test_the_preload_waits_while_the_process_is_busy_off_the_loop():
    """With ``run --workers N`` the loop idles while the process's threads read the
    workers' records: an import then slowed the dispatch (flows/preload.py). The
    process's CPU clock here runs a core and a half while ``busy``, the loop idle."""
    started: list[float] = []
    busy = True
    cpu = [0.0]
    last = [time.monotonic()]

    def cpu_time() -> float:
        now = time.monotonic()
        cpu[0] += (now - last[0]) * (1.5 if busy else 0.0)
        last[0] = now
        return cpu[0]

    async def main() -> float:
        nonlocal busy
        loop = asyncio.get_running_loop()
        waiting = asyncio.create_task(
            when_idle(
                lambda: started.append(loop.time()), calm_s=0.2, late_s=1.0, cpu_time=cpu_time
            )
        )
        await asyncio.sleep(0.6)
        assert not started  # the loop was idle, the process was not
        busy = False
        idle_since = loop.time()
        await asyncio.wait_for(waiting, 60)
        return idle_since

    idle_since = asyncio.run(main())
    assert len(started) == 1 and started[0] >= idle_since + 0.1  # calm ticks after it


def test_nothing_is_preloaded_beside_the_runs_other_processes():
    """Lane workers or a record writer process alive while the hosts generate: that
    phase is the run's peak of memory, so the stages' modules wait for the stages."""
    from flows.preload import preload_while_generating

    async def main() -> None:
        assert preload_while_generating("json", beside_others=True) is None
        alone = preload_while_generating("json", beside_others=False)
        assert isinstance(alone, asyncio.Task)
        alone.cancel()

    asyncio.run(main())
