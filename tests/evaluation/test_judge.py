"""The judge against the HTTP stand-in of Ollama: JSON-schema format, fixed seeds,
retries on malformed output, unscored instead of a crash, both pairwise orders."""

from __future__ import annotations

import asyncio
import itertools
import json

import pytest
from sqlmodel import Session, select

from evaluation.errors import BackendUnavailable, ModelNotFound
from evaluation.review.frames import judgements_frame
from evaluation.review.judge import Judge, PairVerdict, Rubric, combine_orders, contradiction_rate
from evaluation.review.judging import judge_experiment, pairwise_verdicts
from evaluation.review.schema import Judgement
from evaluation.storage.repository import scores_frame
from tests.support.review_db import build_review_db
from tests.support.standin_ollama import StandInConfig, running_standin

MODEL = "judge:7b"


def _user(messages) -> str:
    return next(m["content"] for m in messages if m["role"] == "user")


def grades_by_correctness(model, messages):
    """5s when the response says "City", 2s otherwise (a judge that can read)."""
    text = _user(messages)
    if "FIRST RESPONSE" in text:
        first = text.split("FIRST RESPONSE:")[1].split("SECOND RESPONSE:")[0]
        second = text.split("SECOND RESPONSE:")[1]
        choice = (
            "tie"
            if ("City" in first) == ("City" in second)
            else ("first" if "City" in first else "second")
        )
        return json.dumps({"rationale": "compared", "preference": choice})
    grade = 5 if "City" in text.split("RESPONSE:")[1] else 2
    return json.dumps(
        {"rationale": "checked", "accuracy": grade, "completeness": grade, "relevance": 4}
    )


def always_first(model, messages):
    return json.dumps({"rationale": "the first one", "preference": "first"})


def _judge(server, **kw) -> Judge:
    return Judge(server.url, MODEL, seed=42, retry_delay_s=0, **kw)


def _run(coro):
    return asyncio.run(coro)


def test_a_score_asks_with_a_json_schema_and_a_fixed_seed():
    config = StandInConfig(models=(MODEL,), reply=grades_by_correctness)
    with running_standin(config) as server:

        async def go():
            async with _judge(server) as judge:
                return await judge.score("Capital of 3?", "City 3", ["City 3"])

        score = _run(go())
        request = server.stats.last_request
    assert score.stars == {"accuracy": 5, "completeness": 5, "relevance": 4}
    assert score.scored and score.attempts == 1 and score.reason == "checked"
    assert request["stream"] is False
    assert request["format"] == Rubric().schema()
    assert request["format"]["properties"]["accuracy"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 5,
        "enum": [1, 2, 3, 4, 5],  # grammar builders that ignore bounds honour an enum
    }
    assert request["options"]["seed"] == 42 and request["options"]["temperature"] == 0
    assert "REFERENCE ANSWER:\nCity 3" in _user(request["messages"])


def test_malformed_output_is_retried_with_the_next_seed():
    seeds = []
    answers = itertools.chain(
        ["{not json", json.dumps({"accuracy": 7})],
        itertools.repeat(
            json.dumps({"rationale": "ok", "accuracy": 3, "completeness": 3, "relevance": 3})
        ),
    )

    def flaky(model, messages):
        return next(answers)

    with running_standin(StandInConfig(models=(MODEL,), reply=flaky)) as server:

        async def go():
            async with _judge(server, max_attempts=3) as judge:
                result = await judge.score("q", "a")
                seeds.append(server.stats.last_request["options"]["seed"])
                return result

        score = _run(go())
    assert score.stars == {"accuracy": 3, "completeness": 3, "relevance": 3}
    assert score.attempts == 3 and score.seed == 44 and seeds == [44]


