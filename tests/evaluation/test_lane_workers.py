"""Lane worker processes (evaluation/run/_workers.py) with a light runner
(tests/support/lane_runner.py): records come back to the run's process, a chunk's
thefts stay exact across the two processes, and a worker that dies fails only its own
chunks and takes its seats with it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation.run._chunk import Chunk
from evaluation.run._work import WorkItem
from evaluation.run._workers import LaneWorkers, WorkerDied, shares
from evaluation.spec import Config, GenerationParams, HostSpec, PromptTemplate
from evaluation.suites import Case
from tests.support.lane_runner import Plan, open_runner, until

ROOT = Path(__file__).resolve().parents[2]
ITEMS = [
    WorkItem(
        Config("m", GenerationParams(), PromptTemplate("default")), Case(f"c{i}", "q", ("a",)), "s"
    )
    for i in range(10)
]


def test_shares_spread_a_hosts_slots_evenly_and_small_hosts_apart():
    assert shares(64, 4) == [16, 16, 16, 16]
    assert shares(6, 4) == [2, 2, 1, 1]
    assert shares(1, 3) == [1, 0, 0] and shares(1, 3, offset=1) == [0, 1, 0]


def test_a_chunk_in_a_worker_stores_its_records_here_and_its_unstarted_tail_can_be_taken(
    tmp_path,
):
    host = HostSpec("a", "http://a", slots=1)
    go = tmp_path / "go"

    async def main():
        workers = LaneWorkers(1, [host], open_runner, Plan(go, hold="c0", holding=True))
        stored = []
        try:
            await workers.ready()
            chunk = Chunk(ITEMS)
            running = asyncio.ensure_future(workers.run(host, chunk, stored.extend))
            await until(lambda: chunk.unstarted() == 9)  # the worker is on c0
            await until(lambda: workers.in_flight() == 1)  # its request is sent
            taken = chunk.steal(4)  # as an idle lane of another host would
            go.touch()
            outcome = await running
        finally:
            await workers.close()
        return taken, outcome, stored, chunk

    taken, outcome, stored, chunk = asyncio.run(main())
    assert taken == ITEMS[6:]
    assert [r.item for r in stored] == ITEMS[:6]  # each record as it was made
    assert [r.item for r in outcome.records] == ITEMS[:6]
    assert stored[0].result.text == "c0@a"
    assert list(chunk) == ITEMS[:6] and chunk.unstarted() == 0  # its state is back here


def test_a_worker_that_dies_fails_its_chunks_and_its_seats_go_with_it(tmp_path):
    host = HostSpec("a", "http://a", slots=2)
    go = tmp_path / "go"

    async def main():
        workers = LaneWorkers(2, [host], open_runner, Plan(go, hold="c0"))
        try:
            await workers.ready()
            stuck = Chunk(ITEMS[:3])
            running = asyncio.ensure_future(workers.run(host, stuck, lambda records: None))
            await until(lambda: stuck.unstarted() == 2)
            victim = workers.workers[0] if workers.workers[0].busy else workers.workers[1]
            os.kill(victim.process.pid, signal.SIGKILL)
            with pytest.raises(WorkerDied, match="ended"):
                await running
            go.touch()
            others = [await workers.run(host, Chunk(ITEMS[3:]), lambda r: None) for _ in "ab"]
            left = [w for w in workers.workers if w.alive]
            assert [w.busy for w in left] == [0]
            os.kill(left[0].process.pid, signal.SIGKILL)
            await until(lambda: not left[0].alive)
            with pytest.raises(WorkerDied, match="no lane worker left"):
                await workers.run(host, Chunk(ITEMS), lambda records: None)
        finally:
            await workers.close()
        return others

    others = asyncio.run(main())
    assert [[r.item for r in o.records] for o in others] == [ITEMS[3:], ITEMS[3:]]


def test_a_worker_exits_with_its_heap_frozen(tmp_path):
    """Python's exit collects; a worker's heap, given back to the collector as its chunks
    end, cost that collection ~0.8 s of CPU a worker. Frozen, it walks none of it."""
    note = tmp_path / "frozen"

    async def main():
        workers = LaneWorkers(
            1,
            [HostSpec("a", "http://a", slots=1)],
            open_runner,
            Plan(tmp_path / "go", exit_note=note),
        )
        try:
            await workers.ready()
            await workers.run(HostSpec("a", "http://a", slots=1), Chunk(ITEMS[:2]), lambda r: None)
        finally:
            await workers.close()
        return workers.workers[0].process.exitcode

    assert asyncio.run(main()) == 0
    assert int(note.read_text()) > 0


def test_a_lane_worker_imports_no_storage_module_and_no_prefect():
    """A worker stores nothing (its records go back to the run's writer): what it imports
    to run chunks leaves out the storage modules and SQLModel's tables (~0.8 s of CPU
    each worker's start), Prefect (~3.5 s: its slots are plain HTTP calls,
    tasks/adapters/slot_api.py) and numpy (~0.15 s: only a rag pipeline's retrieval and
    the simulated backend use it)."""
    code = (
        "import sys\n"
        "import evaluation.backends.ollama, evaluation.run._workers, tasks.lane_workers\n"
        "print(sorted(m for m in sys.modules if m.startswith('evaluation.storage')"
        " or m.startswith('sqlmodel') or m.split('.')[0] in ('prefect', 'numpy')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == "[]"


def test_the_writer_process_sends_back_what_failed_and_ends_when_closed(tmp_path):
    """A database without the results tables: the write fails in the writer process and
    the run's writer gets the error (a failed write fails the run's writer, as in one
    process)."""
    from evaluation.backends.base import GenerationResult
    from evaluation.errors import StorageError
    from evaluation.run._work import GenerationRecord
    from evaluation.run._writer_process import WriterProcess, shareable

    assert not shareable("sqlite://") and shareable(f"sqlite:///{tmp_path / 'r.db'}")
    result = GenerationResult("x", "stop", 0.001, 0.001)
    with WriterProcess.running(f"sqlite:///{tmp_path / 'r.db'}", 1) as writer:
        with pytest.raises(StorageError, match="no such table: generations"):
            writer.write([GenerationRecord(ITEMS[0], "a", 1, result=result)])
        process = writer._process
    assert not process.is_alive() and process.exitcode == 0


def test_only_a_run_with_lane_workers_stores_apart():
    """Lane workers send their records to a writer process; a one-process run stores
    from its own thread (apart, it was no faster on an idle machine and cost the
    process's start); neither stores apart in memory."""
    from evaluation.run._writer_process import stores_apart

    url = "sqlite:////tmp/r.db"
    assert stores_apart(url, workers=2)
    assert not stores_apart(url, workers=1)
    assert not stores_apart("sqlite://", workers=2)
    assert not stores_apart("sqlite:///:memory:", workers=2)


KILLED_RUN = """
import asyncio, os, pathlib, signal, sys
from evaluation.run._workers import LaneWorkers
from evaluation.spec import HostSpec
from tests.support.lane_runner import Plan, open_runner

async def main():
    host = HostSpec("a", "http://a", slots=1)
    workers = LaneWorkers(1, [host], open_runner, Plan(pathlib.Path(sys.argv[1])))
    await workers.ready()
    os.kill(os.getpid(), signal.SIGKILL)  # as `kill -9` of the run

asyncio.run(main())
"""


def test_a_run_killed_with_9_leaves_its_resource_tracker_no_semaphore_to_warn_of(tmp_path):
    """`kill -9` of `run --workers 2`: the workers exit as their pipe closes, and the
    resource tracker the run left printed "resource_tracker: There appear to be 6 leaked
    semaphore objects to clean up at shutdown" (the workers' shared lock and stop event)
    on the terminal after the run was gone (one worker's are as many). Their names are
    unlinked once the workers are ready. The tracker and the worker write to the same
    stderr: it is read to its end, once every one of them has exited."""
    done = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(tmp_path / "go")],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert "leaked semaphore" not in done.stderr, done.stderr
    assert done.stderr == "", done.stderr


