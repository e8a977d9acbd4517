"""What the series watch adds to a Prometheus scrape of ``evalflow metrics``
(``evalflow_trend_alarm``, ``evalflow_trend_alarm_streams``): a scrape after a run of
some series was stored (the watch recomputed on every series) and one in between (one
small query), on SQLite, with ``--series`` series of ``--nights`` completed nights each
(4 configs × 60 cases, exact_match and the operational streams: ~28 streams a series).

Run: ``python benchmarks/perf/trend_scrape.py [--series 3] [--nights 30]``.
Figures: docs/operations.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from prometheus_client import generate_latest
from sqlmodel import Session

from evaluation.observability import metrics_registry
from evaluation.storage.db import make_engine
from tests.support.results_db import make_config
from tests.support.series_db import add_nights

CONFIGS = tuple(make_config(f"m{i}:1b") for i in range(4))


def _ms(registry) -> float:
    """The scrape's CPU time (ms): wall time on a shared machine is mostly waiting."""
    start = time.process_time()
    generate_latest(registry)
    return 1000 * (time.process_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--series", type=int, default=3)
    parser.add_argument("--nights", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{folder}/results.db")
        with Session(engine) as session:
            for s in range(args.series):
                add_nights(session, args.nights, series=f"s{s}", configs=CONFIGS, seed=s)
            session.commit()
        registry = metrics_registry(engine)
        changed = _ms(registry)
        kept = min(_ms(registry) for _ in range(5))
        with Session(engine) as session:
            add_nights(session, 1, series="s0", configs=CONFIGS, first=args.nights)
            session.commit()
        again = _ms(registry)
    print(
        f"{args.series} series x {args.nights} nights x {len(CONFIGS)} configs x 60 cases: "
        f"scrape after a stored run {changed:.0f} ms ({again:.0f} ms after one more night), "
        f"in between {kept:.1f} ms (CPU time)"
    )


if __name__ == "__main__":
    main()
