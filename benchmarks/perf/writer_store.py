"""CPU of the record writer's storing, per record: ``save_generations`` (what the writer
process runs for each batch, ``evaluation/run/_writer_process.py``) over N batches of
records like a simulated run's (a ``single`` case trace with its one stage each; every
tenth failed), each batch one transaction, into a fresh database each round. Prints the
CPU (user + sys of this process) per record of each round, their median, and the load.

    PYTHONPATH=. .venv/bin/python benchmarks/perf/writer_store.py [--batches 10] \
        [--batch 200] [--rounds 5] [--url postgresql+psycopg2://postgres@127.0.0.1:5432/test]

A PostgreSQL ``--url`` gets a schema of its own (dropped after each round), searched
before ``public`` (where pg_trgm's operator classes are if the extension was made there:
with the schema alone on the search path the output search index is then not made).
``--text-index without`` (PostgreSQL) drops the output search index (pg_trgm's GIN on
``lower(output)``) before storing; ``both``: rounds with and without it alternate.
``--server-cpu`` (PostgreSQL on this machine) adds the server's CPU for the same
storing: its backends' /proc times (those the batches ran on) from each one's first
batch to the end, and, with the index, what merging the index's pending list costs
afterwards (``gin_clean_pending_list``: the rows stored wait in that list until an insert
fills it past ``gin_pending_list_limit``, or autovacuum merges them).
``--output-chars N``: each output N characters long (default ~40).
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
from evaluation.storage.text_search import TRIGRAM_INDEX  # noqa: E402
from evaluation.suites import Case, Suite  # noqa: E402


def _output(case: int, chars: int | None) -> str:
    if chars is None:
        return f"answer {case} " * 4
    return (f"answer {case} " * (chars // 8 + 1))[:chars]


def simulated_run(
    n_records: int, output_chars: int | None = None
) -> tuple[Suite, list[Config], list[GenerationRecord]]:
    """Two configs over as many cases as ``n_records`` needs, in the order a run stores;
    each output "answer N" four times (~40 characters), or ``output_chars`` of it."""
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
            _output(i // 2, output_chars), "stop", 0.02, 0.005, 12, 16, 0, 1000, 2000, 3000, True
        )
        stage = StageRecord(
            "generate", "generate", config.model, "sim", started, 0.0, 0.02, 12, 16, 12
        )
        trace = CaseTrace("single", 0.021, (stage,))
        records.append(GenerationRecord(item, "sim", 1, result, trace=trace))
    return suite, configs, records


_TICK = os.sysconf("SC_CLK_TCK")


def _process_cpu(pid: int) -> float:
    """A process's user + system CPU seconds (/proc), 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _merge_pending(engine) -> float:
    """The server's CPU merging the output search index's pending list into the index
    (a GIN index takes new rows into that list; the merge is left to the insert that
    fills it past ``gin_pending_list_limit``, to autovacuum, or to this)."""
    with engine.begin() as conn:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        before = _process_cpu(pid)
        conn.execute(text(f"SELECT gin_clean_pending_list('{TRIGRAM_INDEX}'::regclass)"))
        return _process_cpu(pid) - before


def one_round(
    url: str,
    batches: list[list[GenerationRecord]],
    suite,
    configs,
    resume: bool,
    scores: bool = False,
    text_index: bool = True,
    server: dict[str, float] | None = None,
):
    schema = None
    if url.startswith("postgresql"):
        schema = f"writer_store_{os.getpid()}"
        setup = make_engine(url, create=False)
        with setup.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        setup.dispose()
        engine = make_engine(f"{url}?options=-csearch_path%3D{schema},public")
        with engine.begin() as conn:
            if not text_index:
                conn.execute(text(f"DROP INDEX IF EXISTS {schema}.{TRIGRAM_INDEX}"))
            indexed = conn.execute(
                text("SELECT count(*) FROM pg_indexes WHERE schemaname = :s AND indexname = :i"),
                {"s": schema, "i": TRIGRAM_INDEX},
            ).scalar()
        if bool(indexed) != text_index:
            raise SystemExit(f"the output search index is {'not ' * (not indexed)}there")
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
            backends: dict[int, float] = {}  # backend pid -> its CPU at its first batch
            start = time.process_time()
            for batch in batches:
                with session_scope(engine) as session:
                    if server is not None:
                        pid = (
                            session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()
                        )
                        backends.setdefault(pid, _process_cpu(pid))
                    save_generations(session, experiment_id, batch)
            spent = time.process_time() - start
            if server is not None:
                server["backends"] = sum(_process_cpu(p) - cpu for p, cpu in backends.items())
                server["merge"] = _merge_pending(engine) if text_index else 0.0
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
    parser.add_argument("--text-index", choices=("with", "without", "both"), default="with")
    parser.add_argument("--server-cpu", action="store_true", help="PostgreSQL's CPU too")
    parser.add_argument("--output-chars", type=int, default=None, help="an output's length")
    args = parser.parse_args()
    postgres = bool(args.url and args.url.startswith("postgresql"))
    if (args.text_index != "with" or args.server_cpu) and not postgres:
        parser.error("--text-index and --server-cpu are for a PostgreSQL --url")
    suite, configs, records = simulated_run(args.batches * args.batch, args.output_chars)
    batches = [records[i : i + args.batch] for i in range(0, len(records), args.batch)]
    kinds = {"with": [True], "without": [False], "both": [True, False]}[args.text_index]
    per_record: dict[bool, list[tuple[float, float, float]]] = {kind: [] for kind in kinds}
    unit = "score" if args.scores else "record"
    for k in range(args.rounds):
        indexed = kinds[k % len(kinds)]
        server: dict[str, float] | None = {} if args.server_cpu else None
        with tempfile.TemporaryDirectory() as home:
            url = args.url or f"sqlite:///{home}/bench.db"
            spent, counts = one_round(
                url, batches, suite, configs, args.resume, args.scores, indexed, server
            )
        n = counts[0] if args.scores else len(records)
        us = spent / n * 1e6
        backends, merge = ((server or {}).get(key, 0.0) / n * 1e6 for key in ("backends", "merge"))
        per_record[indexed].append((us, backends, merge))
        said = f"round {k + 1}: {us:.1f} us/{unit}"
        if postgres:
            said += f" ({'with' if indexed else 'without'} the output search index)"
        if server is not None:
            said += f"; the server's backends {backends:.1f}, the pending list's merge {merge:.1f}"
        print(f"{said}  rows (gen, case runs, stages) {counts}")
    load = os.getloadavg()
    for indexed, rounds in per_record.items():
        client = [r[0] for r in rounds]
        said = (
            f"median {statistics.median(client):.1f} us/{unit} (min {min(client):.1f}) "
            f"over {len(rounds)} rounds of {len(records)} records"
        )
        if postgres:
            said += f", {'with' if indexed else 'without'} the output search index"
        if args.server_cpu:
            said += (
                f"; the server's backends {statistics.median(r[1] for r in rounds):.1f}, "
                f"the pending list's merge {statistics.median(r[2] for r in rounds):.1f}"
            )
        print(f"{said}; load {load[0]:.1f} {load[1]:.1f}")


if __name__ == "__main__":
    main()
