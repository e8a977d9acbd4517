"""Each score explained on the generation page: what exact_match and contains compared
after normalisation, a program's failed tests and why (not its JSON), the judge's
reasoning."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlmodel import Session

from evaluation.metrics import match_explanation
from evaluation.review.app import LOOPBACK_HOSTS
from evaluation.review.schema import Judgement
from evaluation.storage.models import Score
from evaluation.storage.repository import generations_frame
from evaluation.suites import Case
from evaluation.view.app import create_app
from evaluation.view.explain import _from_detail
from tests.support.asgi_server import serving
from tests.support.review_db import build_review_db


def test_exact_match_and_contains_say_what_they_compared():
    case = Case("c", "q", references=("The City of Paris",))
    exact = match_explanation("city of Paris!", case, contains=False)
    assert "«city of paris»" in exact and "(match)" in exact
    missed = match_explanation("It is Lyon.", case, contains=True)
    assert "«it is lyon»" in missed and "(match)" not in missed and "whole words" in missed
    assert match_explanation("x", Case("c", "q"), contains=False) is None


def test_a_program_report_reads_as_counts_and_failed_tests():
    detail = json.dumps(
        {
            "passed": 3,
            "total": 5,
            "failed": [{"test": "assert f(2) == 4", "reason": "expected 4, got 5"}],
        }
    )
    why = _from_detail(detail)
    assert why.text == "3 of 5 tests passed"
    assert why.failed_tests == (("assert f(2) == 4", "expected 4, got 5"),)
    assert _from_detail("looked for [source]").text == "looked for [source]"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    db = build_review_db(f"sqlite:///{tmp_path_factory.mktemp('explain') / 'r.db'}", n_cases=3)
    with Session(db.engine) as session:
        first = int(generations_frame(session, db.experiment_id).id.iloc[0])
        session.add(Score(generation_id=first, metric="judge_accuracy", value=0.75))
        session.add(
            Judgement(
                experiment_id=db.experiment_id,
                judge="qwen2.5:7b",
                generation_id=first,
                criterion="accuracy",
                stars=4,
                reason="names the right city but adds an unasked detail",
            )
        )
        session.commit()
    with (
        serving(create_app(db.engine, allowed_hosts=LOOPBACK_HOSTS)) as url,
        httpx.Client(base_url=url) as client,
    ):
        yield client, db, first


def test_the_generation_page_explains_every_score(served):
    client, db, first = served
    page = client.get(f"/e/{db.experiment}/g/{first}").text
    assert "normalised output «city 0»" in page and "«city 0» (match)" in page
    assert "names the right city but adds an unasked detail" in page  # the judge's reason
    assert '{"passed"' not in page