@pytest.mark.parametrize(
    "reply",
    [
        "I think it is good",
        "[1, 2, 3]",
        '{"rationale": "x", "accuracy": 5}',
        '{"accuracy": "5", "completeness": 5, "relevance": 5}',
        '{"accuracy": 0, "completeness": 5, "relevance": 5}',
        '{"accuracy": 4.5, "completeness": 5, "relevance": 5}',
        "",
    ],
)
def test_output_still_malformed_after_retries_is_unscored_with_the_reason(reply):
    config = StandInConfig(models=(MODEL,), reply=lambda model, messages: reply)
    with running_standin(config) as server:

        async def go():
            async with _judge(server, max_attempts=2) as judge:
                return await judge.score("q", "a")

        score = _run(go())
        assert server.stats.requests == 2
    assert score.stars is None and not score.scored
    assert score.attempts == 2
    assert score.reason.startswith("unscored:") and "malformed judge output" in score.reason


@pytest.mark.parametrize(
    "rationale",
    ["][", "The answer is: [insert text here]}", "<reason>", "...", "", "5 / 5"],
)
def test_a_junk_rationale_is_a_malformed_verdict_not_a_grade(rationale):
    """A 135M judge stored 1-5 stars with reasons "][" and "The answer is: [insert text
    here]}": a rationale with no word or with a template placeholder is a parse failure."""
    reply = json.dumps({"rationale": rationale, "accuracy": 5, "completeness": 5, "relevance": 5})
    pair = json.dumps({"rationale": rationale, "preference": "first"})
    config = StandInConfig(models=(MODEL,), reply=lambda model, messages: reply)
    with running_standin(config) as server:

        async def go():
            async with _judge(server, max_attempts=2) as judge:
                score = await judge.score("q", "a")
                server.reconfigure(reply=lambda model, messages: pair)
                return score, await judge.choose("q", "a", "b")

        score, (choice, reason, attempts) = _run(go())
    assert score.stars is None and score.attempts == 2
    assert "malformed judge output (the rationale " in score.reason
    assert choice is None and attempts == 2 and "malformed judge output" in reason


@pytest.mark.parametrize(
    "rationale", ["Correct.", "Wrong city", "正确", "OK: matches the reference"]
)
def test_a_short_real_rationale_is_kept(rationale):
    reply = json.dumps({"rationale": rationale, "accuracy": 4, "completeness": 4, "relevance": 4})
    config = StandInConfig(models=(MODEL,), reply=lambda model, messages: reply)
    with running_standin(config) as server:

        async def go():
            async with _judge(server) as judge:
                return await judge.score("q", "a")

        score = _run(go())
    assert score.stars == {"accuracy": 4, "completeness": 4, "relevance": 4}
    assert score.reason == rationale


def test_host_errors_are_retried_then_unscored_and_a_missing_model_raises():
    config = StandInConfig(models=(MODEL,), reply=grades_by_correctness)
    with running_standin(config) as server:
        server.set_fault("server_error", times=1)

        async def go(model=MODEL, attempts=2):
            async with Judge(server.url, model, retry_delay_s=0, max_attempts=attempts) as judge:
                return await judge.score("q", "City 1")

        assert _run(go()).stars["accuracy"] == 5  # one 500, then an answer
        server.set_fault("busy", times=2)
        down = _run(go())
        assert down.stars is None and "503" in down.reason
        with pytest.raises(ModelNotFound):
            _run(go(model="nope:1b"))


def test_judging_an_experiment_checks_the_host_and_model_first(database_url):
    db = build_review_db(database_url, n_cases=2)
    config = StandInConfig(models=(MODEL,), reply=grades_by_correctness)
    with running_standin(config) as server:

        async def go(url, model):
            async with Judge(url, model, retry_delay_s=0) as judge:
                return await judge_experiment(db.engine, db.experiment, judge)

        with pytest.raises(ModelNotFound, match="judge:7b"):
            _run(go(server.url, "other:1b"))
        assert server.stats.requests == 0
        down = server.url
    with pytest.raises(BackendUnavailable):
        _run(go(down, MODEL))


def test_pairwise_judging_runs_both_orders_and_exposes_position_bias():
    fair = StandInConfig(models=(MODEL,), reply=grades_by_correctness)
    with running_standin(fair) as server:

        async def go():
            async with _judge(server) as judge:
                return await judge.compare("q", "Town 1", "City 1")

        verdict = _run(go())
        assert server.stats.requests == 2
    assert (verdict.forward, verdict.backward) == ("second", "first")
    assert verdict.preference == "B" and verdict.contradicted is False

    with running_standin(StandInConfig(models=(MODEL,), reply=always_first)) as server:

        async def biased():
            async with _judge(server) as judge:
                return await judge.compare("q", "Town 1", "City 1")

        verdict = _run(biased())
    assert verdict.preference == "tie" and verdict.contradicted is True


