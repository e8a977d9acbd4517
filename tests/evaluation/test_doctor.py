"""Doctor and health against real HTTP stand-ins, a dead port and real databases."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest
import yaml
from prefect.settings import PREFECT_API_URL, temporary_settings

from evaluation.backends import OllamaBackend
from evaluation.backends.base import GenerationRequest
from evaluation.run._doctor import (
    Check,
    DoctorReport,
    check_database,
    check_host,
    model_names,
)
from evaluation.spec import GenerationParams, HostSpec
from evaluation.storage.db import make_engine
from evaluation.suites import Message
from flows.cli import main
from tests.conftest import REPO
from tests.support.databases import as_the_first_version_made_it
from tests.support.silent_socket import failing_server
from tests.support.standin_ollama import StandInConfig, running_standin

MODELS = ("llama3.2:3b", "qwen2.5:0.5b")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def host_check(url: str, wanted=MODELS, **host):
    backend = OllamaBackend(HostSpec(name="gpu-a", url=url, **host), timeout_s=2.0)
    try:
        return await check_host(backend, wanted, timeout_s=2.0)
    finally:
        await backend.aclose()


def test_host_reports_version_models_and_loaded_vram():
    with running_standin(StandInConfig(models=MODELS, version="0.6.8")) as server:
        check = asyncio.run(host_check(server.url))
    assert check.status == "ok"
    assert check.facts["version"] == "0.6.8"
    assert check.facts["models"] == sorted(MODELS)
    assert check.facts["loaded"] == {}
    assert "version 0.6.8" in check.detail and "loaded: none" in check.detail
    assert "2 models: llama3.2:3b, qwen2.5:0.5b" in check.detail


def test_host_lists_a_loaded_model_with_its_vram():
    with running_standin(StandInConfig(models=MODELS)) as server:

        async def go():
            backend = OllamaBackend(HostSpec(name="gpu-a", url=server.url), timeout_s=2.0)
            await backend.generate(
                GenerationRequest("llama3.2:3b", (Message("user", "hi"),), GenerationParams())
            )
            await backend.aclose()
            return await host_check(server.url)

        check = asyncio.run(go())
    assert list(check.facts["loaded"]) == ["llama3.2:3b"]
    assert check.facts["loaded"]["llama3.2:3b"] > 0
    assert "llama3.2:3b (" in check.detail


def test_missing_model_fails_and_names_what_the_host_has():
    with running_standin(StandInConfig(models=("qwen2.5:0.5b",))) as server:
        check = asyncio.run(host_check(server.url))
    assert check.status == "fail"
    assert "llama3.2:3b" in check.detail and "qwen2.5:0.5b" in check.detail
    # the line names the host's URL and models once (the error's own words named both again)
    assert check.detail.count(server.url) == 1 and check.detail.count("qwen2.5:0.5b") == 1
    assert check.detail.endswith(
        "does not have 'llama3.2:3b'; pull it (`ollama pull llama3.2:3b`) or fix the spec's models"
    )


def test_a_host_restricted_to_other_models_is_not_asked_for_them():
    with running_standin(StandInConfig(models=("qwen2.5:0.5b",))) as server:
        check = asyncio.run(host_check(server.url, MODELS, models=("qwen2.5:0.5b",)))
    assert check.status == "ok"


def test_unreachable_host_fails_without_raising():
    check = asyncio.run(host_check(f"http://127.0.0.1:{closed_port()}"))
    assert check.status == "fail"
    assert "connection refused at" in check.detail  # the message in words, no class
    assert "Backend" not in check.detail and "ConnectError" not in check.detail


@pytest.mark.parametrize("kind", ["ollama", "openai"])
def test_an_unreachable_host_says_what_to_start_for_its_kind(kind):
    from evaluation.backends import make_backend
    from evaluation.spec import Limits

    host = HostSpec(name="gpu-a", url=f"http://127.0.0.1:{closed_port()}", kind=kind)

    async def check() -> Check:
        backend = make_backend(host, Limits(request_timeout_s=2.0))
        try:
            return await check_host(backend, MODELS, timeout_s=2.0)
        finally:
            await backend.aclose()

    result = asyncio.run(check())
    assert result.status == "fail" and "BackendUnavailable" not in result.detail
    if kind == "ollama":
        assert "start Ollama there (`ollama serve`)" in result.detail
    else:  # an OpenAI-compatible server is not started with Ollama's command
        assert "ollama" not in result.detail.lower()
        assert "`llama-server`" in result.detail and "`vllm serve`" in result.detail


def test_database_checks(tmp_path):
    url = f"sqlite:///{tmp_path / 'results.db'}"
    fresh = check_database(url)  # a new home: no file yet, which is no problem
    assert fresh.status == "ok" and "no database yet: no runs so far" in fresh.detail
    assert not (tmp_path / "results.db").exists()  # doctor left an empty file behind
    make_engine(url).dispose()
    assert check_database(url).status == "ok"
    bad = check_database(f"postgresql+psycopg2://nobody:secret@127.0.0.1:{closed_port()}/x")
    assert bad.status == "fail"
    assert "secret" not in bad.detail and "***" in bad.detail


def test_an_empty_database_is_a_new_home_and_a_stranger_fails(tmp_path, monkeypatch):
    """A new empty database was a WARN: it is what every first run starts from. Tables of
    another application fail, as every command refuses them (newcomer F6: the check said
    "the first run adds evalflow's", which it did, into Prefect's database), a WARN where
    EVALFLOW_SHARE_DATABASE=1 lets it; only some of evalflow's are worth a WARN."""
    import sqlite3

    path = tmp_path / "results.db"
    url = f"sqlite:///{path}"
    sqlite3.connect(path).close()  # created, nothing in it
    empty = check_database(url)
    assert empty.status == "ok" and "empty: no runs yet" in empty.detail
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE invoices (id INTEGER)")
    stranger = check_database(url)
    assert stranger.status == "fail", stranger
    assert "1 table, none of them evalflow's (invoices): another application's" in stranger.detail
    assert (
        "--database or EVALFLOW_DATABASE_URL, or set EVALFLOW_SHARE_DATABASE=1" in stranger.detail
    )
    monkeypatch.setenv("EVALFLOW_SHARE_DATABASE", "1")
    shared = check_database(url)
    assert shared.status == "warn" and "the first run adds evalflow's beside them" in shared.detail
    monkeypatch.delenv("EVALFLOW_SHARE_DATABASE")
    with sqlite3.connect(path) as db:  # one table of evalflow's name beside it: still not
        db.execute("CREATE TABLE experiments (id INTEGER PRIMARY KEY)")  # evalflow's (R7)
    assert check_database(url).status == "fail"
    path.unlink()
    with sqlite3.connect(path) as db:  # an older evalflow's, without a table
        as_the_first_version_made_it(db)
        db.execute("DROP TABLE cases")
    part = check_database(url)
    assert part.status == "warn" and "evalflow's tables cases missing" in part.detail


def test_a_database_folder_a_run_cannot_write_fails(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")  # a file where the database's folder should be
    check = check_database(f"sqlite:///{blocked / 'results.db'}")
    assert check.status == "fail" and "a run cannot create it" in check.detail


def write_spec(tmp_path: Path, hosts: list[dict]) -> Path:
    spec = {
        "name": "doctor-test",
        "suite": str(REPO / "benchmarks/suites/qa-short.jsonl"),
        "models": list(MODELS),
        "hosts": hosts,
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_doctor_and_health_commands(tmp_path, database_url, capsys):
    with running_standin(StandInConfig(models=MODELS)) as server:
        good = write_spec(tmp_path, [{"name": "gpu-a", "url": server.url, "slots": 2}])
        # no API configured (a session-wide Prefect test harness may be running)
        with temporary_settings(restore_defaults={PREFECT_API_URL}):
            assert main(["--database", database_url, "doctor", str(good)]) == 0
        out = capsys.readouterr().out
        assert "OK    host gpu-a" in out and "healthy" in out
        # no PREFECT_API_URL: all one machine needs (docs), so no warning, but said
        assert "OK    prefect api  PREFECT_API_URL not set: each run starts a temporary" in out
        assert "WARN  prefect api" not in out
        # a new home: said, not warned of, and not created (a spec's check opened it)
        assert "OK    database     " in out and "no database yet: no runs so far" in out
        assert not (tmp_path / "results.db").exists()

        dead = {"name": "gpu-b", "url": f"http://127.0.0.1:{closed_port()}", "slots": 1}
        bad = write_spec(tmp_path, [{"name": "gpu-a", "url": server.url, "slots": 2}, dead])
        assert main(["--database", database_url, "health", str(bad), "--timeout", "2"]) == 1
        line = capsys.readouterr().out.strip()
    assert line.startswith("unhealthy: host gpu-b:")
    assert "\n" not in line


def test_health_fails_when_the_configured_prefect_api_is_down(database_url, capsys):
    with temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{closed_port()}/api"}):
        assert main(["--database", database_url, "health", "--timeout", "2"]) == 1
    assert capsys.readouterr().out.startswith("unhealthy: prefect api:")


def test_a_prefect_api_that_answers_late_is_busy_as_run_takes_it(database_url, capsys):
    # recheck's R2: doctor said FAIL and UNHEALTHY (exit 1) of a Prefect API that gave no
    # healthy answer in time, where `run` takes the same for busy (TryLater, exit 75: "did
    # not answer in time ... (busy?)"); a refused port stays FAIL (the test above)
    with failing_server("silent") as server:
        url = f"{server.url}/api"
        with temporary_settings({PREFECT_API_URL: url}):
            assert main(["--database", database_url, "doctor", "--timeout", "0.5"]) == 0
            doctor = " ".join(capsys.readouterr().out.split())  # unwrapped
            assert main(["--database", database_url, "health", "--timeout", "0.5"]) == 0
            health = capsys.readouterr().out
    said = (
        f"BUSY prefect api {url}: did not answer in time: no healthy answer within 0.5 s "
        "(busy?); check again when it answers"
    )
    assert said in doctor, doctor
    assert doctor.endswith("healthy, except the Prefect API not checked (busy)"), doctor
    assert health == "healthy: database, hosts, except the Prefect API not checked (busy)\n"


def test_the_prefect_api_and_hosts_not_checked_are_both_said():
    report = DoctorReport(
        (
            Check("prefect api", "busy", "late", {"late": True}),
            Check("database", "ok", "fine"),
            Check("host a", "busy", "overloaded"),
            Check("host b", "busy", "in use", {"busy_with": "nightly"}),
        )
    )
    said = ", except the Prefect API and 2 hosts not checked (busy)"
    assert report.render_text().endswith(f"healthy{said}")
    assert report.one_line() == f"healthy: database{said}"


@pytest.mark.parametrize("command", ["doctor", "health"])
def test_bad_spec_is_a_failed_check(tmp_path, database_url, command, capsys):
    spec = tmp_path / "broken.yaml"
    spec.write_text("name: x\n")
    assert main(["--database", database_url, command, str(spec)]) == 1
    assert "spec" in capsys.readouterr().out


class _CountingOpenAIServer:
    """An OpenAI-compatible host that counts every request it gets (llama-cpp-python's
    server interrupts the stream it is generating on any of them)."""

    def __init__(self) -> None:
        import http.server
        import json
        import threading

        owner = self
        self.requests = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests += 1
                body = json.dumps({"data": [{"id": m} for m in MODELS]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_doctor_does_not_disturb_an_openai_host_a_run_is_using(tmp_path, database_url, capsys):
    from sqlmodel import Session

    from evaluation.storage.models import Experiment
    from evaluation.storage.runs import RunProcess, claim_experiment, end_run

    server = _CountingOpenAIServer()
    try:
        host = {"name": "llama", "url": server.url, "slots": 1, "kind": "openai"}
        spec = write_spec(tmp_path, [host])
        engine = make_engine(database_url)
        with Session(engine) as session:  # a run of this process is using the host
            claim_experiment(session, "busy-sweep", RunProcess.current())
            session.add(
                Experiment(
                    name="busy-sweep",
                    suite="qa-short",
                    task_type="qa",
                    spec={"hosts": [host]},
                    status="running",
                )
            )
            session.commit()
        assert main(["--database", database_url, "doctor", str(spec)]) == 0
        out = capsys.readouterr().out
        assert server.requests == 0  # not even /v1/models
        assert "not contacted while experiment 'busy-sweep' runs on it" in out
        # Issue 27: the verdict said "healthy" for a host it did not check
        assert out.rstrip().splitlines()[-1] == "healthy, except 1 host not checked (busy)"
        with Session(engine) as session:  # the run ends: the host is checked again
            end_run(session, "busy-sweep", "completed", RunProcess.current())
            session.commit()
        assert main(["--database", database_url, "doctor", str(spec)]) == 0
        assert server.requests >= 1
        assert "2 models" in capsys.readouterr().out
    finally:
        server.close()


def test_the_verdicts_do_not_claim_a_busy_host_was_checked():
    busy = Check("host llama", "warn", "not contacted", {"busy_with": "sweep"})
    report = DoctorReport((Check("database", "ok", "fine"), busy))
    assert report.healthy  # a warning: exit 0, as documented
    assert report.render_text().splitlines()[-1] == "healthy, except 1 host not checked (busy)"
    assert report.one_line() == "healthy: database, except 1 host not checked (busy)"
    assert DoctorReport((Check("database", "ok", "fine"),)).one_line() == "healthy: database"


def test_the_report_wraps_between_words_to_the_width():
    """A 150-column warning wrapped mid-word in a 120-column terminal (#47)."""
    long = "PREFECT_API_URL is not set: " + "a run starts a server of its own " * 4
    report = DoctorReport((Check("prefect api", "warn", long), Check("database", "ok", "fine")))
    lines = report.render_text(60).splitlines()
    assert all(len(line) <= 60 for line in lines)
    assert lines[0].startswith("WARN  prefect api  PREFECT_API_URL")
    assert lines[1].startswith(" " * len("WARN  prefect api  ")) and lines[1].strip()
    words = " ".join(line[len("WARN  prefect api  ") :] for line in lines[:-3]).split()
    assert words == long.split()  # no word cut


def test_the_host_line_names_its_models_and_counts_the_rest():
    assert model_names(["a", "b"]) == ": a, b"
    names = [f"model-{i:02d}:7b" for i in range(20)]
    shown = model_names(names, room=40)
    assert shown == ": model-00:7b, model-01:7b, +18 more"
    assert model_names([]) == ""


def test_the_spec_line_counts_in_words_people_read(tmp_path):
    from evaluation.run._doctor import check_spec

    spec = tmp_path / "one.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "one",
                "suite": str(REPO / "benchmarks/suites/classify-intent.jsonl"),
                "models": ["m"],
                "hosts": [{"name": "sim", "url": "simulated://local", "kind": "simulated"}],
            }
        )
    )
    first = asyncio.run(check_spec(spec))[0]
    assert first.status == "ok" and " 1 config × " in first.detail, first.detail
    assert first.detail.endswith(" on 1 host") and "configs" not in first.detail


def test_the_spec_line_counts_the_cases_its_cases_key_names(tmp_path):
    """Newcomer F2: a spec whose `cases:` names 3 of a 12,500-case suite read "1 config
    × 12500 cases" in doctor, where plan and run say 3."""
    from evaluation.run._doctor import check_spec

    suite = REPO / "benchmarks/suites/classify-intent.jsonl"
    every = sum(1 for line in suite.read_text().splitlines() if line.strip())
    ids = [json.loads(line)["id"] for line in suite.read_text().splitlines()[:3]]
    spec = tmp_path / "three.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "three",
                "suite": str(suite),
                "cases": ids,
                "models": ["m"],
                "hosts": [{"name": "sim", "url": "simulated://local", "kind": "simulated"}],
            }
        )
    )
    first = asyncio.run(check_spec(spec))[0]
    assert first.detail == f"{spec}: 1 config × 3 cases of {every} on 1 host", first.detail


