"""CPU time of the item bank's read of a series' scores (``stored_scores``, which leaves
out the runs the series watch alarmed on) and of ``evalflow show`` of a calibrated run
of that series, a first read and repeat reads, each ``show`` in its own process.

    PYTHONPATH=. python benchmarks/perf/bank_alarms.py [--nights 12]

Run it with ``PYTHONPATH`` at another checkout for a before/after."""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from evaluation.itembank import stored_scores
from evaluation.series.schema import CalibratedNight, SeriesRun
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.models import SuiteRow
from flows.cli import main as cli
from tests.support.results_db import make_config
from tests.support.series_db import CHANGING, STEADY, SUITE, add_nights


def _build(url: str, nights: int) -> str:
    """``nights`` nights of series wt (8 configs, 60 cases; one config degraded on the
    two nights before the last), a bank, then the last night at the calibrated level
    (3 cases); returns its name."""
    engine = make_engine(url)
    configs = (STEADY, CHANGING, *(make_config(f"m{i}:1b", 0.0) for i in range(2, 8)))
    with session_scope(engine) as session:
        names = add_nights(
            session, nights - 1, series="wt", drop_from=nights - 3, seed=1, configs=configs
        )
        names += add_nights(
            session,
            1,
            series="wt",
            seed=2,
            first=nights - 1,
            configs=configs,
            partial=(nights - 1,),
        )
        content = session.get(SuiteRow, SUITE.name).fingerprint
        for run in session.exec(select(SeriesRun)).scalars():
            run.suite_digest = content
    cli(["--database", url, "bank", SUITE.name, "--all-runs"])
    with session_scope(engine) as session:
        ids = [c.id for c in SUITE.cases[:3]]
        session.add(CalibratedNight(experiment=names[-1], case_ids=ids, suite_cases=60))
    engine.dispose()
    return names[-1]


def _show_cpu(url: str, night: str) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    code = "from flows.cli import console_main; console_main()"
    subprocess.run(
        [sys.executable, "-c", code, "--database", url, "show", night],
        check=True,
        stdout=subprocess.DEVNULL,
        env=os.environ,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main_() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nights", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'r.db'}"
        night = _build(url, args.nights)
        engine = make_engine(url)
        for label, all_runs in [("all_runs", True)] + [("default", False)] * 3:
            with session_scope(engine) as session:
                start = time.process_time()
                scores = stored_scores(session, SUITE.name, "exact_match", all_runs=all_runs)
                cpu = time.process_time() - start
            print(f"stored_scores {label}: {cpu:.3f} s CPU, left out {scores.left}")
        engine.dispose()
        for i in range(3):
            print(f"show {night} (read {i + 1}): {_show_cpu(url, night):.2f} s CPU, process")
    print(f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main_()
