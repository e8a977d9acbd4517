"""`evalflow judge` against a host that takes the connection but does not answer (the
newcomer's N7: a llama-cpp-python server still computing the requests of a run that was
stopped): it is busy, not unreachable, and the line says what to do; exit 75
(EX_TEMPFAIL: try later), not bad input's 2."""

from __future__ import annotations

import pytest

from evaluation.review import judge as judge_module
from flows.cli import main
from tests.evaluation.test_judge import MODEL
from tests.support.review_db import build_review_db
from tests.support.standin_ollama import StandInConfig, running_standin


def test_a_judge_host_that_keeps_silent_is_said_busy_not_unreachable(
    database_url, capsys, monkeypatch: pytest.MonkeyPatch
):
    db = build_review_db(database_url, n_cases=1, temperatures=(0.0,))
    monkeypatch.setattr(judge_module, "PREFLIGHT_TIMEOUT_S", 0.5)
    command = ["--database", database_url, "judge", db.experiment, "--model", MODEL]
    command += ["--kind", "openai", "--no-pairwise"]
    with running_standin(StandInConfig(models=(MODEL,), openai_only=True)) as server:
        server.hang_listings(10**6)
        assert main([*command, "--url", server.url]) == 75  # try later (it was 2: bad input)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert lines == [
        f"error: the judge host {server.url} (--url) is busy, not down: connected, no answer "
        "within 0.5 s (asked for its models); a server that answers "
        "one request at a time (llama-cpp-python's) first finishes the requests it holds, "
        "those of a run that was stopped or gave up on them too: wait for it, or restart "
        "it, then run judge again"
    ]


def test_a_judge_host_that_answers_overloaded_is_refused_for_now(
    database_url, capsys, monkeypatch: pytest.MonkeyPatch
):
    """A judge's host answering 503 (overloaded) ended `judge` with its raw "HTTP 503"
    and exit 2, as bad input: now what happened (the host answered: overloaded) and when
    to run it again, exit 75."""
    db = build_review_db(database_url, n_cases=1, temperatures=(0.0,))
    command = ["--database", database_url, "judge", db.experiment, "--model", MODEL]
    with running_standin(StandInConfig(models=(MODEL,))) as server:
        server.overload_listings(10**6)
        assert main([*command, "--url", server.url, "--no-pairwise"]) == 75
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        f"error: the judge host {server.url} (--url) answered: overloaded (HTTP 503: server "
        "busy, please try again."
    ), lines
    assert lines[0].endswith("run judge again when it is free"), lines
