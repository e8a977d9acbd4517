"""Each pipeline kind through the real ``evaluate`` flow on both real models: map_reduce
over a short document, rag over a small corpus embedded by a real embedding model
(all-MiniLM-L6-v2 on the same llama.cpp server), sections with an assembly. One case
each, 12 tokens per call: what is checked is that every call reached the real engine and
was recorded, and that retrieval ranks by real embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.models import CaseRun, StageRow
from tests.real_models.conftest import run_sweep, stored, write_spec
from tests.support.real_models import CHAT_MODELS, MINILM

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

DOCUMENT = (
    "The Millbrook river bridge will close to all traffic from 3 June for six weeks while "
    "engineers replace its deck. Buses will take the ring road instead. The council says "
    "the work costs 2.4 million pounds and was planned after an inspection last winter "
    "found cracks in the concrete. Pedestrians can use a temporary footbridge."
)
CORPUS = {
    "bridge": DOCUMENT,
    "bees": "Honeybees tell their hive mates where flowers are with a waggle dance: the "
    "angle of the dance gives the direction and its length the distance.",
    "coffee": "Brightcup, a regional coffee chain, reported twelve percent more revenue "
    "this year and will open four new shops in the spring.",
}


def write_suite(folder: Path) -> Path:
    case = {
        "id": "bridge-1",
        "input": "How long will the Millbrook bridge be closed?",
        "references": ["six weeks"],
        "metadata": {"document": DOCUMENT},
    }
    (folder / "bridge.suite.yaml").write_text(
        "name: bridge\nversion: '1'\ntask_type: qa\ndefault_metrics: [contains]\n"
    )
    path = folder / "bridge.jsonl"
    path.write_text(json.dumps(case) + "\n")
    return path


def stages(database_url: str) -> list[StageRow]:
    with session_scope(make_engine(database_url)) as session:
        return list(session.query(StageRow).all())


PIPELINES = {
    "map_reduce": {"name": "map_reduce", "chunk_size": 30, "chunk_overlap": 5},
    "sections": {
        "name": "sections",
        "sections": {
            "facts": "List the facts of: {document}",
            "cost": "What does it cost? {document}",
        },
        "assembly_prompt": "Write one sentence from: {sections}",
    },
    "rag": {
        "name": "rag",
        "embed_model": MINILM,
        "chunk_size": 40,
        "chunk_overlap": 0,
        "retrieve_k": 1,
        "min_similarity": -1.0,
    },
}
EXPECTED_STAGES = {
    "map_reduce": {"map", "reduce"},
    "sections": {"section:facts", "section:cost", "assembly"},
    "rag": {"embed", "retrieve", "answer"},
}


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize("kind", list(PIPELINES))
def test_a_pipeline_on_both_real_models(kind, real_server, tmp_path, database_url):
    suite = write_suite(tmp_path)
    pipeline = dict(PIPELINES[kind])
    if kind == "rag":
        corpus = tmp_path / "corpus.jsonl"
        corpus.write_text(
            "".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in CORPUS.items())
        )
        pipeline["corpus"] = str(corpus)
    name = kind.replace("_", "-")
    spec = write_spec(
        tmp_path, real_server, suite, name=name, pipeline=pipeline, grid={"num_predict": [12]}
    )
    summary = run_sweep(spec, database_url)
    assert (summary["generated"], summary["failed"]) == (len(CHAT_MODELS), 0)
    generations, scores = stored(database_url, name)
    assert set(generations["model"]) == set(CHAT_MODELS)
    assert len(scores[scores["metric"] == "contains"]) == len(CHAT_MODELS)
    recorded = stages(database_url)
    assert {s.stage for s in recorded} == EXPECTED_STAGES[kind]
    for stage in recorded:
        assert stage.host == "llama-cpp" and stage.duration_s > 0
        if stage.stage not in ("embed", "retrieve"):  # a chat model's call (the server
            # streams no usage, so its prompt count is unknown: the estimate is recorded)
            assert stage.model in CHAT_MODELS and stage.estimated_prompt_tokens > 0
    if kind == "rag":  # real embeddings rank the bridge's own text first for its question
        with session_scope(make_engine(database_url)) as session:
            runs = list(session.query(CaseRun).all())
        assert len(runs) == len(CHAT_MODELS)
        for run in runs:
            assert run.meta["retrieved_chunk_ids"][0].startswith("bridge#")
            assert run.meta["similarities"][0] > 0.3
    assert yaml.safe_load(spec.read_text())["pipeline"]["name"] == kind