def test_combining_orders_and_the_contradiction_rate():
    assert combine_orders("first", "second") == ("A", False)
    assert combine_orders("first", "first") == ("tie", True)
    assert combine_orders("tie", "first") == ("tie", False)
    assert combine_orders(None, "first") == (None, None)
    verdicts = [
        PairVerdict("first", "first", "tie", True, "", 2),
        PairVerdict("first", "second", "A", False, "", 2),
        PairVerdict(None, "first", None, None, "", 4),
    ]
    assert contradiction_rate(verdicts) == (0.5, 2)
    assert contradiction_rate([]) == (None, 0)


def test_judging_an_experiment_stores_verdicts_scores_and_both_orders(database_url):
    db = build_review_db(database_url, n_cases=6)
    config = StandInConfig(models=(MODEL,), reply=grades_by_correctness)
    with running_standin(config) as server:

        async def go():
            async with _judge(server) as judge:
                return await judge_experiment(
                    db.engine,
                    db.experiment,
                    judge,
                    configs=[db.configs[0].hash, db.configs[1].hash],
                    pairs_per_config_pair=4,
                )

        run = _run(go())
    assert (run.generations, run.scored, run.unscored, run.pairs) == (12, 12, 0, 4)
    assert run.contradiction_rate == 0.0
    with Session(db.engine) as session:
        rows = session.exec(select(Judgement)).all()
        assert len(rows) == 12 * 3 + 4 * 2
        frame = judgements_frame(session, db.experiment_id)
        scores = scores_frame(session, db.experiment_id)
    verdicts = pairwise_verdicts(frame)
    assert len(verdicts) == 4 and all(v.contradicted is False for v in verdicts)
    judged = scores[scores.metric == "judge_accuracy"].merge(
        frame[frame.criterion == "accuracy"], on="generation_id"
    )
    assert len(judged) == 12
    assert (judged.value == (judged.stars - 1) / 4).all()


def test_limit_bounds_pairwise_judging_too(database_url):
    # 3 configs, --limit 2: 2 generations per config (6 calls) and 2 pairs per two
    # configs, each in both orders (3 x 2 x 2 = 12 calls); it was 6 + 3 x 10 x 2 = 66.
    db = build_review_db(database_url, n_cases=12)
    config = StandInConfig(models=(MODEL,), reply=grades_by_correctness)
    with running_standin(config) as server:

        async def go():
            async with _judge(server) as judge:
                return await judge_experiment(db.engine, db.experiment, judge, limit_per_config=2)

        run = _run(go())
        calls = server.stats.requests
    assert (run.generations, run.pairs) == (6, 6)
    assert calls == 6 + 6 * 2


def test_a_rationale_no_database_stores_is_stored_replaced(database_url):
    """Newcomers' S2/S3 in the judge's reply: its content is JSON, so a rationale
    written "\\ud800" (or "\\u0000") decodes to a lone surrogate (a NUL) that failed
    the verdict's storing; each is stored as U+FFFD, as in a model's output."""
    db = build_review_db(database_url, n_cases=2)
    reply = json.dumps(
        {"rationale": "checked \ud800 and\x00", "accuracy": 4, "completeness": 4, "relevance": 4}
    )
    assert "\\ud800" in reply and "\\u0000" in reply  # escapes in the reply's text
    config = StandInConfig(models=(MODEL,), reply=lambda model, messages: reply)
    with running_standin(config) as server:

        async def go():
            async with _judge(server) as judge:
                return await judge_experiment(
                    db.engine, db.experiment, judge, configs=[db.configs[0].hash]
                )

        run = _run(go())
    assert (run.generations, run.scored, run.unscored) == (2, 2, 0)
    with Session(db.engine) as session:
        reasons = {row.reason for row in session.exec(select(Judgement)).all()}
    assert reasons == {"checked \ufffd and\ufffd"}
