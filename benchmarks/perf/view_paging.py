"""How fast `evalflow view` answers on a large experiment, server-side, on SQLite and on
PostgreSQL: fills a fresh results database with CONFIGS x CASES x SAMPLES generations
(default 100 x 2,000 x 5 = 1,000,000; two metrics each, pipeline stage rows for some
configs) by bulk insert, marks the run finished as a sweep does (``store_pages``: the
view's stored summary and flip matrix), then requests every page and filter of the view
through the real app (Starlette's test client: routing, queries and rendering count,
the network does not).

    python benchmarks/perf/view_paging.py [--configs 100] [--cases 2000] [--samples 5]
        [--postgres postgresql+psycopg2://postgres@127.0.0.1:5432/test] [--repeat 7]
        [--sqlite-file PATH] [--no-sqlite]

With ``--postgres`` (a URL of a database the user may CREATE DATABASE from) the same
experiment is filled into a database of its own, ``evalflow_view_bench``, dropped after.
Prints one row per page: the first request and the median and 95th percentile of the
repeats, in milliseconds, per database. The target: every page under 300 ms at 1M.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine, make_url

from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.models import CaseRow, ConfigRow, Experiment, ExperimentConfig, SuiteRow
from evaluation.storage.repository import replace_aggregates
from evaluation.view.app import PER_PAGE, create_app

METRICS = ("exact_match", "rougeL")
BENCH_DATABASE = f"evalflow_view_bench_{os.getpid()}"
KEPT_DATABASE = "evalflow_view_bench_kept"  # --keep-postgres: drop it by hand after
NAME = "perf-view"
TOPICS = ("annual", "safety", "budget", "harvest", "census", "orbit", "tariff", "vaccine")
WORDS = (
    "so the total comes to",
    "adding both numbers gives",
    "after checking twice it is",
    "my final answer is",
    "the sum should be",
    "which means the result is",
    "carrying the one we get",
    "counting on from there gives",
)


def _answer(case: int, config: int, sample: int) -> int:
    """The number a config answers for a case: right unless the case is hard for it."""
    right = 2 * case + 7
    return right if (case * 13 + config * 7 + sample) % 10 >= config % 4 else right + 1


def _output(case: int, config: int, sample: int) -> str:
    answer = _answer(case, config, sample)
    lead = WORDS[(case + config + sample) % len(WORDS)]
    topic = TOPICS[(case * 3 + config) % len(TOPICS)]
    return (
        f"Reading the {topic} question carefully, {case} plus {case + 7} is what we need; "
        f"{lead} {answer}. The answer is {answer}."
    )


def _bulk(engine: Engine, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]):
    """Insert ``rows`` with the driver's fastest path: COPY on PostgreSQL, one
    executemany in one transaction on SQLite."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "postgresql":
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            for row in rows:
                writer.writerow(["\\N" if v is None else v for v in row])
            buffer.seek(0)
            names = ", ".join(f'"{c}"' for c in columns)
            cursor.copy_expert(
                f"COPY {table} ({names}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buffer
            )
        else:
            marks = ", ".join("?" for _ in columns)
            names = ", ".join(f'"{c}"' for c in columns)
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
        raw.commit()
    finally:
        raw.close()


