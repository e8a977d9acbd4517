"""A host that takes a run's work and then never answers (a real socket: it lists its
models, so the run's preflight passes, then keeps every generation request open without
a byte): the other host takes the rest of its chunk instead of idling beside it, and
the item it was stuck on, once that host is gone, is generated elsewhere with its failed
attempts stored (what happened and why)."""

from __future__ import annotations

import asyncio
import threading
import time
from functools import partial
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text

from evaluation.monitor import LiveRun
from evaluation.storage.db import make_engine, session_scope
from evaluation.wording import ON_THE_DISPLAY
from flows.evaluate import evaluate
from tasks import host_pool, progress
from tests.conftest import REPO
from tests.support.silent_socket import failing_server
from tests.support.standin_ollama import StandInConfig, running_standin

pytestmark = pytest.mark.usefixtures("prefect_harness")

SUITE = REPO / "benchmarks/suites/classify-intent.jsonl"
TOTAL = sum(1 for line in SUITE.read_text().splitlines() if line.strip())
MODEL = "llama3.2:3b"
DEADLINE_S = 300  # generous: a loaded 2-core machine; the happy path takes seconds


def rows(database_url: str, sql: str) -> list[tuple]:
    engine = make_engine(database_url, create=False)
    try:
        with session_scope(engine) as session:
            return [tuple(row) for row in session.execute(text(sql))]
    except Exception:  # not created yet
        return []
    finally:
        engine.dispose()


def write_spec(
    tmp_path: Path, name: str, models: list[str], hosts: list[dict], limits: dict
) -> Path:
    """A one-temperature sweep of the intent suite over ``hosts``."""
    spec = tmp_path / "spec.yaml"
    body = {"name": name, "suite": str(SUITE), "models": models}
    body |= {"grid": {"temperature": [0.0], "num_predict": [16]}}
    spec.write_text(yaml.safe_dump(body | {"hosts": hosts, "limits": limits}))
    return spec


