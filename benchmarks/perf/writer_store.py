"""CPU of the record writer's storing, per record: ``save_generations`` (what the writer
process runs for each batch, ``evaluation/run/_writer_process.py``) over N batches of
records like a simulated run's (a ``single`` case trace with its one stage each; every
tenth failed), each batch one transaction, into a fresh database each round. Prints the
CPU (user + sys of this process) per record of each round, their median, and the load.

    PYTHONPATH=. .venv/bin/python benchmarks/perf/writer_store.py [--batches 10] \
        [--batch 200] [--rounds 5] [--url postgresql+psycopg2://postgres@127.0.0.1:5432/test]

A PostgreSQL ``--url`` gets a schema of its own (dropped after each round).
``--resume``: each round stores its batches twice (a rerun re-storing what a kill left
committed), and times the second pass. ``--scores``: times, instead, writing one
metric's score for every stored generation (``replace_scores``, as scoring does), per
score.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sqlalchemy import text  # noqa: E402

from evaluation.backends.base import GenerationResult  # noqa: E402
from evaluation.pipelines._trace import CaseTrace, StageRecord  # noqa: E402
from evaluation.run._work import GenerationRecord, WorkItem  # noqa: E402
from evaluation.spec import Config, GenerationParams, PromptTemplate  # noqa: E402
from evaluation.storage.db import make_engine, session_scope  # noqa: E402
from evaluation.storage.repository import (  # noqa: E402
    record_suite,
    register_experiment,
    replace_scores,
    save_generations,
)
from evaluation.suites import Case, Suite  # noqa: E402


def simulated_run(n_records: int) -> tuple[Suite, list[Config], list[GenerationRecord]]:
    """Two configs over as many cases as ``n_records`` needs, in the order a run stores."""
    configs = [
        Config(model, GenerationParams(temperature=0.0), PromptTemplate("default"))
        for model in ("sim:a", "sim:b")
    ]
    n_cases = (n_records + 1) // 2
    cases = tuple(
        Case(id=f"c{i:05d}", input=f"question {i}?", references=(f"answer {i}",))
        for i in range(n_cases)
    )
    suite = Suite("sim", "1", "qa", ("exact_match",), cases)
    started = datetime(2026, 11, 27, tzinfo=UTC)
    records = []
    for i in range(n_records):
        config, case = configs[i % 2], cases[i // 2]
        item = WorkItem(config, case, suite.name, 0)
        if i % 10 == 9:
            records.append(GenerationRecord(item, "sim", 3, error="simulated failure"))
            continue
        result = GenerationResult(
            f"answer {i // 2} " * 4, "stop", 0.02, 0.005, 12, 16, 0, 1000, 2000, 3000, True
        )
        stage = StageRecord(
            "generate", "generate", config.model, "sim", started, 0.0, 0.02, 12, 16, 12
        )
        trace = CaseTrace("single", 0.021, (stage,))
        records.append(GenerationRecord(item, "sim", 1, result, trace=trace))
    return suite, configs, records


def one_round(
    url: str,
    batches: list[list[GenerationRecord]],
    suite,
    configs,
    resume: bool,
    scores: bool = False,
):
    schema = None
    if url.startswith("postgresql"):
        schema = f"writer_store_{os.getpid()}"
        setup = make_engine(url, create=False)
        with setup.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        setup.dispose()
        engine = make_engine(f"{url}?options=-csearch_path%3D{schema}")
    else:
        engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            record_suite(session, suite)
            experiment = register_experiment(
                session,
                name="bench",
                suite=suite,
                configs=configs,
                spec={},
                spec_path="",
                samples_per_case=1,
                metrics=["exact_match"],
                simulated=True,
            )
            experiment_id = experiment.id
        passes = 2 if resume else 1
        for _ in range(passes):
            start = time.process_time()
            for batch in batches:
                with session_scope(engine) as session:
                    save_generations(session, experiment_id, batch)
            spent = time.process_time() - start
        if scores:
            with engine.connect() as conn:
                ids = [i for (i,) in conn.execute(text("SELECT id FROM generations"))]
            start = time.process_time()
            with session_scope(engine) as session:
                replace_scores(session, ids, "exact_match", [1.0] * len(ids))
            spent = time.process_time() - start
        with engine.connect() as conn:
            counts = [
                conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar()
                for table in ("generations", "case_runs", "stages")
            ]
    finally:
        engine.dispose()
        if schema is not None:
            cleanup = make_engine(url, create=False)
            with cleanup.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            cleanup.dispose()
    return spent, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--url", default=None, help="default: a fresh SQLite file per round")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--scores", action="store_true", help="time writing a score each")
    args = parser.parse_args()
    suite, configs, records = simulated_run(args.batches * args.batch)
    batches = [records[i : i + args.batch] for i in range(0, len(records), args.batch)]
    per_record = []
    for k in range(args.rounds):
        with tempfile.TemporaryDirectory() as home:
            url = args.url or f"sqlite:///{home}/bench.db"
            spent, counts = one_round(url, batches, suite, configs, args.resume, args.scores)
        us = spent / (counts[0] if args.scores else len(records)) * 1e6
        per_record.append(us)
        unit = "score" if args.scores else "record"
        print(f"round {k + 1}: {us:.1f} us/{unit}  rows (gen, case runs, stages) {counts}")
    load = os.getloadavg()
    print(
        f"median {statistics.median(per_record):.1f} us/{'score' if args.scores else 'record'} "
        f"(min {min(per_record):.1f}) "
        f"over {args.rounds} rounds of {len(records)} records; load {load[0]:.1f} {load[1]:.1f}"
    )


if __name__ == "__main__":
    main()