def test_more_slots_than_the_earlier_runs_had_is_a_warning():
    """Newcomer: `slots: 4` on llama-cpp-python's server (one request at a time), whose
    earlier runs had 1: doctor said healthy, plan said 11 min for 42."""
    from datetime import datetime

    from evaluation.run._doctor import slots_checks
    from evaluation.storage.throughput import Measured

    when = datetime(2026, 11, 26, 10, 0)
    earlier = [
        Measured("local", "gemma3", "c1", 10, 31.0, 13.0, 1, "nc-real", when),
        Measured("gpu", "gemma3", "c1", 10, 1.0, 13.0, 4, "nc-real", when),
    ]
    hosts = [
        HostSpec("local", "http://127.0.0.1:18431", slots=4, kind="openai"),
        HostSpec("gpu", "http://gpu:11434", slots=4),
    ]
    (check,) = slots_checks(hosts, earlier)
    assert check.component == "host local" and check.status == "warn" and check.ok
    assert check.detail.startswith("slots: 4 in the spec; its earlier runs had 1: more slots")
    assert "llama-cpp-python's runs one at a time: give it slots: 1" in check.detail
    assert slots_checks([HostSpec("local", "http://x", slots=1)], earlier) == []


def test_slots_on_llama_cpp_python_after_one_slot_runs_is_one_warning(tmp_path, monkeypatch):
    """recheck-1: `slots: 4` on llama-cpp-python's server whose earlier runs had 1 gave
    two WARNs of one cause (its one-request-at-a-time line, and the earlier runs' one):
    now its slots line says both facts and the host has no second slots warning."""
    from datetime import datetime

    from evaluation.run import _doctor
    from evaluation.storage.throughput import Measured

    earlier = [Measured("local", "m:1b", "c1", 10, 31.0, 13.0, 1, "nc", datetime(2026, 11, 26))]
    monkeypatch.setattr(_doctor, "stored_measurements", lambda url, hosts: earlier)
    config = StandInConfig(models=("m:1b",), openai_only=True, owned_by="me")
    with running_standin(config) as server:
        spec = tmp_path / "s.yaml"
        host = {"name": "local", "url": server.url, "kind": "openai", "slots": 4}
        suite = str(REPO / "benchmarks/suites/classify-intent.jsonl")
        body = {"name": "s", "suite": suite, "models": ["m:1b"], "hosts": [host]}
        spec.write_text(yaml.safe_dump(body))
        checks = asyncio.run(_doctor.check_spec(spec, timeout_s=5.0, database="sqlite://"))
    warned = [c for c in checks if c.status == "warn"]
    assert [c.component for c in warned] == ["slots local"], checks
    assert warned[0].detail.startswith(
        "slots: 4 (its earlier runs had 1), but llama-cpp-python's server answers one "
        "request at a time: "
    )


