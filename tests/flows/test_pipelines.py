"""Pipelines through the real ``evaluate`` flow against the Ollama stand-in: each
built-in, a user pipeline from a test module, and resume after SIGKILL mid-pipeline.
Small sweeps (a few cases): each test runs in seconds."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlmodel import Session, select

from evaluation.compare._leaderboard import load_leaderboard, render_markdown
from evaluation.pipelines._retrieval import corpus_chunks
from evaluation.storage.db import make_engine
from evaluation.storage.models import CaseRun, ConfigPipeline, ConfigRow, Generation, StageRow
from flows.evaluate import evaluate
from tests.conftest import REPO
from tests.support.standin_ollama import StandInConfig, running_standin

MODEL = "llama3.2:3b"
EMBED = "nomic-embed-text"
WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "mu",
]


def document(n_words: int, seed: int) -> str:
    return " ".join(WORDS[(i * 7 + seed) % len(WORDS)] + str(i) for i in range(n_words))


def write_suite(folder: Path, n_cases: int, n_words: int = 30) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "docs.suite.yaml").write_text(
        yaml.safe_dump(
            {"name": "docs", "version": "1", "task_type": "qa", "default_metrics": ["contains"]}
        )
    )
    cases = [
        {
            "id": f"doc-{i}",
            "input": f"What follows {WORDS[i % len(WORDS)]}?",
            "references": [WORDS[i % len(WORDS)]],
            "metadata": {"document": document(n_words, i), "fail": i == 1},
        }
        for i in range(n_cases)
    ]
    path = folder / "docs.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in cases))
    return path


def write_spec(tmp_path: Path, url: str, suite: Path, **fields: Any) -> Path:
    spec = {
        "name": "pipes",
        "suite": str(suite),
        "models": [MODEL],
        "grid": {"num_predict": [64]},
        "hosts": [{"name": "a", "url": url, "slots": 2}],
    }
    for key, value in fields.items():
        spec[key] = spec[key] | value if isinstance(value, dict) and key == "grid" else value
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def run(spec: Path, database_url: str) -> dict[str, Any]:
    return asyncio.run(evaluate(spec_path=str(spec), database=database_url))


def rows(database_url: str, model: type) -> list[Any]:
    with Session(make_engine(database_url)) as session:
        return list(session.exec(select(model)).all())


@pytest.mark.usefixtures("prefect_harness")
def test_map_reduce_parallel_and_refine(tmp_path, database_url):
    suite = write_suite(tmp_path / "suite", n_cases=2, n_words=30)
    with running_standin(StandInConfig(models=(MODEL,), slots=2, latency_ms=30.0)) as server:
        spec = write_spec(
            tmp_path,
            server.url,
            suite,
            pipeline={"name": "map_reduce", "unit": "tokens", "chunk_overlap": 2},
            grid={"chunk_size": [12], "mode": ["parallel", "refine"]},
        )
        summary = run(spec, database_url)
        peak = server.stats.max_in_flight
    assert summary["generated"] == 4 and summary["failed"] == 0
    assert peak <= 2  # parallel maps never exceed the host's slots
    with Session(make_engine(database_url)) as session:
        board = load_leaderboard(session, "pipes")
    markdown = render_markdown(board)
    assert "calls/case" in markdown and "| map |" in markdown and "| reduce |" in markdown
    assert sorted(board.table["calls_per_case"]) == [3.0, 4.0]  # refine: 3, parallel: 4
    assert "Pipeline stages" in Path(summary["report"]).read_text()
    cases = rows(database_url, CaseRun)
    stages = rows(database_url, StageRow)
    pipelines = {p.config_hash: p.params["mode"] for p in rows(database_url, ConfigPipeline)}
    assert set(pipelines.values()) == {"parallel", "refine"}
    # 30 words in chunks of 12 overlapping 2: starts 0, 10, 20 -> 3 chunks
    for case in cases:
        own = [
            s for s in stages if (s.config_hash, s.case_uid) == (case.config_hash, case.case_uid)
        ]
        names = [s.stage for s in own]
        if pipelines[case.config_hash] == "parallel":
            assert sorted(names) == ["map", "map", "map", "reduce"]
            assert names[-1] == "reduce"
        else:
            assert names == ["map", "refine", "refine"]
        assert case.calls == len(own) and case.wall_s > 0
        assert all(s.model == MODEL and s.duration_s > 0 and s.prompt_tokens > 0 for s in own)
        assert all(s.output_tokens > 0 and s.host == "a" for s in own)
    # the generation's counters are the sum over its calls
    generations = {(g.config_hash, g.case_uid): g for g in rows(database_url, Generation)}
    for case in cases:
        own = [
            s for s in stages if (s.config_hash, s.case_uid) == (case.config_hash, case.case_uid)
        ]
        generation = generations[(case.config_hash, case.case_uid)]
        assert generation.eval_count == sum(s.output_tokens for s in own)
        assert generation.latency_s == pytest.approx(case.wall_s)


@pytest.mark.usefixtures("prefect_harness")
def test_sections_parallel_and_sequential_with_assembly(tmp_path, database_url):
    suite = write_suite(tmp_path / "suite", n_cases=1, n_words=20)
    sections = {
        "facts": "List the facts of: {document}",
        "risks": "Name the risks. Earlier sections: {previous}\n{document}",
    }
    # 4 slots, 2 cases (one per config): two slots stay free for the parallel sections.
    # Each call takes 0.5 s, so taking a spare slot (an API write, ~0.1 s on a loaded CI
    # machine) cannot read as "not at once" (at 30 ms it did).
    with running_standin(StandInConfig(models=(MODEL,), slots=4, latency_ms=500.0)) as server:
        spec = write_spec(
            tmp_path,
            server.url,
            suite,
            hosts=[{"name": "a", "url": server.url, "slots": 4}],
            pipeline={
                "name": "sections",
                "sections": sections,
                "assembly_prompt": "Write the report from: {sections}",
            },
            grid={"parallel": [True, False]},
        )
        summary = run(spec, database_url)
        peak = server.stats.max_in_flight
    assert summary["generated"] == 2 and peak <= 4
    parallel = {c.hash: c.parallel for c in rows(database_url, ConfigRow)}
    by_config: dict[bool, dict[str, StageRow]] = {True: {}, False: {}}
    for stage in rows(database_url, StageRow):
        by_config[parallel[stage.config_hash]][stage.stage] = stage
    for stages in by_config.values():
        assert set(stages) == {"section:facts", "section:risks", "assembly"}
    # sequential: the second section saw the first (its prompt is longer by that text)
    seq, par = by_config[False], by_config[True]
    assert seq["section:risks"].prompt_tokens > par["section:risks"].prompt_tokens
    assert (
        seq["section:risks"].start_s
        >= seq["section:facts"].start_s + seq["section:facts"].duration_s - 1e-3
    )
    # parallel: both sections ran at once, the second on a free slot
    assert (
        par["section:risks"].start_s
        < par["section:facts"].start_s + par["section:facts"].duration_s
    )


@pytest.mark.usefixtures("prefect_harness")
def test_rag_embeds_the_corpus_once_and_records_retrieved_chunks(tmp_path, database_url):
    suite = write_suite(tmp_path / "suite", n_cases=2)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "".join(json.dumps({"id": f"d{i}", "text": document(25, i)}) + "\n" for i in range(4))
    )
    config = StandInConfig(models=(MODEL, EMBED), slots=2, latency_ms=5.0)
    with running_standin(config) as server:
        spec = write_spec(
            tmp_path,
            server.url,
            suite,
            pipeline={
                "name": "rag",
                "corpus": str(corpus),
                "embed_model": EMBED,
                "chunk_size": 10,
                "chunk_overlap": 0,
                "min_similarity": -1.0,
            },
            grid={"retrieve_k": [1, 3]},
        )
        summary = run(spec, database_url)
        embedded = dict(server.stats.embedded)
    assert summary["generated"] == 4 and summary["failed"] == 0
    # 4 documents x 25 words in chunks of 10: 3 chunks each, embedded once for both configs
    documents = tuple((f"d{i}", document(25, i)) for i in range(4))
    chunk_texts = [c.text for c in corpus_chunks(documents, 10, 0, "tokens")]
    assert len(chunk_texts) == 12
    assert [embedded.get(t) for t in chunk_texts] == [1] * 12
    k = {c.hash: c.retrieve_k for c in rows(database_url, ConfigRow)}
    for case in rows(database_url, CaseRun):
        ids = case.meta["retrieved_chunk_ids"]
        assert len(ids) == k[case.config_hash]
        assert all(i.split("#")[0] in {"d0", "d1", "d2", "d3"} for i in ids)
    stages = {s.stage for s in rows(database_url, StageRow)}
    assert stages == {"embed", "retrieve", "answer"}


@pytest.mark.usefixtures("prefect_harness")
def test_user_pipeline_from_a_module_and_a_failing_case(tmp_path, database_url):
    suite = write_suite(tmp_path / "suite", n_cases=3)
    with running_standin(StandInConfig(models=(MODEL,), slots=2, latency_ms=5.0)) as server:
        spec = write_spec(
            tmp_path,
            server.url,
            suite,
            pipeline={"name": "tests.support.user_pipelines:thorough", "passes": 2},
            grid={"chunk_size": [3]},
        )
        summary = run(spec, database_url)
    assert summary["generated"] == 2 and summary["failed"] == 1  # the sweep went on
    generations = {g.case_uid: g for g in rows(database_url, Generation)}
    failed = generations["docs/doc-1"]
    assert failed.status == "failed"
    assert "RuntimeError: no analysis for doc-1" in failed.error
    assert all(generations[f"docs/doc-{i}"].status == "ok" for i in (0, 2))
    stages = sorted(s.stage for s in rows(database_url, StageRow))
    assert stages == ["draft:0", "draft:0", "draft:1", "draft:1", "final", "final"]
    assert {c.meta["passes"] for c in rows(database_url, CaseRun)} == {2}


def stored(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM generations WHERE status='ok'").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_sigkill_mid_pipeline_then_rerun_redoes_only_unfinished_cases_whole(tmp_path):
    db = tmp_path / "results.db"
    env = os.environ | {
        "EVALFLOW_DATABASE_URL": f"sqlite:///{db}",
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    n_cases, calls_per_case = 16, 4  # 30 words in chunks of 12 (overlap 2): 3 maps + reduce
    suite = write_suite(tmp_path / "suite", n_cases=n_cases, n_words=30)
    with running_standin(StandInConfig(models=(MODEL,), slots=2, latency_ms=60.0)) as server:
        spec = write_spec(
            tmp_path,
            server.url,
            suite,
            name="pipe-kill",
            pipeline={"name": "map_reduce", "chunk_size": 12, "chunk_overlap": 2},
        )

        def cli() -> subprocess.Popen:
            return subprocess.Popen(
                [sys.executable, "-m", "flows.cli", "run", str(spec)],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        first = cli()
        deadline = time.monotonic() + 180
        while stored(db) < 3 and time.monotonic() < deadline:
            assert first.poll() is None, first.stdout.read().decode()
            time.sleep(0.05)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        at_kill = stored(db)
        assert 0 < at_kill < n_cases
        requests_before = server.stats.requests
        output, _ = cli().communicate(timeout=300)
        redone = server.stats.requests - requests_before
    text = output.decode()
    assert "Traceback" not in text and f"{at_kill} generations already stored" in text
    with sqlite3.connect(db) as conn:
        per_case = conn.execute(
            "SELECT count(*) FROM stages GROUP BY config_hash, case_uid, sample_index"
        ).fetchall()
        runs = conn.execute("SELECT count(*) FROM case_runs").fetchone()[0]
    assert stored(db) == runs == n_cases
    assert [n for (n,) in per_case] == [calls_per_case] * n_cases  # no stage stored twice
    # finished cases were never redone; each interrupted one was redone whole
    assert redone == (n_cases - at_kill) * calls_per_case