STARTING_HELPER = """
import os, pathlib, sys, time

if __name__ == "__mp_main__":  # a helper process, importing the run's main module
    print(f"helper {os.getpid()} starting", flush=True)
    while not pathlib.Path(sys.argv[2]).exists():
        time.sleep(0.01)
elif __name__ == "__main__":
    import asyncio
    from evaluation.run._workers import LaneWorkers
    from evaluation.run._writer_process import WriterProcess
    from evaluation.spec import HostSpec
    from tests.support.lane_runner import Plan, open_runner, until

    async def lanes():
        workers = LaneWorkers(1, [HostSpec("a", "http://a", slots=1)], open_runner,
                              Plan(pathlib.Path(sys.argv[2])))
        await workers.ready()
        await workers.close()
        return workers.workers[0].process

    if sys.argv[1] == "lanes":
        process = asyncio.run(lanes())
    else:
        with WriterProcess.running(f"sqlite:///{sys.argv[2]}.db", 1) as writer:
            process = writer._process
    print(f"exit code {process.exitcode}", flush=True)
"""


@pytest.mark.parametrize("helper", ["lanes", "writer"])
def test_a_helper_process_ignores_a_ctrl_c_that_comes_while_it_starts(tmp_path, helper):
    """A terminal's Ctrl-C reaches the whole group, the run's helper processes too, and
    with ``--workers`` they import for seconds: one that comes then (here: while the
    helper imports the run's main module, the first thing a spawned process does) is
    ignored, not a KeyboardInterrupt traceback and a dead worker."""
    script, go = tmp_path / "run_helper.py", tmp_path / "go"
    script.write_text(STARTING_HELPER)
    root = str(ROOT)
    run = subprocess.Popen(
        [sys.executable, str(script), helper, str(go)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": root},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        starting = run.stdout.readline()
        assert starting.startswith("helper "), starting + run.stderr.read()
        os.kill(int(starting.split()[1]), signal.SIGINT)
        go.touch()
        out, err = run.communicate(timeout=120)
    finally:
        run.kill()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert out.strip() == "exit code 0" and run.returncode == 0, out + err


def test_lanes_in_two_workers_waiting_for_slots_are_one_hosts_wait_said_once(tmp_path):
    """Recheck R5 (stop 72): each lane, in each worker process, said its own wait for a
    slot (8 lines for one host), and the run counted the chunk's request as sent while
    the lane still waited. The workers' lanes tell the run's process instead: one
    ``SlotWaits`` sees both lanes of the host wait, says it once, and counts them as
    holding slots only once they do. Nor are they in flight for a stop (a Ctrl-C said
    "waiting up to 5 s for the 2 request(s) in flight" with none sent)."""
    from evaluation.run._slot_waits import SlotWaits

    host = HostSpec("a", "http://a", slots=2)
    go = tmp_path / "go"
    now, said = [0.0], []
    waits = SlotWaits(clock=lambda: now[0], say=said.append, whose=lambda h: [("'nightly'", 2)])

    async def main():
        workers = LaneWorkers(2, [host], open_runner, Plan(go, hold="c0"))
        try:
            await workers.ready()
            lanes = [waits.lane("a") for _ in "ab"]
            running = [
                asyncio.ensure_future(workers.run(host, Chunk(ITEMS[:2]), lambda r: None, lane))
                for lane in lanes
            ]
            await until(lambda: "a" in waits.waiting() and waits.waiting()["a"].lanes == 2)
            assert {w.busy for w in workers.workers} == {1}  # one lane in each worker
            assert waits.holding["a"] == 0
            # nothing on the wire: a stop does not wait for them (it counted 2)
            assert workers.in_flight() == 0
            now[0] = 31.0
            waits.tick()
            waits.tick()
            go.touch()
            await until(lambda: waits.holding["a"] == 2)
            assert waits.waiting() == {}
            outcomes = await asyncio.gather(*running)
            for lane in lanes:
                lane.close()  # the chunk is over (host_pool's lane closes so)
        finally:
            await workers.close()
        return outcomes

    outcomes = asyncio.run(main())
    assert [len(o.records) for o in outcomes] == [2, 2]
    assert said == [
        "2 lanes waiting 31 s so far for a free slot of host 'a' "
        "(held by another run: 'nightly', 2); runs on this machine take turns: a run hands "
        "a slot over between its requests once it has held it 5 s"
    ]
    assert waits.holding["a"] == 0
