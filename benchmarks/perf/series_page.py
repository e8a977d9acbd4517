"""The monitor's series page (``/series/NAME``) through the real app (Starlette's test
client: routing, the watch, rendering; no network), on SQLite: a series of ``--nights``
completed nights of ``--configs`` configs × 60 cases (exact_match and the operational
streams), its first request and ``--repeat`` more, CPU and wall time each, and the load.
The page runs the whole watch on every request (it draws every stream's nights; the kept
verdict, ``evaluation/series/_verdict.py``, holds only what the gauges and the bank read).

Run: ``python benchmarks/perf/series_page.py [--nights 30] [--configs 4] [--repeat 5]``.
Figures: docs/monitor.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fastapi.testclient import TestClient

from evaluation.storage.db import make_engine, session_scope
from evaluation.view.app import create_app
from tests.support.results_db import make_config
from tests.support.series_db import add_nights


def _request(client: TestClient, path: str) -> tuple[float, float]:
    """CPU and wall seconds of one request (the app runs in this process)."""
    cpu, wall = time.process_time(), time.perf_counter()
    answer = client.get(path)
    assert answer.status_code == 200, answer.text[:300]
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nights", type=int, default=30)
    parser.add_argument("--configs", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    configs = tuple(make_config(f"m{i}:1b") for i in range(args.configs))
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{folder}/results.db")
        with session_scope(engine) as session:
            add_nights(session, args.nights, series="s", configs=configs, seed=1)
        client = TestClient(create_app(engine))
        first = _request(client, "/series/s")
        repeats = [_request(client, "/series/s") for _ in range(args.repeat)]
    cpu = statistics.median(r[0] for r in repeats)
    wall = statistics.median(r[1] for r in repeats)
    print(
        f"/series/s, {args.nights} nights x {args.configs} configs x 60 cases "
        f"({3 * args.configs} streams): first request {first[0]:.2f} s CPU / {first[1]:.2f} s "
        f"wall, then median {cpu:.2f} s CPU / {wall:.2f} s wall of {args.repeat} "
        f"(load {os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    main()