def _claim_running(database_url: str, name: str, hosts: list[dict]) -> None:
    """A run of this process recorded as using ``hosts`` (as `evalflow run` does)."""
    from sqlmodel import Session

    from evaluation.storage.models import Experiment
    from evaluation.storage.runs import RunProcess, claim_experiment

    with Session(make_engine(database_url)) as session:
        claim_experiment(session, name, RunProcess.current())
        spec = {"hosts": hosts}
        session.add(
            Experiment(name=name, suite="qa-short", task_type="qa", spec=spec, status="running")
        )
        session.commit()


def test_a_silent_host_no_run_of_ours_uses_is_not_answering_and_unhealthy(
    tmp_path, database_url, capsys
):
    # A newcomer's llama server frozen with SIGSTOP (accepts, never answers) and no run
    # going on: health, doctor and /health/deep called it "busy" and healthy (exit 0).
    # Half a second for each check: the host's connection is the kernel's, at once.
    with failing_server("silent") as hung:
        host = {"name": "llama", "url": hung.url, "slots": 1}
        spec = str(write_spec(tmp_path, [host]))
        with temporary_settings(restore_defaults={PREFECT_API_URL}):
            assert main(["--database", database_url, "health", spec, "--timeout", "0.5"]) == 1
            health = capsys.readouterr().out
            assert main(["--database", database_url, "doctor", spec, "--timeout", "0.5"]) == 1
            doctor = capsys.readouterr().out
            _claim_running(database_url, "nightly", [host])  # now a run of ours holds it
            assert main(["--database", database_url, "health", spec, "--timeout", "0.5"]) == 0
            held = capsys.readouterr().out
            assert main(["--database", database_url, "doctor", spec, "--timeout", "0.5"]) == 0
            held_doctor = capsys.readouterr().out
    reason = (
        "not answering: connected but no answer within 0.5 s, and no evalflow run is using it "
        "(a hung server? restart it)"
    )
    assert health == f"unhealthy: host llama: {hung.url}: {reason}\n"
    assert "FAIL  host llama" in doctor and "UNHEALTHY: 1 check(s) failed" in doctor
    assert held.startswith("healthy: ") and held.endswith(", except 1 host not checked (busy)\n")
    busy = "connected but no answer within 0.5 s: busy with experiment 'nightly', which runs on it"
    assert f"BUSY host llama {hung.url}: {busy}" in " ".join(held_doctor.split())  # unwrapped


