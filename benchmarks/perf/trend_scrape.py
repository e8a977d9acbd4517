"""What the series watch adds to a Prometheus scrape of ``evalflow metrics``
(``evalflow_trend_alarm``, ``evalflow_trend_alarm_streams``): the first scrape (the
watch computed on every series), one in between (the kept verdicts read back), one after
a night of one series was stored (the watch computed on that series), and one after a
night whose watch another reader computed first (the nightly run, ``evalflow trends``:
``watch_and_keep``), on SQLite, with ``--series`` series of ``--nights`` completed nights
each (4 configs × 60 cases, exact_match and the operational streams: ~28 streams a
series). Prints the load average beside the figures.

Run: ``python benchmarks/perf/trend_scrape.py [--series 3] [--nights 30]``.
Figures: docs/operations.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from prometheus_client import generate_latest
from sqlmodel import Session

from evaluation.itembank import BankEstimates
from evaluation.observability import metrics_registry
from evaluation.series import watch_and_keep
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
        with Session(engine) as session:
            add_nights(session, 1, series="s0", configs=CONFIGS, first=args.nights + 1)
            session.commit()
            start = time.process_time()
            watch_and_keep(session, "s0", banks=BankEstimates(session))
            session.commit()
            reader = 1000 * (time.process_time() - start)
        after_reader = _ms(registry)
    print(
        f"{args.series} series x {args.nights} nights x {len(CONFIGS)} configs x 60 cases: "
        f"first scrape {changed:.0f} ms, in between {kept:.1f} ms, after one more night "
        f"{again:.0f} ms; after one more night whose watch another reader computed "
        f"({reader:.0f} ms) {after_reader:.1f} ms (CPU time; load {os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    main()
