"""The view app over HTTP: every page answers, untrusted text is escaped, bad query
values are refused with one line, unknown names are 404s, foreign hosts are refused."""

from __future__ import annotations

import html

import httpx
import pytest
from sqlmodel import Session

from evaluation.review.app import LOOPBACK_HOSTS
from evaluation.storage.models import Generation
from evaluation.storage.repository import generations_frame
from evaluation.view.app import create_app
from tests.support.asgi_server import serving
from tests.support.review_db import build_review_db


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    db = build_review_db(f"sqlite:///{tmp_path_factory.mktemp('viewapp') / 'r.db'}", n_cases=3)
    with Session(db.engine) as session:
        first = int(generations_frame(session, db.experiment_id).id.iloc[0])
        session.get(Generation, first).output = "<script>alert(1)</script>"
        session.commit()
    with (
        serving(create_app(db.engine, allowed_hosts=LOOPBACK_HOSTS)) as url,
        httpx.Client(base_url=url) as c,
    ):
        yield c, db, first


def test_every_page_answers_and_escapes_model_text(client):
    c, db, first = client
    e = f"/e/{db.experiment}"
    for path in ("/", e, f"{e}/summary", f"{e}/compare", f"{e}/cases/c01", f"{e}/g/{first}"):
        response = c.get(path)
        assert response.status_code == 200, path
        assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in c.get(f"{e}/g/{first}").text
    assert c.get("/static/view.css").status_code == 200
    assert c.get("/static/view.js").status_code == 200


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("min=abc", "min: expected a number, got 'abc'"),
        ("page=0", "page: expected 1 or more, got 0"),
        ("failed=maybe", "failed: expected yes, no or any, got 'maybe'"),
        ("sort=colour", "sort: expected one of"),
    ],
)
def test_bad_query_values_are_refused_with_one_line(client, query, says):
    c, db, _ = client
    response = c.get(f"/e/{db.experiment}?{query}")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")  # a page, not JSON
    assert "400: bad request" in response.text
    assert says.replace("'", "&#39;") in response.text


def test_unknown_names_are_404_and_foreign_hosts_400(client):
    c, db, _ = client
    missing = c.get("/e/no-such-experiment")
    assert missing.status_code == 404 and "<h2>404: not found</h2>" in missing.text
    assert c.get("/e/no-such-experiment/summary").status_code == 404
    assert c.get(f"/e/{db.experiment}/g/not-a-number").status_code == 400
    assert c.get(f"/e/{db.experiment}/cases/no-such-case").status_code == 404
    assert c.get(f"/e/{db.experiment}/g/999999").status_code == 404
    assert c.get("/", headers={"host": "evil.example"}).status_code == 400


def test_the_summary_shows_the_reports_numbers(client):
    """Leaderboard (rank, distinguishing label, intervals), verdict and configs within
    noise of the best: what the report and the CLI compute, from the same functions."""
    from evaluation.compare._leaderboard import ranked_table
    from evaluation.report import gather

    c, db, _ = client
    page = c.get(f"/e/{db.experiment}/summary").text
    with Session(db.engine) as session:
        data = gather(session, db.experiment)
    assert html.escape(data.comparison.verdict) in page
    labels = data.board.labels
    ordered = [labels[x] for x in ranked_table(data.board)["config"]]
    positions = [page.index(f">{label}</a>") for label in ordered]
    assert positions == sorted(positions)  # the CLI's order
    assert page.count("within noise of the best</span>") == len(data.comparison.tied_at_top)
    assert 'http-equiv="refresh"' not in page  # not running


def test_the_summary_reloads_itself_while_a_run_is_going(client):
    from evaluation.storage.models import Experiment

    c, db, _ = client
    with Session(db.engine) as session:
        row = session.get(Experiment, db.experiment_id)
        before, row.status = row.status, "running"
        session.commit()
    try:
        page = c.get(f"/e/{db.experiment}/summary").text
    finally:
        with Session(db.engine) as session:
            session.get(Experiment, db.experiment_id).status = before
            session.commit()
    assert '<meta http-equiv="refresh" content="5">' in page and 'id="live"' in page


def test_scores_are_coloured_only_on_a_zero_to_one_scale_with_a_direction():
    from evaluation.view.app import score_class

    assert (score_class("exact_match", 1.0), score_class("exact_match", 0.0)) == ("pass", "fail")
    assert score_class("rougeL", 0.4) == "partial"
    assert score_class("output_length", 1.0) == ""  # descriptive: no better end
    assert score_class("output_length", 7.0) == "" and score_class("exact_match", None) == ""
    # echoing the prompt is plainly bad: lower is better, so it is coloured
    assert (score_class("echoes_prompt", 1.0), score_class("echoes_prompt", 0.0)) == (
        "fail",
        "pass",
    )


def test_side_by_side_names_the_test_and_never_prints_p_as_zero(client):
    """It printed `clustered paired t p = 0.000`: neither a p-value a reader can use
    nor a word on whether it was adjusted."""
    from evaluation.view.app import p_value_text

    assert p_value_text(0.0000042) == "p < 0.001"
    assert p_value_text(0.0123) == "p = 0.012"
    assert p_value_text(None) == "p –"
    c, db, _ = client
    with Session(db.engine) as session:
        a, b = sorted(set(generations_frame(session, db.experiment_id).config_hash))[:2]
    page = c.get(f"/e/{db.experiment}/compare", params={"a": a, "b": b}).text
    assert "p = 0.000" not in page and "not adjusted for multiple comparisons" in page


def test_the_pipeline_run_reads_in_words_not_python_values(tmp_path):
    """The block showed `meta` as a Python dict, raw column names, a time with
    microseconds and `TTFT – s`."""
    from datetime import UTC, datetime

    from fastapi.testclient import TestClient

    from evaluation.storage.models import CaseRun

    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", n_cases=2)
    with Session(db.engine) as session:
        generation = session.get(
            Generation, int(generations_frame(session, db.experiment_id).id.iloc[0])
        )
        generation.ttft_s = None
        key = {k: getattr(generation, k) for k in ("experiment_id", "config_hash", "case_uid")}
        session.add(
            CaseRun(
                **key,
                pipeline="rag",
                wall_s=1.5,
                calls=2,
                context_truncated_calls=1,
                meta={"retrieved_chunk_ids": ["d1#0", "d2#3"], "empty_hits": []},
                created_at=datetime(2026, 11, 24, 2, 17, 35, 383066, tzinfo=UTC),
            )
        )
        session.commit()
        generation_id = generation.id
    page = TestClient(create_app(db.engine)).get(f"/e/{db.experiment}/g/{generation_id}").text
    block = page[page.index('id="pipeline-run"') :]
    assert "{'" not in block and "wall_s" not in block and "context_truncated_calls" not in block
    assert "2026-11-24 02:17:35<" in block and "383066" not in block
    assert "<td>retrieved chunk ids</td><td>d1#0, d2#3</td>" in block
    assert "<td>empty hits</td><td>none</td>" in block
    assert "TTFT: not measured" in page and "TTFT – s" not in page
