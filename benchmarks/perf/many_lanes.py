"""More lanes than the host has slots: a spec's host claiming ``--spec-slots`` (1,024)
on a stand-in of ``--slots`` (64) × ``--latency-ms`` (20), one process (issue 46's
`slots: 1024` runs). Each lane takes its own slot of the host's Prefect limit; when
the slots reserved for them went back before the lanes started (``RESERVE_HOLD_S``),
each took its slot in a write of its own, one at a time, on the embedded server.

    .venv/bin/python benchmarks/perf/many_lanes.py --generations 8000 \\
        --code main=/path/to/main --code after=. --rounds 3

Runs every ``--code`` checkout in turn, ``--rounds`` times (round 2 in reverse order, and
so on), each run a fresh ``evalflow run`` into a new SQLite file with its own embedded
server; prints per run: its wall, the seconds from the line saying 100% to the stage's
end (the scoring line), failed generations, the ``SlotUnavailable`` lines, the writes
that took slots (increments, the server's access lines are not kept: counted from the
run's own log where it says so, else '-'), and the CPU of the run's whole process tree.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks.perf.throughput_goal import (  # noqa: E402
    evalflow_command,
    evalflow_env,
    free_port,
    query_one,
    start_standin,
    write_inputs,
)

_HUNDRED = re.compile(r"\(100%\)")
_SCORING = re.compile(r"scoring…")


def one_run(name: str, code: Path, n: int, folder: Path, spec: Path) -> dict[str, object]:
    tag = f"{name}-{time.time():.0f}"
    db = folder / f"results-{tag}.db"
    log = folder / f"{tag}.log"
    command = evalflow_command(db, spec, f"lanes-{tag}")
    (folder / f"home-{tag}").mkdir()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    hundred = scoring = None
    with log.open("w") as out:
        proc = subprocess.Popen(
            command,
            cwd=code,
            env=evalflow_env(folder / f"home-{tag}", code),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            now = time.monotonic() - started
            out.write(f"{now:9.3f} {line}")
            if hundred is None and _HUNDRED.search(line):
                hundred = now
            if scoring is None and _SCORING.search(line):
                scoring = now
        code_ = proc.wait()
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    text = log.read_text(errors="replace")
    try:
        failed = query_one(db, "select count(*) from generations where status != 'ok'")[0]
    except Exception:
        failed = "?"
    return {
        "code": name,
        "exit": code_,
        "wall_s": round(wall, 1),
        "tail_s": round(scoring - hundred, 1) if hundred and scoring else None,
        "failed": failed,
        "slot_unavailable": text.count("SlotUnavailable"),
        "stayed_busy": text.count("stayed busy"),
        "cpu_s": round(cpu, 1),
        "load": round(os.getloadavg()[0], 1),
        "log": str(log),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generations", type=int, default=8000)
    parser.add_argument("--slots", type=int, default=64, help="the stand-in's slots (64)")
    parser.add_argument("--spec-slots", type=int, default=1024, help="the spec's (1024)")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument(
        "--code", action="append", required=True, help="NAME=DIR, an evalflow checkout"
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    codes = [(c.partition("=")[0], Path(c.partition("=")[2]).resolve()) for c in args.code]
    folder = Path(tempfile.mkdtemp(prefix="evalflow-lanes-"))
    port = free_port()
    standin = start_standin(port, args.slots, args.latency_ms, "fast", 2 * args.spec_slots)
    print(f"work folder: {folder}; load {os.getloadavg()}", flush=True)
    try:
        spec = write_inputs(folder, args.generations, port, args.spec_slots)
        for round_ in range(args.rounds):
            order = codes if round_ % 2 == 0 else codes[::-1]
            for name, code in order:
                figures = one_run(name, code, args.generations, folder, spec)
                print(f"round {round_ + 1}: {figures}", flush=True)
    finally:
        standin.kill()


if __name__ == "__main__":
    main()
