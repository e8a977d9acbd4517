"""The generation phase's tail in a model of the dispatch alone: one host of S slots, each
request L ms (an asyncio sleep: no HTTP, no Prefect, no lane workers), where a chunk's
lane may start it late (issue 46's 256 x 50 ms run on the lent H200: the last ~1,151
requests ran in waves after gaps, in chunks whose lanes had not started them for
seconds). Two models of who starts late, since the device did not say which:

- ``chunk``: any chunk, one an idle lane took from another's included, waits D s before
  its first item with probability P (a stall anywhere on a chunk's way to its worker);
- ``lane``: a fraction P of the lanes waits D s before each chunk (a worker whose seats
  start late), the others never.

Per checkout (``--code``, run in a process of its own, before and after in the same
minutes) and seed: the phase, when the queue emptied (the last chunk cut from it), the
tail after it and the requests open on average over it, chunks and items taken by idle
lanes. A model: its figures say what the dispatch's rules do with late starts, not what
a server or evalflow's client does (``throughput_goal.py`` and the device kit are those).

    python benchmarks/perf/dispatch_tail.py --code /tmp/before . --slots 64 \\
        --latency-ms 50 --generations 5120 --late 0.1 --delay-s 3 --who chunk --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import time
from pathlib import Path


def model(slots: int, latency_s: float, n: int, late: float, delay_s: float, who: str, seed: int):
    """One dispatch of ``n`` items; prints its figures on one line."""
    from evaluation.backends.base import GenerationResult
    from evaluation.run import _dispatch
    from evaluation.run._generate import ChunkOutcome
    from evaluation.run._work import GenerationRecord, WorkItem
    from evaluation.spec import Config, GenerationParams, HostSpec, PromptTemplate
    from evaluation.suites import Case

    rng = random.Random(seed)
    config = Config("m", GenerationParams(), PromptTemplate("default"))
    work = [WorkItem(config, Case(f"c{i}", "q", ("a",)), "s") for i in range(n)]
    result = GenerationResult(text="ok", done_reason="stop", latency_s=latency_s, ttft_s=0.0)
    spans: list[tuple[float, float]] = []
    cuts: list[float] = []
    slow_lanes: dict[asyncio.Task, bool] = {}
    start = time.perf_counter()
    take = _dispatch._Queue.take

    def timed_take(self, *args, **kwargs):  # when the queue empties: its last cut
        chunk = take(self, *args, **kwargs)
        if chunk is not None:
            cuts.append(time.perf_counter() - start)
        return chunk

    _dispatch._Queue.take = timed_take

    async def run(host, chunk):
        outcome = ChunkOutcome()
        if who == "lane":
            lane = asyncio.current_task()
            slow = slow_lanes.setdefault(lane, rng.random() < late)
        else:
            slow = rng.random() < late
        if slow:
            await asyncio.sleep(delay_s)
        while (item := chunk.start_next()) is not None:
            began = time.perf_counter() - start
            await asyncio.sleep(latency_s)
            spans.append((began, time.perf_counter() - start))
            outcome.records.append(GenerationRecord(item, host.name, 1, result=result))
        return outcome

    host = HostSpec("h", "http://h", slots=slots)
    report = asyncio.run(_dispatch.dispatch(work, [host], run))
    end = max(e for _, e in spans)
    empty = max(cuts)
    busy = sum(min(e, end) - max(s, empty) for s, e in spans if e > empty)
    open_ = busy / (end - empty) if end > empty else 0.0
    print(
        f"{end:.2f} | {n * latency_s / slots:.2f} | {empty:.2f} | {end - empty:.2f} | "
        f"{open_:.0f} | {report.chunks} | {sum(report.stolen.values())} | "
        f"{time.process_time():.1f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--code", type=Path, nargs="+", default=[Path(".")], help="checkouts")
    parser.add_argument("--slots", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--generations", type=int, default=5120)
    parser.add_argument("--late", type=float, default=0.1, help="P: chunks or lanes late")
    parser.add_argument("--delay-s", type=float, default=3.0, help="D: how late")
    parser.add_argument("--who", choices=("chunk", "lane"), default="chunk")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--one", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        slots, latency, n, late, delay, who, seed = args.one
        model(int(slots), float(latency), int(n), float(late), float(delay), who, int(seed))
        return
    print(
        f"{args.slots} slots x {args.latency_ms:g} ms, {args.generations} generations, "
        f"{args.who}s late {args.late:g} of the time by {args.delay_s:g} s"
    )
    print(
        "code | seed | phase s | ideal s | queue empty s | tail s | open in tail | chunks | "
        "taken by idle lanes | CPU s"
    )
    for seed in args.seeds:
        for code in args.code:
            one = [str(args.slots), str(args.latency_ms / 1000), str(args.generations)]
            one += [str(args.late), str(args.delay_s), args.who, str(seed)]
            env = os.environ | {"PYTHONPATH": str(code.resolve())}
            done = subprocess.run(
                [sys.executable, __file__, "--one", *one],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            print(f"{code} | {seed} | {done.stdout.strip()}", flush=True)


if __name__ == "__main__":
    main()
