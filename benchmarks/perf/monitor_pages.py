"""How fast the monitor answers on a big results database, server-side, on SQLite and on
PostgreSQL: fills a fresh database with EXPERIMENTS runs of GENERATIONS each (default
10,000 x 200 = 2,000,000; 200 series of 50 nights, five task types, six hosts, a few
failures with reasons, three runs going on now with their live rows, a leaderboard per
run) by bulk insert (view_paging.py's ``_bulk``: COPY on PostgreSQL, executemany on
SQLite), stores each finished run's summary as a run's end does (``store_summaries``,
timed), then requests every monitor page and endpoint through the real app (Starlette's
test client: routing, queries and rendering count, the network does not).

    python benchmarks/perf/monitor_pages.py [--experiments 10000] [--generations 200]
        [--postgres postgresql+psycopg2://postgres@127.0.0.1:5432/test] [--no-sqlite]
        [--repeat 7]

Prints one row per page: the first request, the median and the 95th percentile of the
repeats in milliseconds, per database. The target: every page p50 <= 300 ms. The live
JSON is also timed answering an unchanged state (304): what one open page costs the
server every poll.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from view_paging import _bulk, _postgres, print_page_table

from evaluation.monitor._summary import stale_ids, store_summaries
from evaluation.storage.db import make_engine, refresh_planner_facts, session_scope
from evaluation.storage.models import ConfigRow
from evaluation.view.app import create_app

TASKS = ("qa", "summarization", "classification", "code", "rag")
HOSTS = tuple(f"gpu-{i}" for i in range(6))
REASONS = (
    "BackendUnavailable: connection refused",
    "BackendTimeout: no answer within 120 s",
    "BackendOverloaded: 503 server busy",
)
CONFIGS_PER_RUN = 4
SERIES = 200
RUNNING = 3


def fill(engine: Engine, n_experiments: int, per_run: int) -> None:
    """The runs, their generations, leaderboards, claims, summaries' inputs."""
    cases_per_run = per_run // CONFIGS_PER_RUN
    start = datetime(2026, 1, 1)
    _bulk(engine, "suites", ["name", "version", "task_type", "default_metrics", "labels",
                              "path", "fingerprint"],
          [(t, "1", t, '["exact_match"]', "[]", "", "") for t in TASKS])  # fmt: skip
    _bulk(engine, "cases", ["uid", "suite", "case_id", "input_text", "input_chars",
                            "references", "meta"],
          [(f"{t}/c{i:03d}", t, f"c{i:03d}", f"question {i}", 10, '["x"]', "{}")
           for t in TASKS for i in range(cases_per_run)])  # fmt: skip
    hashes = [f"{i:016x}" for i in range(40)]
    with session_scope(engine) as session:
        session.add_all(
            ConfigRow(hash=h, model=f"model-{i % 8}:7b", label=f"model-{i % 8}:7b t={i // 8 / 4}",
                      temperature=i // 8 / 4)
            for i, h in enumerate(hashes)
        )  # fmt: skip
    _bulk(engine, "config_pipelines", ["config_hash", "pipeline", "params"],
          [(h, "map_reduce", "{}") for h in hashes[32:]])  # fmt: skip
    _bulk(engine, "models", ["name", "digest", "family", "parameter_size", "quantization",
                             "hosts", "first_seen", "last_seen"],
          [(f"model-{m}:7b", f"d{m}", "", "", "", f'["{HOSTS[m % 6]}", "{HOSTS[(m + 1) % 6]}"]',
            start, start + timedelta(days=60)) for m in range(8)])  # fmt: skip
    columns = ["id", "experiment_id", "config_hash", "case_uid", "sample_index", "status",
               "error", "attempts", "host", "output", "done_reason", "truncated", "latency_s",
               "eval_count", "load_duration_ns", "prompt_eval_duration_ns", "eval_duration_ns",
               "total_duration_ns", "simulated", "created_at"]  # fmt: skip
    gid = 1
    batch = 500
    for first in range(1, n_experiments + 1, batch):
        ids = range(first, min(first + batch, n_experiments + 1))
        experiments, claims, links, aggregates, generations = [], [], [], [], []
        for e in ids:
            series, night = (e - 1) % SERIES, (e - 1) // SERIES
            task = TASKS[series % len(TASKS)]
            running = e > n_experiments - RUNNING
            status = "running" if running else ("failed" if e % 97 == 0 else "completed")
            when = _stamp(start + timedelta(minutes=10 * e))
            name = f"s{series:03d}-night-{night:03d}"
            spec = f'{{"name": "s{series:03d}"}}'
            experiments.append((e, name, task, task, spec, "", 1, '["exact_match"]', False,
                                status, when, when, None, False))  # fmt: skip
            ended = (
                None if running else _stamp(start + timedelta(minutes=10 * e, seconds=60 + e % 300))
            )
            claims.append((name, f"t{e}", 1000 + e, "", "gpu-box-2", None,
                           "running" if running else status, None, when, ended))  # fmt: skip
            picked = [hashes[(series * 3 + k) % 40] for k in range(CONFIGS_PER_RUN)]
            for k, h in enumerate(picked):
                links.append((e, h, k))
                mean = 0.5 + 0.1 * k + 0.001 * night
                aggregates.append((e, h, "exact_match", cases_per_run, mean, 0.05,
                                   mean - 0.1, mean + 0.1, "wilson", ""))  # fmt: skip
                for c in range(cases_per_run):
                    failed = (e + k + c) % 150 == 0
                    generations.append(
                        (gid, e, h, f"{task}/c{c:03d}", 0, "failed" if failed else "ok",
                         REASONS[(e + c) % 3] if failed else None, 1,
                         HOSTS[(series + k) % 6], "" if failed else "an answer", "stop", False,
                         0.5 + (c % 10) / 10, 40, 0, 0, 0, 0, False, when)
                    )  # fmt: skip
                    gid += 1
        _bulk(engine, "experiments", ["id", "name", "suite", "task_type", "spec", "spec_path",
                                      "samples_per_case", "metrics", "simulated", "status",
                                      "created_at", "updated_at", "baseline",
                                      "accepted_baseline"], experiments)  # fmt: skip
        _bulk(engine, "experiment_runs", ["experiment", "token", "pid", "pid_started",
                                          "hostname", "flow_run_id", "status", "reason",
                                          "started_at", "ended_at"], claims)  # fmt: skip
        _bulk(engine, "experiment_configs", ["experiment_id", "config_hash", "position"], links)
        _bulk(engine, "aggregates", ["experiment_id", "config_hash", "metric", "n", "mean",
                                     "se", "ci_low", "ci_high", "method", "note"],
              aggregates)  # fmt: skip
        _bulk(engine, "generations", columns, generations)
    now = _stamp(datetime.now(UTC).replace(tzinfo=None))
    _bulk(engine, "run_live", ["experiment", "stage", "done", "total", "failed", "per_s",
                               "eta_s", "in_flight", "slots", "failures", "gpu", "started_at",
                               "updated_at"],
          [(f"s{(e - 1) % SERIES:03d}-night-{(e - 1) // SERIES:03d}", "generate", 120, 200, 1,
            3.5, 23.0, '{"gpu-0": 2}', '{"gpu-0": 4}', f'{{"{REASONS[0]}": 1}}', "[]", now, now)
           for e in range(n_experiments - RUNNING + 1, n_experiments + 1)])  # fmt: skip
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT setval('generations_id_seq', %s)", (gid,))
            connection.exec_driver_sql("SELECT setval('experiments_id_seq', %s)", (n_experiments,))
            connection.commit()


def _stamp(moment: datetime) -> str:
    """A time as SQLAlchemy writes it on SQLite (with microseconds; sqlite3's own adapter
    leaves them out when zero, and the summaries compare the experiment's time as text)."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def pages(n_experiments: int) -> dict[str, tuple[str, dict[str, str]]]:
    e = n_experiments
    finished = f"s{(e - 10) % SERIES:03d}-night-{(e - 10) // SERIES:03d}"
    running = f"s{(e - 1) % SERIES:03d}-night-{(e - 1) // SERIES:03d}"
    return {
        "home": ("/", {}),
        "home, configs across one series": ("/?series=s007", {}),
        "live JSON": ("/api/live", {}),
        "run page, running": (f"/e/{running}/live", {}),
        "run page, finished (leaderboard)": (f"/e/{finished}/live", {}),
        "run JSON, running": (f"/api/runs/{running}", {}),
        "run JSON, finished": (f"/api/runs/{finished}", {}),
    }


def measure(client: TestClient, paths: dict, repeat: int) -> dict[str, tuple]:
    out = {}
    for label, (path, headers) in paths.items():
        times = []
        for _ in range(repeat + 1):
            started = time.perf_counter()
            response = client.get(path, headers=headers)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (path, response.status_code, response.text[:300])
        out[label] = _row(label, times)
        if label == "live JSON":  # what an open page costs per poll while nothing changes
            tag = response.headers["etag"]
            times = []
            for _ in range(repeat + 1):
                started = time.perf_counter()
                response = client.get(path, headers={"If-None-Match": tag})
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 304
            out["live JSON, unchanged (304)"] = _row("live JSON, unchanged (304)", times)
    return out


def _row(label: str, times: list[float]) -> tuple[float, float, float]:
    rest = sorted(times[1:])
    p95 = rest[min(len(rest) - 1, round(0.95 * (len(rest) - 1)))]
    row = (times[0], statistics.median(rest), p95)
    print(f"  {label:40s} {row[0]:8.0f} {row[1]:8.0f} {row[2]:8.0f}", flush=True)
    return row


def run(url: str, args: argparse.Namespace) -> dict:
    engine = make_engine(url)
    if args.sqlite_file and _filled(engine):  # a kept file: measure it as it is
        print(f"{engine.dialect.name}: {args.sqlite_file} as filled before; first / p50 / p95 ms:")
        return measure(TestClient(create_app(engine)), pages(args.experiments), args.repeat)
    started = time.perf_counter()
    fill(engine, args.experiments, args.generations)
    filled = time.perf_counter() - started
    started = time.perf_counter()
    refresh_planner_facts(engine)
    with session_scope(engine) as session:  # what each run's end stores, all at once here
        ids = stale_ids(session, limit=args.experiments)
    for i in range(0, len(ids), 2000):
        with session_scope(engine) as session:
            store_summaries(session, ids[i : i + 2000])
    summarised = time.perf_counter() - started
    refresh_planner_facts(engine)  # as the next run's end does (PostgreSQL: VACUUM ANALYZE)
    total = args.experiments * args.generations
    print(
        f"{engine.dialect.name}: filled {args.experiments:,} experiments, {total:,} generations "
        f"in {filled:.0f} s; {len(ids):,} summaries stored in {summarised:.1f} s "
        f"({1000 * summarised / max(len(ids), 1):.1f} ms per run); first / p50 / p95 ms:",
        flush=True,
    )
    try:
        return measure(TestClient(create_app(engine)), pages(args.experiments), args.repeat)
    finally:
        engine.dispose()


def _filled(engine: Engine) -> bool:
    with engine.connect() as connection:
        return connection.exec_driver_sql("SELECT 1 FROM experiments LIMIT 1").first() is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=10_000)
    parser.add_argument("--generations", type=int, default=200, help="per experiment")
    parser.add_argument("--postgres", help="URL of a PostgreSQL database to create one from")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--sqlite-file",
        help="keep the SQLite database here; a filled one is measured, not refilled",
    )
    args = parser.parse_args()
    if args.generations % CONFIGS_PER_RUN:
        parser.error(f"--generations: expected a multiple of {CONFIGS_PER_RUN}")
    results: dict[str, dict] = {}
    if not args.no_sqlite:
        if args.sqlite_file:
            results["SQLite"] = run(f"sqlite:///{args.sqlite_file}", args)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                results["SQLite"] = run(f"sqlite:///{Path(tmp) / 'monitor.db'}", args)
    if args.postgres:
        url, drop = _postgres(args.postgres, keep=False)
        try:
            results["PostgreSQL"] = run(url, args)
        finally:
            drop()
    print_page_table(results)


if __name__ == "__main__":
    main()
