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


PASSAGE = (
    "Read the passage and answer the question with a short phrase. Passage: Apollo 11 "
    "launched from Kennedy Space Center on 16 July 1969 aboard a Saturn V rocket. "
    "Question: What rocket launched Apollo 11?"
)


def test_a_match_explained_on_the_answer_part_after_the_echo_cut():
    case = Case("c", PASSAGE, references=("Saturn V",))
    echo = "phrase. Passage: Apollo 11 launched from Kennedy Space Center on 16 July 1969 aboard a"
    echo += " Saturn V"
    why = match_explanation(echo, case, contains=True, prompt=PASSAGE)
    assert why.startswith("an echo of the prompt (100% of the output's words) was cut first")
    assert "normalised answer part «»" in why and "(match)" not in why
    kept = match_explanation(f"{echo}. Answer: Saturn V", case, contains=True, prompt=PASSAGE)
    assert "normalised answer part «answer saturn v»" in kept and "«saturn v» (match)" in kept
    plain = match_explanation("Saturn V", case, contains=False, prompt=PASSAGE)
    assert plain.startswith("normalised output «saturn v» equals") and "cut" not in plain


def test_the_generation_page_explains_contains_on_what_scoring_compared(tmp_path):
    """The stored input holds the reference; an output that repeats it scored 0 on
    contains, and the page says what was compared, not the text before the cut."""
    from evaluation.storage.models import CaseInput, CaseRow, Generation
    from evaluation.view.detail import generation_detail

    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", n_cases=1, temperatures=(0.0,))
    passage = PASSAGE.replace("a Saturn V rocket", "the ship City 0")
    echo = "phrase. Passage: Apollo 11 launched from Kennedy Space Center on 16 July 1969 aboard"
    echo += " the ship City 0"
    with Session(db.engine) as session:
        generation = session.get(
            Generation, int(generations_frame(session, db.experiment_id).id[0])
        )
        generation.output = echo
        stored = session.get(CaseInput, generation.case_uid) or CaseInput(uid=generation.case_uid)
        stored.messages = [{"role": "user", "content": passage}]
        session.add_all([generation, stored])
        session.commit()
        assert session.get(CaseRow, generation.case_uid) is not None
        detail = generation_detail(session, db.experiment_id, int(generation.id))
    why = detail["explanations"]["contains"].text
    assert "an echo of the prompt" in why and "was cut first" in why
    assert "«city 0» (match)" not in why and "normalised answer part «»" in why


def test_a_match_explained_after_the_turn_the_output_started_of_its_own():
    case = Case("c", PASSAGE, references=("Saturn V",))
    output = "Answer: Vostok.\n\nQuestion: What launched Apollo 11?\n\nAnswer: Saturn V"
    why = match_explanation(output, case, contains=True, prompt=PASSAGE)
    assert why.startswith("the output's own next turn (from «Question: What launched Apollo 11?»)")
    assert "normalised answer part «answer vostok»" in why and "(match)" not in why


def test_a_match_explained_when_the_output_only_asks_a_question_of_its_own():
    case = Case("two", "What is 2 + 2? Answer with a number.", references=("4",))
    why = match_explanation(
        "\n\nWhat is 2 + 4? Answer with a", case, contains=True, prompt=case.prompt_text
    )
    assert why.startswith(
        "the output only asks a question of its own («What is 2 + 4?»), no answer"
    )
    assert "normalised answer part «»" in why and "(match)" not in why


def test_a_match_explained_looks_for_the_output_s_own_question_once(monkeypatch):
    """match_explanation asked for the output's own question twice: once inside
    answer_part, then again itself (each a pass over the prompt's questions)."""
    from evaluation.metrics import _echo, _text

    asked: list[str] = []
    original = _echo.invented_question

    def counted(output: str, prompt: str) -> str | None:
        asked.append(output)
        return original(output, prompt)

    monkeypatch.setattr(_echo, "invented_question", counted)
    monkeypatch.setattr(_text, "invented_question", counted, raising=False)  # main's import
    case = Case("two", "What is 2 + 2? Answer with a number.", references=("4",))
    why = match_explanation(
        "\n\nWhat is 2 + 4? Answer with a", case, contains=True, prompt=case.prompt_text
    )
    assert why.startswith("the output only asks a question of its own («What is 2 + 4?»)")
    assert len(asked) == 1
