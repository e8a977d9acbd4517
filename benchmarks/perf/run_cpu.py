"""Where an `evalflow` command's CPU goes, where py-spy is not available: the command
runs in this process while a thread reads every other thread's own CPU clock every
10 ms and charges each increase to the functions on that thread's stack (cumulative:
every function on it once; self: the innermost). Prints the process's CPU time (user +
sys), how much of it the samples caught, the wall time and the load average, then the
functions by cumulative and by self CPU. The embedded Prefect server is another process
and not in the figures.

    .venv/bin/python benchmarks/perf/run_cpu.py [--top 60] -- \
        run benchmarks/sweeps/demo-simulated.yaml -q

Everything after ``--`` is the `evalflow` command line. Set ``EVALFLOW_HOME`` and
``EVALFLOW_DATABASE_URL`` to keep the run away from your own results.
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import sys
import threading
import time
from pathlib import Path
from types import FrameType

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def _name(frame: FrameType) -> str:
    path = frame.f_code.co_filename
    for prefix in (str(REPO) + "/", "site-packages/"):
        if prefix in path:
            path = path.split(prefix, 1)[1]
    return f"{path}:{frame.f_code.co_name}"


class ThreadCpuSampler:
    """Charges each thread's CPU-clock increase to its stack at each tick."""

    def __init__(self, interval_s: float = 0.01) -> None:
        self.cumulative: collections.Counter[str] = collections.Counter()
        self.own: collections.Counter[str] = collections.Counter()
        self._clock: dict[int, float] = {}
        self._stop = threading.Event()
        self._interval_s = interval_s
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ThreadCpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = threading.get_ident()
        while not self._stop.wait(self._interval_s):
            frames = sys._current_frames()
            for ident, frame in frames.items():
                if ident == me:
                    continue
                try:
                    cpu = time.clock_gettime(time.pthread_getcpuclockid(ident))
                except (OSError, ProcessLookupError):  # the thread has just ended
                    continue
                spent, self._clock[ident] = cpu - self._clock.get(ident, cpu), cpu
                if spent > 0:
                    self._charge(frame, spent)

    def _charge(self, frame: FrameType | None, spent: float) -> None:
        assert frame is not None
        self.own[_name(frame)] += spent
        seen: set[str] = set()
        while frame is not None:
            name = _name(frame)
            if name not in seen:
                seen.add(name)
                self.cumulative[name] += spent
            frame = frame.f_back


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--top", type=int, default=60)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    from flows.cli.app import main as evalflow

    start = time.perf_counter()
    with ThreadCpuSampler() as sampler:
        code = evalflow(command)
    used = resource.getrusage(resource.RUSAGE_SELF)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"exit {code}: {used.ru_utime + used.ru_stime:.2f} s CPU (sampled "
        f"{sum(sampler.own.values()):.2f} s), {time.perf_counter() - start:.1f} s wall; "
        f"load {load}"
    )
    for title, counts in (("cumulative", sampler.cumulative), ("self", sampler.own)):
        print(f"\n{title} CPU, s")
        for name, seconds in counts.most_common(args.top):
            print(f"{seconds:7.2f}  {name}")


if __name__ == "__main__":
    main()