def fill(engine: Engine, n_configs: int, n_cases: int, n_samples: int) -> list[str]:
    """The experiment; returns its config hashes in sweep order."""
    now = datetime.now(UTC).replace(tzinfo=None)
    hashes = [f"{i:016x}" for i in range(n_configs)]
    temperatures, top_ps = (0.0, 0.3, 0.7, 1.0, 1.3), (0.5, 0.8, 0.9, 0.95, 1.0)
    with session_scope(engine) as session:
        session.add(SuiteRow(name="perf", version="1", task_type="qa"))
        session.add_all(
            CaseRow(
                uid=f"perf/c{i:06d}",
                suite="perf",
                case_id=f"c{i:06d}",
                group=f"g{i % 40}",
                input_text=f"Question {i}: in the {TOPICS[i % 8]} table, what is {i} plus {i + 7}?",
                references=[str(2 * i + 7)],
            )
            for i in range(n_cases)
        )
        session.add(
            Experiment(
                id=1,
                name=NAME,
                suite="perf",
                task_type="qa",
                samples_per_case=n_samples,
                metrics=list(METRICS),
                status="completed",
            )
        )
        session.add_all(
            ConfigRow(
                hash=h,
                model=f"model-{i % 4}:7b",
                label=f"model-{i % 4}:7b t={temperatures[i % 5]} p={top_ps[(i // 5) % 5]} #{i}",
                temperature=temperatures[i % 5],
                top_p=top_ps[(i // 5) % 5],
            )
            for i, h in enumerate(hashes)
        )
        session.flush()
        session.add_all(
            ExperimentConfig(experiment_id=1, config_hash=h, position=i)
            for i, h in enumerate(hashes)
        )
    generation_columns = [
        "id", "experiment_id", "config_hash", "case_uid", "sample_index", "sample_seed",
        "status", "error", "attempts", "host", "output", "done_reason", "truncated",
        "latency_s", "ttft_s", "tokens_per_s", "prompt_eval_count", "eval_count",
        "load_duration_ns", "prompt_eval_duration_ns", "eval_duration_ns",
        "total_duration_ns", "energy_j", "simulated", "created_at",
    ]  # fmt: skip
    aggregates: list[dict[str, Any]] = []
    next_id = 1
    for k, h in enumerate(hashes):
        generations, scores, stages = [], [], []
        values: dict[str, list[float]] = {m: [] for m in METRICS}
        for i in range(n_cases):
            for s in range(n_samples):
                failed = (i * 5 + k + s) % 211 == 0
                output = "" if failed else _output(i, k, s)
                latency = 0.2 + ((i * 7 + k * 3 + s) % 100) / 50
                generations.append(
                    (next_id, 1, h, f"perf/c{i:06d}", s, s, "failed" if failed else "ok",
                     "timed out after 60 s" if failed else None, 1, "perf", output,
                     "stop", (i + k + s) % 97 == 0, latency, latency / 5, 40 / latency, 30,
                     40 + i % 30, 0, 0, 0, 0, None, False, now)
                )  # fmt: skip
                if not failed:
                    right = float(_answer(i, k, s) == 2 * i + 7)
                    partial = ((i * 31 + k * 17 + s * 3) % 1000) / 1000
                    scores.append((next_id, METRICS[0], right))
                    scores.append((next_id, METRICS[1], partial))
                    values[METRICS[0]].append(right)
                    values[METRICS[1]].append(partial)
                if k % 10 == 0:  # a pipeline's calls: retrieve, then answer
                    for position, stage in enumerate(("retrieve", "answer")):
                        stages.append(
                            (1, h, f"perf/c{i:06d}", s, position, stage, "generate",
                             f"model-{k % 4}:7b", "perf", now, 0.1 * position, latency / 2,
                             20, 10, 20, 1, False, 0.01)
                        )  # fmt: skip
                next_id += 1
        _bulk(engine, "generations", generation_columns, generations)
        _bulk(engine, "scores", ["generation_id", "metric", "value"], scores)
        if stages:
            _bulk(
                engine,
                "stages",
                ["experiment_id", "config_hash", "case_uid", "sample_index", "position", "stage",
                 "kind", "model", "host", "started_at", "start_s", "duration_s", "prompt_tokens",
                 "output_tokens", "estimated_prompt_tokens", "attempts", "context_truncated",
                 "wait_s"],
                stages,
            )  # fmt: skip
        for metric, got in values.items():
            mean = statistics.fmean(got)
            half = 1.96 * statistics.pstdev(got) / len(got) ** 0.5
            aggregates.append(
                {"config_hash": h, "metric": metric, "n": len(got), "mean": mean,
                 "se": half / 1.96, "ci_low": mean - half, "ci_high": mean + half,
                 "method": "normal", "note": ""}
            )  # fmt: skip
    with session_scope(engine) as session:
        replace_aggregates(session, 1, aggregates)
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT setval('generations_id_seq', %s)", (next_id,))
            # the statistics autovacuum gathers within a minute or so of a sweep's writes
            # (a sweep's end now refreshes them itself: finish); without them the
            # planner takes a million rows for a few thousand
            connection.exec_driver_sql("ANALYZE")
            connection.commit()
    return hashes


def requests(hashes: Sequence[str], n_cases: int, total: int) -> dict[str, str]:
    e = f"/e/{NAME}"
    a, b = hashes[0], hashes[1 % len(hashes)]
    mid = hashes[len(hashes) // 2]
    case = f"c{n_cases // 2:06d}"
    answer = 2 * (n_cases // 3) + 7
    return {
        "experiments": "/",
        "summary (leaderboard, verdict, effects)": f"{e}/summary",
        "list, first page": e,
        "list, page 100": f"{e}?page=100",
        "list, page 2,000": f"{e}?page=2000",
        "list, sorted by latency desc": f"{e}?sort=latency&dir=desc",
        "list, sorted by latency desc, page 100": f"{e}?sort=latency&dir=desc&page=100",
        "filter: one config": f"{e}?config={mid}",
        "filter: one config, page 100": f"{e}?config={mid}&page=100",
        "filter: three configs": f"{e}?config={a}&config={b}&config={mid}",
        "filter: group": f"{e}?group=g7",
        "filter: case id part": f"{e}?case=c0012",
        "filter: failed": f"{e}?failed=yes",
        "filter: truncated, not failed": f"{e}?truncated=yes&failed=no",
        "filter: rougeL 0.2-0.4, sorted by it": (
            f"{e}?metric=rougeL&min=0.2&max=0.4&sort=metric&dir=desc"
        ),
        "filter: config + rougeL range, sorted": (
            f"{e}?config={mid}&metric=rougeL&min=0.2&max=0.4&sort=metric&dir=desc"
        ),
        "search: rare phrase (output)": f"{e}?q=answer+is+{answer}.",
        "search: common word (output)": f"{e}?q=carefully",
        "search: input text": f"{e}?q=what+is+{n_cases // 3}+plus",
        "search: reference": f"{e}?q=%22{answer}%22",
        "search: no match": f"{e}?q=zebra+crossing",
        "search + config": f"{e}?q=answer+is+{answer}.&config={a}",
        "one generation": f"{e}/g/{total // 2 + 7}",
        "one generation with stages": f"{e}/g/3",
        "one case under every config": f"{e}/cases/{case}",
        "side by side": f"{e}/compare?a={a}&b={b}",
        "side by side, largest rougeL diff first": (
            f"{e}/compare?a={a}&b={b}&metric=rougeL&sort=%7Cdiff%7C"
        ),
        "side by side, page 50": f"{e}/compare?a={a}&b={b}&page=50",
        "flip matrix, ranks 1-20": f"{e}/matrix",
        "flip matrix, ranks 81-100": f"{e}/matrix?start=81",
        "heatmap": f"{e}/grid",
        "heatmap over model x top_p": f"{e}/grid?x=model&y=top_p",
    }


def measure(client: TestClient, paths: dict[str, str], repeat: int) -> dict[str, tuple]:
    """Per page: (first, median, 95th percentile) in ms."""
    out = {}
    for label, path in paths.items():
        times = []
        for _ in range(repeat + 1):
            start = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, (path, response.status_code, response.text[:300])
        rest = sorted(times[1:])
        p95 = rest[min(len(rest) - 1, round(0.95 * (len(rest) - 1)))]
        out[label] = (times[0], statistics.median(rest), p95)
        print(f"  {label:42s} {times[0]:8.0f} {out[label][1]:8.0f} {p95:8.0f}", flush=True)
    return out


def run(url: str, args: argparse.Namespace, finish: Callable[[Engine], None]) -> dict:
    start = time.perf_counter()
    engine = make_engine(url)  # on a kept file: the indexes this version adds, built here
    if (args.sqlite_file or args.keep_postgres) and _filled(engine):
        hashes = [f"{i:016x}" for i in range(args.configs)]
    else:
        hashes = fill(engine, args.configs, args.cases, args.samples)
    filled = time.perf_counter() - start
    start = time.perf_counter()
    finish(engine)
    finished = time.perf_counter() - start
    total = args.configs * args.cases * args.samples
    print(
        f"{engine.dialect.name}: filled {total:,} generations in {filled:.0f} s, "
        f"store_pages {finished:.1f} s; first / p50 / p95 ms:",
        flush=True,
    )
    try:
        return measure(
            TestClient(create_app(engine)), requests(hashes, args.cases, total), args.repeat
        )
    finally:
        engine.dispose()


def _filled(engine: Engine) -> bool:
    with engine.connect() as connection:
        return connection.exec_driver_sql("SELECT 1 FROM generations LIMIT 1").first() is not None


def finish(engine: Engine) -> None:
    """What a sweep does when its run ends: its outputs indexed for search as its
    generation phase ends (else every search scans every output, as on a run killed
    mid-phase), then, after the comparison, the view's stored pages; each absent before
    it existed."""
    try:
        from evaluation.storage.text_search import index_new_outputs
    except ImportError:  # before the index was built after the phase (the trigger did it)
        pass
    else:
        index_new_outputs(engine)
    try:
        from evaluation.view.stored import store_pages
    except ImportError:
        return
    try:
        from evaluation.storage.db import refresh_planner_facts
    except ImportError:  # before sweeps refreshed them
        pass
    else:
        refresh_planner_facts(engine)
    with session_scope(engine) as session:
        store_pages(session, NAME)


def _postgres(server_url: str, keep: bool) -> tuple[str, Callable[[], None]]:
    """A fresh database on ``server_url``'s server and how to drop it; with ``keep``,
    the kept one (``KEPT_DATABASE``) and nothing to drop."""
    import psycopg2

    server = make_url(server_url)
    admin = psycopg2.connect(
        host=server.host, port=server.port or 5432, user=server.username, dbname=server.database
    )
    admin.autocommit = True
    if keep:
        with admin.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (KEPT_DATABASE,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{KEPT_DATABASE}"')
        admin.close()
        url = server.set(database=KEPT_DATABASE)
        return url.render_as_string(hide_password=False), lambda: None
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{BENCH_DATABASE}"')

    def drop() -> None:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)')
        admin.close()

    return server.set(database=BENCH_DATABASE).render_as_string(hide_password=False), drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=100)
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--postgres", help="URL of a PostgreSQL database to create one from")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument(
        "--keep-postgres", action="store_true", help=f"fill {KEPT_DATABASE} once, keep it"
    )
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--sqlite-file", help="keep the SQLite database here; a filled one is reused, not refilled"
    )
    args = parser.parse_args()
    per_config = args.cases * args.samples  # the pages asked for: 2,000 of all, 100 of one config
    if args.configs * per_config < 2000 * PER_PAGE or per_config < 100 * PER_PAGE:
        parser.error(
            f"--configs × --cases × --samples must be at least {2000 * PER_PAGE:,} and "
            f"--cases × --samples at least {100 * PER_PAGE:,} (the pages timed include the "
            f"2,000th of all generations and the 100th of one config's, {PER_PAGE} a page)"
        )
    results: dict[str, dict] = {}
    if not args.no_sqlite:
        if args.sqlite_file:
            results["SQLite"] = run(f"sqlite:///{args.sqlite_file}", args, finish)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                results["SQLite"] = run(f"sqlite:///{Path(tmp) / 'view.db'}", args, finish)
    if args.postgres:
        url, drop = _postgres(args.postgres, args.keep_postgres)
        try:
            results["PostgreSQL"] = run(url, args, finish)
        finally:
            drop()
    print_page_table(results)


def print_page_table(results: dict[str, dict[str, tuple[float, float, float]]]) -> None:
    """Per page and database: the first load, p50 and p95 in ms, then the machine's load."""
    names = list(results)
    print(f"\n| page | {' | '.join(f'{n} first / p50 / p95 ms' for n in names)} |")
    print(f"|---|{'---|' * len(names)}")
    for label in next(iter(results.values())):
        cells = " | ".join("{:.0f} / {:.0f} / {:.0f}".format(*results[n][label]) for n in names)
        print(f"| {label} | {cells} |")
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
