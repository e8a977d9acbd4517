"""The judge on an OpenAI-compatible server that refuses ``json_schema`` the way
llama-cpp-python's server does (a 500 naming ``response_format``): it falls back to the
``json_object`` form once and remembers it; and `evalflow judge` fails (exit 1, one line
with the reasons) when nothing could be scored."""

from __future__ import annotations

import asyncio

import httpx

from evaluation.review.judge import Judge
from flows.cli import main
from tests.evaluation.test_judge import MODEL, grades_by_correctness
from tests.support.review_db import build_review_db
from tests.support.standin_ollama import StandInConfig, running_standin

LLAMA_CPP_PYTHON = ("text", "json_object")  # the response_format types it reads


def test_a_500_refusing_json_schema_falls_back_to_json_object_once():
    config = StandInConfig(
        models=(MODEL,), reply=grades_by_correctness, response_format_types=LLAMA_CPP_PYTHON
    )
    with running_standin(config) as server:

        async def go():
            async with Judge(server.url, MODEL, kind="openai", retry_delay_s=0) as judge:
                return [await judge.score("q", "City 1"), await judge.score("q", "Town")]

        first, second = asyncio.run(go())
        assert first.stars == {"accuracy": 5, "completeness": 5, "relevance": 4}
        assert second.stars == {"accuracy": 2, "completeness": 2, "relevance": 4}
        assert (first.attempts, second.attempts) == (1, 1)
        # one refusal, then every request in the json_object form
        assert server.stats.requests == 3
        assert server.stats.last_request["response_format"]["type"] == "json_object"

        async def at_once():  # both refused before either learns the other form
            async with Judge(server.url, MODEL, kind="openai", max_attempts=1) as judge:
                return await asyncio.gather(*(judge.score("q", "City 1") for _ in range(4)))

        assert all(score.stars is not None for score in asyncio.run(at_once()))


def test_judge_exits_1_with_the_reasons_when_nothing_is_scored(database_url, capsys):
    db = build_review_db(database_url, n_cases=2)
    config = StandInConfig(models=(MODEL,), reply=lambda model, messages: "not json")
    with running_standin(config) as server:
        command = ["--database", database_url, "judge", db.experiment]
        command += ["--url", server.url + "/v1", "--model", MODEL, "--limit", "1"]
        command += ["--attempts", "2"]
        assert main(command) == 1
    out, err = capsys.readouterr()
    assert "judged" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: openai:{MODEL} scored none of")
    assert "malformed judge output" in lines[0] and "attempt" not in lines[0]


def test_the_summary_counts_only_pairs_judged_in_both_orders(database_url, capsys):
    db = build_review_db(database_url, n_cases=2)
    config = StandInConfig(models=(MODEL,), reply=grades_by_correctness)
    with running_standin(config) as server:
        command = ["--database", database_url, "judge", db.experiment, "--url", server.url]
        command += ["--model", MODEL, "--kind", "openai", "--limit", "1"]
        assert main(command) == 0
    line = capsys.readouterr().out
    assert "generations scored (0 unscored)" in line and "3 of 3 pairs judged" in line


def test_a_judge_model_the_host_lacks_is_named_with_the_option_to_fix(database_url, capsys):
    db = build_review_db(database_url, n_cases=2)
    with running_standin(StandInConfig(models=(MODEL,))) as server:
        command = ["--database", database_url, "judge", db.experiment, "--url", server.url]
        assert main([*command, "--model", "wrong:1b", "--kind", "openai"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'wrong:1b'" in err and MODEL in err
    assert err.endswith("name one with --model") and "spec" not in err


def test_unjudged_pairs_are_explained_with_their_reasons_and_counts(database_url, capsys):
    """Issue 27: "0 of 3 pairs judged in both orders, self-contradiction rate –" said
    nothing of why; the distinct reasons follow, each with how many judgements had it."""
    db = build_review_db(database_url, n_cases=2)

    def pairs_fail(model, messages):
        text = next(m["content"] for m in messages if m["role"] == "user")
        return "no verdict" if "FIRST RESPONSE" in text else grades_by_correctness(model, messages)

    with running_standin(StandInConfig(models=(MODEL,), reply=pairs_fail)) as server:
        command = ["--database", database_url, "judge", db.experiment, "--url", server.url]
        command += ["--model", MODEL, "--kind", "openai", "--limit", "1", "--attempts", "1"]
        assert main(command) == 0
    summary, why = capsys.readouterr().out.strip().splitlines()
    assert "0 of 3 pairs judged in both orders" in summary
    assert why.startswith("why unscored or unjudged: malformed judge output")
    assert why.endswith("'no verdict' (×3)")


def test_a_raw_newline_inside_the_judges_json_string_is_accepted():
    """Small models put a raw newline in the rationale ("Invalid control character"):
    the verdict otherwise meets the schema, so it is read, not discarded. (An in-memory
    host: the stand-in re-joins its reply's words with spaces, losing the newline.)"""
    reply = '{"rationale": "line one\nline two", "preference": "first"}'

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"message": {"role": "assistant", "content": reply}})

    async def go():
        client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
        async with Judge("http://judge", MODEL, max_attempts=1, client=client) as judge:
            verdict = await judge.choose("q", "a", "b")
        await client.aclose()
        return verdict

    assert asyncio.run(go()) == ("first", "line one\nline two", 1)


def test_a_server_detection_missed_is_judged_as_the_openai_compatible_one_it_is(
    database_url, capsys, monkeypatch
):
    """A busy llama-cpp-python server answered neither detection probe in time, so the
    judge took it for Ollama, then said "set `kind: openai` ... in the spec" (judge has
    no spec) although it had found the server OpenAI-compatible: now it judges with that,
    and when --kind ollama was asked for, the message names the flag to fix it."""
    import evaluation.review.judge as judge_module

    async def missed(url, **_):  # what detection returns when no probe is answered in time
        return "ollama"

    monkeypatch.setattr(judge_module, "detect_kind", missed)
    db = build_review_db(database_url, n_cases=2)
    config = StandInConfig(models=(MODEL,), reply=grades_by_correctness, openai_only=True)
    with running_standin(config) as server:
        command = ["--database", database_url, "judge", db.experiment, "--url", server.url]
        command += ["--model", MODEL, "--limit", "1", "--no-pairwise"]
        assert main(command) == 0
        out, err = capsys.readouterr()
        assert out.startswith(f"openai:{MODEL}: 3 of 3 generations scored")
        assert "judging with --kind openai" in err

        assert main([*command, "--kind", "ollama"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "it is OpenAI-compatible" in err
    assert err.endswith("pass --kind openai") and "spec" not in err


def test_a_server_slow_to_list_its_models_but_not_ollama_is_detected_as_openai():
    """The newcomer's busy llama-cpp-python server answered /api/version with a 404 at
    once but /v1/models only after its generations, past detection's timeout, so the
    judge was sent to Ollama's API. Here /v1/models never answers (no timing involved)."""
    from evaluation.review.judge import detect_kind
    from tests.support.asgi_server import serving

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        if scope["path"] == "/v1/models":
            while (await receive())["type"] != "http.disconnect":
                pass  # busy: no answer until the client gives up
            return
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b'{"detail":"Not Found"}'})

    with serving(app) as url:
        assert asyncio.run(detect_kind(url, timeout_s=0.5)) == "openai"
