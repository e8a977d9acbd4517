"""How fast `evalflow view` answers on a large experiment: fills a results database with
N generations (default 100,000: 20 configs x 5,000 cases, two metrics each) and times the
first page, a filtered and sorted page, a deep page, a side-by-side page, a generation's
page, the text search, the flip matrix and grid, and the summary, each through the real
app (HTTP via Starlette's test client, so rendering counts) and the query alone.

    python benchmarks/perf/view_paging.py [--generations N] [--database URL] [--repeat R]

Prints one line per request: the median and the worst of R runs, in milliseconds.
The target is a first page under 1 s. State the load average (printed) with the figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import insert

from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.models import (
    CaseRow,
    ConfigRow,
    Experiment,
    ExperimentConfig,
    Generation,
    Score,
    SuiteRow,
)
from evaluation.storage.repository import replace_aggregates
from evaluation.view.app import create_app
from evaluation.view.queries import Filters, generation_page

N_CONFIGS = 20
METRICS = ("exact_match", "rougeL")


def fill(url: str, n_generations: int) -> tuple[str, list[str]]:
    """An experiment of ``n_generations`` across N_CONFIGS configs; returns its name and
    config hashes."""
    engine = make_engine(url)
    n_cases = max(1, n_generations // N_CONFIGS)
    hashes = [f"{i:016x}" for i in range(N_CONFIGS)]
    with session_scope(engine) as session:
        session.exec(insert(SuiteRow).values(name="perf", version="1", task_type="qa"))
        session.exec(
            insert(CaseRow),
            params=[
                {
                    "uid": f"perf/c{i:06d}",
                    "suite": "perf",
                    "case_id": f"c{i:06d}",
                    "group": f"g{i % 50}",
                    "input_text": f"Question {i}: what is {i} plus {i}?",
                    "input_chars": 30,
                    "references": [str(2 * i)],
                    "meta": {},
                }
                for i in range(n_cases)
            ],
        )
        experiment = Experiment(name="perf-view", suite="perf", task_type="qa", metrics=[*METRICS])
        session.add(experiment)
        session.flush()
        session.exec(
            insert(ConfigRow),
            params=[
                {
                    "hash": h,
                    "model": f"model-{i % 4}:7b",
                    "label": f"cfg{i}",
                    "template_text": "{input}",
                }
                for i, h in enumerate(hashes)
            ],
        )
        session.exec(
            insert(ExperimentConfig),
            params=[
                {"experiment_id": experiment.id, "config_hash": h, "position": i}
                for i, h in enumerate(hashes)
            ],
        )
        experiment_id = int(experiment.id)
    next_id = 1
    aggregates: list[dict] = []
    for k, h in enumerate(hashes):
        rows, scores = [], []
        for i in range(n_cases):
            failed = (i + k) % 97 == 0
            rows.append(
                {
                    "id": next_id,
                    "experiment_id": experiment_id,
                    "config_hash": h,
                    "case_uid": f"perf/c{i:06d}",
                    "sample_index": 0,
                    "status": "failed" if failed else "ok",
                    "error": "timed out after 60 s" if failed else None,
                    "output": "" if failed else f"The answer is {2 * i + (k % 3 == 0)}. " * 8,
                    "truncated": (i + k) % 41 == 0,
                    "latency_s": 0.2 + ((i * 7 + k) % 100) / 50,
                    "ttft_s": 0.05,
                    "eval_count": 40 + (i % 30),
                    "prompt_eval_count": 12,
                    "host": "perf",
                }
            )
            if not failed:
                right = float(k % 3 != 0 or i % 2 == 0)
                scores.append({"generation_id": next_id, "metric": METRICS[0], "value": right})
                value = ((i * 31 + k * 17) % 1000) / 1000
                scores.append({"generation_id": next_id, "metric": METRICS[1], "value": value})
            next_id += 1
        with session_scope(engine) as session:
            session.exec(insert(Generation), params=rows)
            session.exec(insert(Score), params=scores)
        for metric in METRICS:  # the leaderboard the summary and the matrix read
            values = [x["value"] for x in scores if x["metric"] == metric]
            mean = statistics.fmean(values)
            half = 1.96 * statistics.pstdev(values) / len(values) ** 0.5
            aggregates.append(
                {"config_hash": h, "metric": metric, "n": len(values), "mean": mean,
                 "se": half / 1.96, "ci_low": mean - half, "ci_high": mean + half,
                 "method": "normal", "note": ""}
            )  # fmt: skip
    with session_scope(engine) as session:
        replace_aggregates(session, experiment_id, aggregates)
    engine.dispose()
    return "perf-view", hashes


def timed(call, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=100_000)
    parser.add_argument("--database", help="SQLAlchemy URL of an EMPTY database (default: SQLite)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite:///{Path(tmp) / 'view.db'}"
        start = time.perf_counter()
        name, hashes = fill(url, args.generations)
        print(f"filled {args.generations:,} generations in {time.perf_counter() - start:.1f} s")
        engine = make_engine(url)
        client = TestClient(create_app(engine))
        e = f"/e/{name}"
        requests = {
            "first page (HTTP)": e,
            "filtered: config + rougeL 0.2-0.4, sorted by it (HTTP)": (
                f"{e}?config={hashes[3]}&metric=rougeL&min=0.2&max=0.4&sort=metric&dir=desc"
            ),
            "filtered: failed only (HTTP)": f"{e}?failed=yes",
            "filtered: case text + group (HTTP)": f"{e}?case=c0001&group=g7",
            "page 1000 of the whole list (HTTP)": f"{e}?page=1000",
            "side by side, largest rougeL difference first (HTTP)": (
                f"{e}/compare?a={hashes[0]}&b={hashes[1]}&metric=rougeL&sort=%7Cdiff%7C"
            ),
            "one case under every config (HTTP)": f"{e}/cases/c000123",
            "one generation (HTTP)": f"{e}/g/12345",
            "text search in output, input, reference (HTTP)": f"{e}?q=answer+is+4242",
            "side by side with its case-by-case summary (HTTP)": (
                f"{e}/compare?a={hashes[0]}&b={hashes[1]}&metric=exact_match"
            ),
            "flip matrix and grid (HTTP)": f"{e}/matrix",
            "summary: leaderboard, verdict, effects (HTTP)": f"{e}/summary",
        }
        for label, path in requests.items():
            start = time.perf_counter()
            response = client.get(path)
            first = (time.perf_counter() - start) * 1000  # the summary and matrix: uncached
            assert response.status_code == 200, (path, response.status_code, response.text[:300])
            median, worst = timed(lambda p=path: client.get(p), args.repeat)
            print(
                f"{label:58s} first {first:8.1f} ms  median {median:7.1f} ms  worst {worst:7.1f} ms"
            )
        with session_scope(engine) as session:
            for label, filters, sort in (
                ("first page (query alone)", Filters(), "id"),
                (
                    "filtered + sorted (query alone)",
                    Filters(configs=(hashes[3],), metric="rougeL", min_value=0.2, max_value=0.4),
                    "metric",
                ),
            ):
                median, worst = timed(
                    lambda f=filters, s=sort: generation_page(session, 1, f, sort=s), args.repeat
                )
                print(f"{label:58s} median {median:7.1f} ms  worst {worst:7.1f} ms")
        engine.dispose()
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
