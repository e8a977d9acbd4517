"""One small sweep through the real `evaluate` flow on the Ollama stand-in with
``semantic_similarity``: the embedding model checked at the host, every reference and
output embedded once for the whole sweep, the stored values the cosines of the
stand-in's vectors; then ``rescore`` embeds again from the stored hosts."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest
import yaml
from sqlmodel import Session, select

from evaluation.backends._simulated_embed import simulated_embedding
from evaluation.metrics._echo import answer_part
from evaluation.storage.db import make_engine
from evaluation.storage.models import CaseRow, Generation, Score, ScoreDetail
from evaluation.suites import load_suite
from flows.evaluate import evaluate
from flows.rescore import rescore
from tests.conftest import REPO
from tests.support.standin_ollama import StandInConfig, running_standin

pytestmark = pytest.mark.usefixtures("prefect_harness")

SUITE = REPO / "benchmarks/suites/write-constrained.jsonl"
EMBED = "nomic-embed-text"


def test_semantic_similarity_through_the_evaluate_flow(tmp_path, database_url):
    config = StandInConfig(models=("llama3.2:3b", EMBED), slots=2, latency_ms=1.0)
    spec = tmp_path / "spec.yaml"
    with running_standin(config) as server:
        data = {
            "name": "semantic-flow",
            "suite": str(SUITE),
            "models": ["llama3.2:3b"],
            "grid": {"temperature": [0.0, 0.5], "num_predict": [48]},
            "metrics": ["constraints", {"semantic_similarity": {"embed_model": EMBED}}],
            "hosts": [{"name": "gpu-a", "url": server.url, "slots": 2, "kind": "ollama"}],
        }
        spec.write_text(yaml.safe_dump(data))
        summary = asyncio.run(evaluate(spec_path=str(spec), database=database_url))
        embedded_by_run = dict(server.stats.embedded)
        rescore(experiment="semantic-flow", database=database_url)
        embedded_after_rescore = dict(server.stats.embedded)

    suite = load_suite(SUITE)
    references = {r for case in suite.cases for r in case.references}
    assert summary["failed"] == 0 and summary["generated"] == 2 * len(suite.cases)
    # two configs, yet each reference (and each distinct output) was embedded once
    assert references <= set(embedded_by_run)
    assert set(embedded_by_run.values()) == {1}
    assert set(embedded_after_rescore.values()) == {2}  # a rescore is a new run

    by_id = {case.id: case for case in suite.cases}
    name = f"semantic_similarity@{EMBED}"
    with Session(make_engine(database_url)) as session:
        generations = {g.id: g for g in session.exec(select(Generation)).all()}
        scores = session.exec(select(Score).where(Score.metric == name)).all()
        details = session.exec(select(ScoreDetail).where(ScoreDetail.metric == name)).all()
        case_of = {row.uid: row.case_id for row in session.exec(select(CaseRow)).all()}
    assert len(scores) == len(generations)
    assert not details  # real (stand-in) vectors: no SIMULATED label
    scored = 0
    for score in scores:
        generation = generations[score.generation_id]
        case = by_id[case_of[generation.case_uid]]
        if not case.references:
            assert score.value is None
            continue
        # the answer is scored, not what it repeats of the prompt (metrics/_echo.py)
        answer = answer_part(generation.output, case.prompt_text)
        out = np.array(simulated_embedding(EMBED, answer))
        best = max(float(out @ np.array(simulated_embedding(EMBED, r))) for r in case.references)
        assert score.value == pytest.approx(best, abs=1e-9)
        scored += 1
    assert scored == 2 * sum(1 for c in suite.cases if c.references)
    assert not any(math.isnan(s.value) for s in scores if s.value is not None)