def test_a_host_answering_503_is_busy_said_as_run_says_it_with_the_host_once(
    tmp_path, database_url, capsys
):
    # recheck's R3: doctor said 'FAIL  host gpu-a  http://...: gpu-a: HTTP 503: server
    # busy ...' and UNHEALTHY, exit 1, where `run` says the host answered: overloaded and
    # to run again when it is free (exit 75): the host is there, refusing work for now.
    with running_standin(StandInConfig(models=MODELS)) as server:
        server.overload_listings(1000)
        spec = str(write_spec(tmp_path, [{"name": "gpu-a", "url": server.url, "slots": 2}]))
        with temporary_settings(restore_defaults={PREFECT_API_URL}):
            assert main(["--database", database_url, "doctor", spec, "--timeout", "2"]) == 0
            doctor = " ".join(capsys.readouterr().out.split())  # unwrapped
            assert main(["--database", database_url, "health", spec, "--timeout", "2"]) == 0
            health = capsys.readouterr().out
    said = (
        f"BUSY host gpu-a {server.url}: answered: overloaded (HTTP 503: server busy, please "
        "try again. maximum pending requests exceeded); its models are not checked: check "
        "again when the server is free"
    )
    assert said in doctor, doctor
    assert doctor.count("gpu-a") == 1, doctor
    assert doctor.endswith("healthy, except 1 host not checked (busy)"), doctor
    assert health.endswith(", except 1 host not checked (busy)\n"), health


