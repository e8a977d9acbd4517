"""What `evalflow plan` spends reading earlier runs' measurements
(``evaluation.storage.throughput.measured_throughput``: per host and config, the count,
the median latency, the mean output tokens) from a results database holding one
experiment of ``--size`` real generations (``view_paging.fill``: 20 configs, 5 samples a
case from 50,000). Prints the CPU time of this process for the call (median of
``--runs``; on PostgreSQL the server's CPU is not in it, the wall time is printed
beside) and a digest of the figures, so that two versions can be checked to give the
same numbers, with the load average.

    .venv/bin/python benchmarks/perf/plan_history.py [--size 100000] [--runs 5]
        [--keep DIR] [--postgres postgresql+psycopg2://postgres@127.0.0.1:5432/NAME]

``--keep DIR`` keeps the SQLite database for the next run; ``--postgres URL`` also times
a PostgreSQL database at URL (filled when it has no generations yet; it must exist).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).parent))

from sqlalchemy import text  # noqa: E402

from evaluation.storage.db import make_engine, session_scope  # noqa: E402
from evaluation.storage.throughput import measured_throughput  # noqa: E402


def filled(url: str, size: int) -> None:
    """``url`` holding an experiment of about ``size`` generations (kept if it has one)."""
    from cli_start import shape
    from view_paging import fill

    engine = make_engine(url)
    with engine.connect() as connection:
        if connection.execute(text("SELECT COUNT(*) FROM generations")).scalar():
            return
    fill(engine, *shape(size))
    engine.dispose()


def timed(url: str, runs: int) -> tuple[float, float, str]:
    """Median CPU and wall seconds of ``measured_throughput`` on host "perf", and a
    digest of what it returned."""
    engine = make_engine(url)
    cpu, wall, digest = [], [], ""
    for _ in range(runs):
        with session_scope(engine) as session:
            c0, w0 = time.process_time(), time.perf_counter()
            found = measured_throughput(session, ["perf"])
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        figures = sorted((m.config_hash, m.generations, m.latency_s, m.mean_tokens) for m in found)
        digest = hashlib.sha256(repr(figures).encode()).hexdigest()[:12]
    engine.dispose()
    return statistics.median(cpu), statistics.median(wall), digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--postgres")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="plan-history-"))
    folder.mkdir(parents=True, exist_ok=True)
    urls = {"sqlite": f"sqlite:///{folder / f'plan-history-{args.size}.db'}"}
    if args.postgres:
        urls["postgresql"] = args.postgres
    for kind, url in urls.items():
        filled(url, args.size)
        cpu, wall, digest = timed(url, args.runs)
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(
            f"{kind:<10} {args.size:,} generations: measured_throughput {cpu:.3f} s CPU, "
            f"{wall:.3f} s wall (median of {args.runs}); figures {digest}; load {load}"
        )


if __name__ == "__main__":
    main()
