"""Each model call's transcript: a pipeline's calls keep the messages sent, the text
returned and the chunks retrieved with their similarity; the corpus's embedding, made
once for the run, is marked shared; stored in the stages table and shown on the
generation page."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session, select

from evaluation.backends.base import GenerationResult
from evaluation.backends.retry import RetryPolicy
from evaluation.pipelines import PipelineSetting
from evaluation.pipelines._trace import CaseTrace
from evaluation.run._pipelines import CaseRoute, SharedCalls, run_case
from evaluation.run._work import GenerationRecord, WorkItem
from evaluation.spec import Config, GenerationParams, PromptTemplate
from evaluation.storage.db import make_engine
from evaluation.storage.models import Generation, StageRow
from evaluation.storage.stages import save_case_traces, stages_frame
from evaluation.suites import Case
from evaluation.view.app import create_app
from tests.evaluation.pipelines.test_runtime import SUITE, FakeBackend
from tests.support.review_db import build_review_db

QUESTION = "Which city is the capital?"
ANSWER_PROMPT = "Use only the context below. " * 20 + "{context}\nQ: {task}"  # a long prompt


def rag_item(corpus: Path, case_id: str = "c1") -> WorkItem:
    setting = PipelineSetting.of(
        "rag", {"corpus": str(corpus), "unit": "tokens", "answer_prompt": ANSWER_PROMPT}
    )
    params = GenerationParams(
        chunk_size=4, chunk_overlap=0, retrieve_k=2, min_similarity=-1.0, embed_model="e"
    )
    config = Config("m", params, PromptTemplate("default"), setting)
    return WorkItem(config, Case(case_id, QUESTION, ("x",)), "s")


def two_cases(tmp_path: Path) -> tuple[list[CaseTrace], list[WorkItem]]:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        json.dumps({"id": "d0", "text": "one two three four five six seven eight"}) + "\n"
    )
    route = CaseRoute(FakeBackend(), RetryPolicy(max_attempts=1), shared=SharedCalls())
    items = [rag_item(corpus, "c1"), rag_item(corpus, "c2")]

    async def main():
        return [(await run_case(i, SUITE, route))[2] for i in items]

    return asyncio.run(main()), items


def test_a_rag_case_keeps_each_calls_prompt_output_and_retrieved_chunks(tmp_path):
    (first, second), _ = two_cases(tmp_path)
    assert [s.stage for s in first.stages] == ["embed", "retrieve", "answer"]
    embed, retrieve, answer = first.stages
    assert embed.shared and not retrieve.shared and not answer.shared
    assert retrieve.prompt == (("text", QUESTION),)
    assert answer.prompt[-1][0] == "user" and answer.prompt[-1][1].endswith(f"Q: {QUESTION}")
    assert answer.output.startswith("saw ")
    ids = [c.id for c in answer.retrieved]
    assert ids == first.metadata["retrieved_chunk_ids"]
    assert [round(c.similarity, 6) for c in answer.retrieved] == first.metadata["similarities"]
    assert "one two three four" in answer.prompt[-1][1]  # the chunks' text: in the prompt
    # the second case used the run's embeddings: no embed call of its own
    assert [s.stage for s in second.stages] == ["retrieve", "answer"]


def store_rag_traces(tmp_path: Path):
    """The two rag traces stored under two generations of a toy experiment."""
    (first, second), _ = two_cases(tmp_path)
    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", n_cases=2)
    with Session(db.engine) as session:
        generations = session.exec(
            select(Generation).where(Generation.config_hash == db.configs[0].hash)
        ).all()
        done = GenerationResult("saw", "stop", 1.0, None, 1, 1)  # traces of finished cases
        records = [
            GenerationRecord(
                WorkItem(db.configs[0], case, db.suite.name, 0), "a", 1, result=done, trace=t
            )
            for g, case, t in zip(generations, db.suite.cases, (first, second), strict=True)
        ]
        save_case_traces(session, db.experiment_id, records)
        session.commit()
        return db, [g.id for g in generations]


def test_the_transcript_is_stored_and_shown_on_the_generation_page(tmp_path):
    db, generations = store_rag_traces(tmp_path)
    with Session(db.engine) as session:
        rows = session.exec(select(StageRow).order_by(StageRow.id)).all()
        runs = session.exec(text("SELECT case_uid, calls FROM case_runs")).all()
    embed = next(r for r in rows if r.stage == "embed")
    answer = next(r for r in rows if r.stage == "answer")
    assert embed.shared is True and answer.shared is False
    assert answer.prompt[-1][0] == "user" and QUESTION in answer.prompt[-1][1]
    assert answer.output.startswith("saw ")
    assert sorted(c["id"] for c in answer.retrieved) == ["d0#0", "d0#1"]
    assert sorted(calls for _, calls in runs) == [2, 2]  # the shared embed charged to no case
    with db.engine.connect() as connection:  # nothing kept is SQL NULL, not JSON 'null'
        kept = connection.exec_driver_sql(
            "SELECT COUNT(*) FROM stages WHERE retrieved IS NULL AND stage != 'answer'"
        ).scalar()
    assert kept == len(rows) - 2

    page = TestClient(create_app(db.engine)).get(f"/e/{db.experiment}/g/{generations[0]}")
    block = page.text[page.text.index('id="transcript"') :]
    assert block.count('<li class="call') == 3
    assert "shared: computed once for the run" in block
    assert "waited 0.00 s" in block and "service " in block
    similarity = f"{answer.retrieved[0]['similarity']:.3f}"
    assert f'<td>{answer.retrieved[0]["id"]}</td><td class="num similarity">{similarity}' in block
    assert "Q: Which city is the capital?" in block and answer.output in block
    assert "are not stored" not in block


def test_a_database_from_before_transcripts_opens_and_says_so(tmp_path):
    db, generations = store_rag_traces(tmp_path)
    url = str(db.engine.url)
    db.engine.dispose()
    with make_engine(url).begin() as connection:  # the stages table of the last release
        for column in ("prompt", "output", "retrieved", "shared"):
            connection.exec_driver_sql(f"ALTER TABLE stages DROP COLUMN {column}")
    engine = make_engine(url)  # adds the columns back, empty
    with Session(engine) as session:
        row = session.exec(select(StageRow).where(StageRow.stage == "answer")).first()
    assert row.prompt is None and row.output is None and row.shared is None
    page = TestClient(create_app(engine)).get(f"/e/{db.experiment}/g/{generations[0]}").text
    assert 'id="no-transcript"' in page and "only timings and tokens are shown" in page


def test_the_leaderboard_reads_stages_without_their_transcript(tmp_path):
    db, _ = store_rag_traces(tmp_path)
    with Session(db.engine) as session:
        frame = stages_frame(session, db.experiment_id)
    assert len(frame) == 5 and {"duration_s", "wait_s", "shared"} <= set(frame.columns)
    assert not {"prompt", "output", "retrieved"} & set(frame.columns)