def test_the_docs_give_the_codes_deadlines_for_a_silent_host():
    # newcomer: docs/bad-input.md said a silent host is busy after 3 s, doctor said 5 s
    from evaluation.run._preflight import PREFLIGHT_TIMEOUT_S
    from flows.cli.ops import DEFAULT_TIMEOUT_S

    text = " ".join((REPO / "docs/bad-input.md").read_text(encoding="utf-8").split())
    assert f"does not answer within {PREFLIGHT_TIMEOUT_S:g} s, the run's own check's" in text
    waits = f"`doctor`, `health` and `/health/deep` wait {DEFAULT_TIMEOUT_S:g} s, `--timeout`"
    assert waits in text
    ops = " ".join((REPO / "docs/operations.md").read_text(encoding="utf-8").split())
    assert f"does not answer within {DEFAULT_TIMEOUT_S:g} s (`--timeout`" in ops


@pytest.mark.parametrize("kind", ["openai", None])
def test_a_keyed_host_says_the_key_is_sent_and_a_refused_or_unset_one_fails(
    tmp_path, monkeypatch, kind
):
    """Without `kind:` (Ollama's) on a keyed OpenAI-compatible server, whose /api/tags is
    404 whatever the key, a refused key fails as with `kind: openai` (the re-check's F3:
    it said 'no Ollama or OpenAI-compatible API at this url; check the port'), and the
    right one is told to set `kind: openai`."""
    from evaluation.run._doctor import check_spec

    key = "sk-doctor-Fe3u"
    config = StandInConfig(models=("m:1b",), api_key=key, openai_only=kind is None)
    with running_standin(config) as server:
        spec = tmp_path / "keyed.yaml"
        host = {"name": "vllm", "url": server.url, "kind": kind, "api_key_env": "DOC_KEY"}
        host = {field: value for field, value in host.items() if value is not None}
        suite = str(REPO / "benchmarks/suites/classify-intent.jsonl")
        spec.write_text(
            yaml.safe_dump({"name": "k", "suite": suite, "models": ["m:1b"], "hosts": [host]})
        )
        checks = {}
        for value in (key, "sk-wrong-Ut7d", ""):
            monkeypatch.setenv("DOC_KEY", value)
            checks[value] = asyncio.run(check_spec(spec))
    right, wrong, unset = checks[key][-1], checks["sk-wrong-Ut7d"][-1], checks[""][-1]
    if kind is None:
        assert right.status == "fail" and "set `kind: openai`" in right.detail, right.detail
    else:
        assert right.status == "ok" and "key from $DOC_KEY: sent" in right.detail, right.detail
    assert wrong.status == "fail" and "the host refused the key from $DOC_KEY" in wrong.detail
    assert "check the port" not in wrong.detail
    assert (unset.component, unset.status) == ("spec", "fail")
    assert "environment variable DOC_KEY is not set" in unset.detail
    assert not [c for found in checks.values() for c in found if key in c.detail]


