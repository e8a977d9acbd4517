"""The view app over HTTP: every page answers, untrusted text is escaped, bad query
values are refused with one line, unknown names are 404s, foreign hosts are refused."""

from __future__ import annotations

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
    for path in ("/", e, f"{e}/compare", f"{e}/cases/c01", f"{e}/g/{first}"):
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
    assert response.status_code == 400 and says in response.json()["detail"]


def test_unknown_names_are_404_and_foreign_hosts_400(client):
    c, db, _ = client
    assert c.get("/e/no-such-experiment").status_code == 404
    assert c.get(f"/e/{db.experiment}/cases/no-such-case").status_code == 404
    assert c.get(f"/e/{db.experiment}/g/999999").status_code == 404
    assert c.get("/", headers={"host": "evil.example"}).status_code == 400