def evaluate_in_thread(spec: Path, database_url: str) -> tuple[threading.Thread, dict]:
    """The sweep run in a started thread; ``outcome`` gets its summary or its error."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["summary"] = asyncio.run(evaluate(str(spec), database=database_url))
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_the_free_host_takes_a_hung_hosts_work_and_the_stuck_items_attempts_are_kept(
    tmp_path: Path, database_url: str
) -> None:
    with (
        failing_server("silent", models=(MODEL,)) as hung,
        running_standin(StandInConfig(models=(MODEL,), slots=2)) as free,
    ):
        # The free host answers nothing until the hung host has its first request: its
        # lanes then cannot finish the sweep before the hung host's lane takes a chunk.
        # (Under load the hung host's task run started seconds late, its tag's slot
        # write answered 503 and retried by Prefect; the free host had done everything,
        # the hung one was never asked and the run ended without this test's case.)
        free.hold_answers(until=hung.one_failed)
        hosts = [
            {"name": "hung", "url": hung.url, "slots": 1},
            {"name": "free", "url": free.url, "slots": 2},
        ]
        spec = write_spec(tmp_path, "hung", [MODEL], hosts, {"max_attempts": 2})
        thread, outcome = evaluate_in_thread(spec, database_url)
        # Everything but what the hung host is stuck on gets stored while it hangs:
        # before, its whole chunk waited behind that one request.
        deadline = time.monotonic() + DEADLINE_S
        stored = "SELECT count(*) FROM generations WHERE status = 'ok'"
        while not (hung.one_failed.is_set() and rows(database_url, stored) == [(TOTAL - 1,)]):
            assert thread.is_alive(), outcome
            assert time.monotonic() < deadline, (hung.failed, rows(database_url, stored))
            time.sleep(0.05)
        assert hung.failed == 1  # it is still stuck on its first request
        hung.close()  # the host goes away: its connection ends, its port refuses
        thread.join(DEADLINE_S)
        assert not thread.is_alive()

    assert "error" not in outcome, outcome
    assert rows(database_url, "SELECT host, status, count(*) FROM generations GROUP BY 1, 2") == [
        ("free", "ok", TOTAL)
    ]
    attempts = rows(
        database_url,
        "SELECT a.host, a.attempt, a.outcome, a.reason, g.host, g.attempts "
        "FROM generation_attempts a JOIN generations g ON g.case_uid = a.case_uid "
        "AND g.config_hash = a.config_hash AND g.sample_index = a.sample_index ORDER BY a.id",
    )
    assert [a[:3] for a in attempts] == [("hung", 1, "reset"), ("hung", 2, "unreachable")]
    # closed mid-request: a RemoteProtocolError or a ReadError, as the client saw it first
    # (said in words, without the class name: 5f43b71)
    assert attempts[0][3].startswith("hung (model 'llama3.2:3b'): ")
    assert "Server disconnected" in attempts[0][3] or "reset or closed" in attempts[0][3]
    assert attempts[0][4:] == ("free", 1)  # then generated by the free host, first try


def test_a_run_says_which_host_has_not_answered_for_a_while_and_what_ends_the_wait(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    # A server that takes requests and answers none (llama.cpp stopped with SIGSTOP)
    # kept `run` silent for minutes; now a warning line names it after ``quiet_after_s``.
    # said after 0.3 s, looked for every 0.1 s (the live row's interval: 2 s by default)
    live = partial(LiveRun, quiet_after_s=0.3, interval_s=0.1)
    monkeypatch.setattr(host_pool, "LiveRun", live)
    release = threading.Event()
    with running_standin(StandInConfig(models=(MODEL,), slots=1)) as host:
        host.hold_answers(until=release)
        hosts = [{"name": "held", "url": host.url, "slots": 1}]
        limits = {"request_timeout_s": 90, "max_attempts": 3}
        spec = write_spec(tmp_path, "held", [MODEL], hosts, limits)
        with caplog.at_level("WARNING"):
            thread, outcome = evaluate_in_thread(spec, database_url)
            deadline = time.monotonic() + DEADLINE_S
            while "no answer from host 'held'" not in caplog.text:
                assert thread.is_alive(), outcome
                assert time.monotonic() < deadline, caplog.text
                time.sleep(0.05)
            release.set()
            thread.join(DEADLINE_S)
        assert not thread.is_alive()
    assert "error" not in outcome, outcome
    line = next(r.getMessage() for r in caplog.records if "no answer from host" in r.getMessage())
    assert "(1 request waits; " in line
    assert "a try gives up after 1 min 30 s (10 min for a model's first request" in line
    assert "up to 3 tries" in line
    assert rows(database_url, "SELECT status, count(*) FROM generations GROUP BY 1") == [
        ("ok", TOTAL)
    ]


def test_items_a_dead_host_never_answered_are_failed_everywhere_and_blame_no_other_model(
    tmp_path: Path, database_url: str, caplog, monkeypatch
) -> None:
    # A newcomer killed the server mid-run: the log said "could not run 5" where the
    # summary said "5 failed", and gemma3's reason named smollm2's request; the
    # terminal's line said nothing failed.
    other = "qwen2.5:0.5b"
    seen: list[progress.Reading] = []  # what the terminal's line is told
    monkeypatch.setattr(progress, "LISTENERS", [seen.append])
    with failing_server("silent", models=(MODEL, other)) as hung:
        hosts = [{"name": "dead", "url": hung.url, "slots": 1}]
        spec = write_spec(tmp_path, "dead", [MODEL, other], hosts, {"max_attempts": 1})
        with caplog.at_level("INFO"):
            thread, outcome = evaluate_in_thread(spec, database_url)
            assert hung.one_failed.wait(DEADLINE_S), outcome
            hung.close()  # the host goes away mid-request
            thread.join(DEADLINE_S)
        assert not thread.is_alive()
    summary = outcome["summary"]
    assert isinstance(summary, dict), outcome
    assert summary["failed"] == summary["never_answered"] == 2 * TOTAL
    generating = [r for r in seen if r.step is None and r.note is None]
    assert (generating[-1].done, generating[-1].failed) == (2 * TOTAL, 2 * TOTAL)
    words = f"{2 * TOTAL} failed ({2 * TOTAL} never answered: no host serving their model was up)"
    assert f"generated 0, {words}" in caplog.text
    assert "could not run" not in caplog.text
    warned = [r for r in caplog.records if "failed, never answered: " in r.getMessage()]
    assert warned and all(getattr(r, ON_THE_DISPLAY, False) for r in warned)  # kept off
    # the terminal while the display, which counts them, is drawn
    reasons = rows(
        database_url,
        "SELECT DISTINCT c.model, g.host, g.error FROM generations g JOIN configs c "
        "ON c.hash = g.config_hash",
    )
    assert {model for model, _, _ in reasons} == {MODEL, other}
    for model, host, error in reasons:
        # labelled with the host that went down (evalflow_generations_failed{host="dead",
        # reason="BackendUnavailable"}), not host="unknown", reason="other"
        assert host == "dead"
        words = f"every host serving {model!r} is down (dead unreachable: "
        assert error.startswith(f"BackendUnavailable: {words}")
        assert "(model '" not in error, error  # not the model of the request that found it