@pytest.mark.parametrize(
    ("owned_by", "seed", "slots", "warned"),
    [("me", None, 1, "seeds"), ("me", 7, 4, "slots"), ("vllm", None, 4, None)],
)
def test_seedless_sampling_or_slots_on_llama_cpp_pythons_server_is_a_warning(
    tmp_path, monkeypatch, owned_by, seed, slots, warned
):
    """The newcomer's F5: its server draws no fresh randomness for a request without a
    seed (a fixed chain from each model load), so their temperature 0.8 configs gave the
    same outputs in 4 runs. It lists every model as owned by "me". `run`'s host check
    logs the same warning (newcomer N17: `doctor` warned, `run` said nothing).
    Newcomers' nctput-2: it answers one request at a time, and `slots: 4` on it passed
    doctor and run silently while every stored latency was its queue (24-84 s)."""
    from evaluation.run._doctor import check_spec
    from evaluation.run._sweep import open_backends, prepare_sweep
    from tasks import hosts

    grid: dict = {"temperature": [0.0, 0.8]} | ({"seed": [seed]} if seed else {})
    config = StandInConfig(models=("m:1b",), openai_only=True, owned_by=owned_by)
    run_warnings: list[str] = []

    class RunLogger:  # the run's logger, without Prefect
        def info(self, *args: object) -> None:
            pass

        def warning(self, message: str, *args: object) -> None:
            run_warnings.append(message % args)

    monkeypatch.setattr(hosts, "get_run_logger", RunLogger)

    async def run_checks() -> None:
        backends = open_backends(sweep)
        try:
            await hosts.check_hosts.fn(backends, sweep.required_models, sweep.configs)
        finally:
            await asyncio.gather(*(b.aclose() for b in backends.values()))

    with running_standin(config) as server:
        spec = tmp_path / "s.yaml"
        host = {"name": "local", "url": server.url, "kind": "openai", "slots": slots}
        suite = str(REPO / "benchmarks/suites/classify-intent.jsonl")
        body = {"name": "s", "suite": suite, "models": ["m:1b"], "grid": grid, "hosts": [host]}
        spec.write_text(yaml.safe_dump(body))
        checks = asyncio.run(check_spec(spec, timeout_s=5.0))
        sweep = prepare_sweep(spec)
        asyncio.run(run_checks())
    engine = [c for c in checks if c.component in ("seeds local", "slots local")]
    assert all(c.status != "fail" for c in checks), checks
    assert [c.component for c in engine] == ([f"{warned} local"] if warned else [])
    assert run_warnings == [f"host local: {c.detail}" for c in engine]
    if warned:
        assert engine[0].status == "warn"
        assert engine[0].detail.startswith(
            "1 config at temperature > 0 without `seed`: "
            if warned == "seeds"
            else "slots: 4, but llama-cpp-python's server answers one request at a time: "
        )
