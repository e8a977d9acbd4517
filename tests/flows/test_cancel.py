"""Cancelling a sweep from the Prefect UI: the UI sets the flow run to Cancelling through
the API; here the test does the same with Prefect's client. The run must stop
generating within seconds, give back its host slots, end its experiment `cancelled`
and its flow run Cancelled; a rerun completes it, nothing redone or stored twice."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.exceptions import CancelledRun
from prefect.states import Cancelling
from sqlalchemy import func, select

from evaluation.spec import HostSpec
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.models import Experiment, ExperimentRun, Generation
from flows.evaluate import evaluate
from tasks.adapters import cancellation
from tasks.adapters.host_limits import host_limit_name
from tests.conftest import REPO
from tests.support.standin_ollama import StandInConfig, echo_reply, running_standin

pytestmark = pytest.mark.usefixtures("prefect_harness")

SUITE = REPO / "benchmarks/suites/classify-intent.jsonl"
CASES = sum(1 for line in SUITE.read_text().splitlines() if line.strip())
TEMPERATURES = [0.0, 0.5]
TOTAL = len(TEMPERATURES) * CASES
SLOTS = 2
LATENCY_MS = 100.0  # each answer's time in its slot
STOP_LIMIT_S = 5.0  # the watch polls every second; the rest is unwinding
ANSWERED = TOTAL // 4  # the host answers these, then holds the rest until the cancel


def write_spec(path: Path, url: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "name": "cancel-me",
                "suite": str(SUITE),
                "models": ["llama3.2:3b"],
                "grid": {"temperature": TEMPERATURES, "num_predict": [16]},
                "hosts": [{"name": "cancel-host", "url": url, "slots": SLOTS}],
            }
        )
    )
    return path


def stored(database_url: str) -> int:
    engine = make_engine(database_url, create=False)
    try:
        with session_scope(engine) as session:
            return session.exec(
                select(func.count()).select_from(Generation).where(Generation.status == "ok")
            ).scalar_one()
    except Exception:  # tables not made yet
        return 0
    finally:
        engine.dispose()


async def cancel_from_the_ui(flow_run_id: str) -> None:
    """What the UI's Cancel button does: propose Cancelling for the flow run."""
    async with get_client() as client:
        await client.set_flow_run_state(flow_run_id, Cancelling(), force=True)


def cancel_from_a_reply(database_url: str) -> None:
    """The UI's Cancel of the run's flow run, from the stand-in's reply thread."""
    engine = make_engine(database_url, create=False)
    with session_scope(engine) as session:
        flow_run_id = session.get(ExperimentRun, "cancel-me").flow_run_id
    engine.dispose()
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run_id, Cancelling(), force=True)


async def flow_run_state(flow_run_id: str) -> str:
    async with get_client() as client:
        return (await client.read_flow_run(flow_run_id)).state.type.value


async def active_slots(host: HostSpec) -> int:
    async with get_client() as client:
        limit = await client.read_global_concurrency_limit_by_name(host_limit_name(host))
        return limit.active_slots


def test_a_sweep_cancelled_from_the_api_stops_frees_its_slots_and_resumes(
    tmp_path, database_url, monkeypatch
):
    # The host answers the first quarter and holds the rest (the run's requests wait on
    # it until the cancel aborts them): the cancel lands mid-sweep however slowly this
    # test's thread gets to send it. With the host answering on, at load ~20 the sweep
    # once ended before the cancel was seen (72 of 72 stored). How soon it stops is
    # asserted as the watch's looks at the flow run, not in seconds (6 s at load 20):
    # no look begun after the cancel missed it, and nothing was sent once one saw it.
    looks: list[tuple[float, bool, int]] = []  # begun, saw the cancel, requests then
    seeing = cancellation.cancel_requested

    async def looked(client, flow_run_id) -> bool:
        begun = time.monotonic()
        seen = await seeing(client, flow_run_id)
        looks.append((begun, seen, server.stats.requests))
        return seen

    monkeypatch.setattr(cancellation, "cancel_requested", looked)
    config = StandInConfig(models=("llama3.2:3b",), slots=SLOTS, latency_ms=LATENCY_MS)
    with running_standin(config) as server:
        server.hold_answers(threading.Event(), after=ANSWERED)  # never set: the run stops
        spec = write_spec(tmp_path / "spec.yaml", server.url)
        outcome: dict[str, object] = {}

        def run() -> None:
            try:
                outcome["result"] = asyncio.run(evaluate(str(spec), database=database_url))
            except BaseException as exc:
                outcome["error"] = exc
            outcome["ended"] = time.monotonic()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 300
        while stored(database_url) < ANSWERED:
            assert thread.is_alive(), outcome
            assert time.monotonic() < deadline, "the sweep never got going"
            time.sleep(0.05)
        engine = make_engine(database_url, create=False)
        with session_scope(engine) as session:
            flow_run_id = session.get(ExperimentRun, "cancel-me").flow_run_id
        asyncio.run(cancel_from_the_ui(flow_run_id))
        cancelled_at = time.monotonic()
        thread.join(60)
        assert not thread.is_alive(), "the run went on after the cancel"
        stop_s = outcome["ended"] - cancelled_at
        requests_at_stop = server.stats.requests
        watched = list(looks)  # the rerun's are not the cancelled run's
        while server.stats.in_flight:  # the held requests the cancel aborted end there
            assert time.monotonic() < cancelled_at + 60, server.stats.in_flight
            time.sleep(0.01)
        time.sleep(1.0)  # nothing may reach the host after the run has stopped
        requests_after = server.stats.requests
        in_flight = server.stats.in_flight
        at_cancel = stored(database_url)
        with session_scope(engine) as session:
            experiment = session.exec(
                select(Experiment).where(Experiment.name == "cancel-me")
            ).scalar_one()
            run_row = session.get(ExperimentRun, "cancel-me")
            cancelled_status = (experiment.status, run_row.status, run_row.reason)
        slots_after_cancel = asyncio.run(active_slots(HostSpec("cancel-host", server.url)))
        state_after_cancel = asyncio.run(flow_run_state(flow_run_id))

        before_rerun = server.stats.requests
        server.hold_answers(None)
        summary = asyncio.run(evaluate(str(spec), database=database_url))
        redone = server.stats.requests - before_rerun

    print(f"stopped {stop_s:.2f} s after the cancel, {at_cancel}/{TOTAL} stored")
    assert isinstance(outcome.get("error"), CancelledRun), outcome
    assert not [look for look in watched if look[0] > cancelled_at and not look[1]], watched
    assert [look[2] for look in watched if look[1]][:1] == [requests_at_stop], watched
    assert 0 < at_cancel == ANSWERED < TOTAL
    assert requests_after == requests_at_stop and in_flight == 0
    assert slots_after_cancel == 0
    assert state_after_cancel == "CANCELLED"
    assert cancelled_status[:2] == ("cancelled", "cancelled")
    assert "cancelled from Prefect" in cancelled_status[2]

    assert summary["skipped_already_done"] == at_cancel
    assert summary["generated"] == TOTAL - at_cancel == redone
    with session_scope(engine) as session:
        keys = session.exec(
            select(
                func.count(),
                func.count(func.distinct(Generation.config_hash + Generation.case_uid)),
            ).select_from(Generation)
        ).one()
        assert tuple(keys) == (TOTAL, TOTAL)
        assert session.get(ExperimentRun, "cancel-me").status == "completed"
    engine.dispose()


# `evalflow run` as a user starts it: its own process and embedded Prefect server, the
# flow run cancelled through that server's API while the sweep generates.
from tests.flows.test_run_lifecycle import (  # noqa: E402
    START_S,
    children,
    cli,
    environment,
    evalflow,
    kill_all,
    query,
    wait_for,
)
from tests.flows.test_run_lifecycle import status as experiment_status  # noqa: E402
from tests.flows.test_run_lifecycle import stored as stored_in  # noqa: E402


def embedded_api_url(tmp_path: Path, pid: int) -> str:
    """The API of the embedded server that process ``pid`` started (from its log)."""
    log = tmp_path / "evalflow" / "logs" / "prefect-server.log"
    marker = f"--- evalflow process {pid}: server on port "
    line = next(row for row in log.read_text().splitlines() if row.startswith(marker))
    return f"http://127.0.0.1:{line.removeprefix(marker).split()[0]}/api"


async def cancel_at(api_url: str, flow_run_id: str) -> bool:
    """Prefect's client against that server, proposing Cancelling as the UI's button
    does (not forced); whether the server accepted it."""
    from prefect.client.orchestration import PrefectClient

    async with PrefectClient(api_url) as client:
        result = await client.set_flow_run_state(flow_run_id, Cancelling())
    return result.status.value == "ACCEPT"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.timeout(1800)
def test_evalflow_run_cancelled_from_the_ui_says_so_and_a_rerun_resumes(
    tmp_path,
    prefect_home,
    started,
):
    """The command ends within seconds of the cancel with one line saying how to resume
    (exit 130, no traceback); the host's slot counter in Prefect's database is back to
    0; `experiments` and `show` say cancelled; the rerun generates only the rest."""
    env = environment(tmp_path, prefect_home)
    db = tmp_path / "results.db"
    total = 3 * CASES
    config = StandInConfig(models=("llama3.2:3b",), slots=SLOTS, latency_ms=60.0)
    with running_standin(config) as server:
        server.hold_answers(threading.Event(), after=total // 4)  # the rest wait on the cancel
        spec = tmp_path / "spec.yaml"
        spec.write_text(
            yaml.safe_dump(
                {
                    "name": "cancel-cli",
                    "suite": str(SUITE),
                    "models": ["llama3.2:3b"],
                    "grid": {"temperature": [0.0, 0.3, 0.6], "num_predict": [16]},
                    "hosts": [{"name": "a", "url": server.url, "slots": SLOTS}],
                }
            )
        )
        run = evalflow(env, "run", str(spec))
        started.append(run)
        wait_for(lambda: stored_in(db) >= total // 4, START_S, run)
        servers = children(run.pid)
        flow_run_id = query(
            db, "SELECT flow_run_id FROM experiment_runs WHERE experiment = 'cancel-cli'"
        )[0][0]
        try:
            accepted = asyncio.run(cancel_at(embedded_api_url(tmp_path, run.pid), flow_run_id))
            sent = time.monotonic()
            output, _ = run.communicate(timeout=60)
            exit_s = time.monotonic() - sent
        finally:
            kill_all(servers)
        at_exit = stored_in(db)
        requests_at_exit = server.stats.requests
        while server.stats.in_flight:  # the held requests the cancel aborted end there
            assert time.monotonic() < sent + 60, server.stats.in_flight
            time.sleep(0.01)
        slots = (
            sqlite3.connect(tmp_path / "prefect" / "prefect.db")
            .execute(
                "SELECT active_slots FROM concurrency_limit_v2 WHERE name = ?",
                (host_limit_name(HostSpec("a", server.url)),),
            )
            .fetchall()
        )
        listing = cli(env, "experiments").stdout
        shown = cli(env, "show", "cancel-cli").stdout
        server.hold_answers(None)
        rerun = evalflow(env, "run", str(spec))
        started.append(rerun)
        rerun_output, _ = rerun.communicate(timeout=1200)
        redone = server.stats.requests - requests_at_exit

    print(f"evalflow run exited {exit_s:.2f} s after the cancel; {at_exit}/{total} stored")
    assert accepted
    assert run.returncode == 130, output
    assert exit_s <= STOP_LIMIT_S, f"took {exit_s:.1f} s:\n{output}"
    assert output.strip().splitlines()[-1] == (
        "cancelled: 'cancel-cli' stopped (cancelled from Prefect (the UI or the API)); "
        f"resume with: evalflow run {spec}"
    )
    assert "Traceback" not in output and "ERROR" not in output, output
    assert 0 < at_exit == total // 4
    assert slots == [(0,)]
    line = next(row for row in listing.splitlines() if row.startswith("cancel-cli"))
    assert " cancelled " in line and line.endswith("cancelled from Prefect (the UI or the API)")
    assert shown.splitlines()[0] == "Status: cancelled: cancelled from Prefect (the UI or the API)"

    assert rerun.returncode == 0, rerun_output
    assert f"{at_exit} generations already stored" in rerun_output
    assert redone == total - at_exit
    assert experiment_status(db, "cancel-cli") == "completed"
    rows = query(db, "SELECT count(*), count(DISTINCT config_hash || case_uid) FROM generations")
    assert rows == [(total, total)]


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("Cancelling", "cancelled"),
        ("Cancelled", "cancelled"),
        ("Failed", "failed"),
        ("Crashed", "interrupted"),
    ],
)
def test_a_flow_run_ended_by_prefect_ends_its_experiment_with_the_matching_status(
    database_url, state, status
):
    """On a worker or `evalflow serve`, the runner kills a cancelled flow run's process
    and runs the flow's hook: the experiment says cancelled, not interrupted."""
    from types import SimpleNamespace

    from prefect import states

    from evaluation.storage.runs import RunProcess, claim_experiment
    from tasks.sweep import record_outcome

    engine = make_engine(database_url)
    with session_scope(engine) as session:
        claim_experiment(session, "worker-run", RunProcess.current(), flow_run_id="f-9")
    flow_run = SimpleNamespace(id="f-9", parameters={"database": database_url})
    record_outcome(None, flow_run, getattr(states, state)(message="stopped"))
    with session_scope(engine) as session:
        assert session.get(ExperimentRun, "worker-run").status == status


@pytest.mark.parametrize("told", ["channel", "api"])
def test_a_runners_cancel_ends_the_run_in_one_line_without_a_traceback(
    tmp_path, database_url, caplog, told
):
    """`evalflow serve`'s runner cancels a flow run (the monitor's Cancel) by telling the
    flow's process so through Prefect's control channel, then sending it SIGTERM:
    Prefect's handler raised TerminationSignal wherever the generation stood, and the
    terminal showed ERROR lines and three chained tracebacks ending in
    `TerminationSignal: 15` for an ordinary cancel. Now the run ends as a cancel seen on
    the flow run's state does: experiment and flow run cancelled, one line of what was
    kept, no traceback. ``told``: the runner's control channel says it is a cancel, or
    (its channel not connected, as under a real `evalflow serve`) only the flow run's
    state, Cancelling, does."""
    import logging
    import os
    import signal

    from prefect._internal import control_listener

    from flows.cli.logs import _STOPPED

    asked = []

    def cancelled_by_the_runner(model, messages):  # the runner's two steps, mid-sweep
        asked.append(model)
        if len(asked) == TOTAL // 4:
            if told == "channel":
                control_listener._set_intent("cancel")
            else:
                cancel_from_a_reply(database_url)
            os.kill(os.getpid(), signal.SIGTERM)
        return echo_reply(model, messages)

    config = StandInConfig(
        models=("llama3.2:3b",), slots=SLOTS, latency_ms=LATENCY_MS, reply=cancelled_by_the_runner
    )
    with running_standin(config) as server:
        spec = write_spec(tmp_path / "spec.yaml", server.url)
        try:
            with caplog.at_level(logging.INFO), pytest.raises(CancelledRun):
                asyncio.run(evaluate(str(spec), database=database_url))
        finally:
            control_listener._clear_intent()
    kept = stored(database_url)
    engine = make_engine(database_url, create=False)
    with session_scope(engine) as session:
        run_row = session.get(ExperimentRun, "cancel-me")
        flow_run_id = run_row.flow_run_id
        assert run_row.status == "cancelled"
    engine.dispose()
    assert asyncio.run(flow_run_state(flow_run_id)) == "CANCELLED"
    assert 0 < kept < TOTAL
    assert f"cancel-me cancelled: {kept} generations kept; rerun to resume" in caplog.text
    assert "TerminationSignal" not in caplog.text and "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.exc_info], caplog.text
    # Prefect's own lines of the generation task cut short and of the flow run ending
    # Cancelled stay (at ERROR, no traceback): the ones `evalflow run` keeps off its
    # console (flows/cli/logs.py), not "Finished in state Running()" nor asyncio's.
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert all(any(m in e for m in _STOPPED) for e in errors), errors


def test_a_runners_sigterm_after_the_watch_saw_the_cancel_still_ends_it_cancelled(
    tmp_path, database_url, caplog, monkeypatch
):
    """The watch saw the flow run Cancelling on its poll, and the runner's SIGTERM came
    as the cancelled run ended (ncwatch-1, `evalflow serve` at load 20-25): Prefect's
    handler, back in place, raised TerminationSignal there; the flow run Crashed, the
    experiment said `interrupted` and no `NAME cancelled: ...` line was written."""
    import logging
    import os
    import signal

    import flows.evaluate

    asked = []

    def cancelled_from_the_ui(model, messages):
        asked.append(model)
        if len(asked) == TOTAL // 4:
            cancel_from_a_reply(database_url)
        return echo_reply(model, messages)

    cancel_run = flows.evaluate.cancel_run

    def runner_sigterm_then_cancel_run(engine, experiment_id):
        os.kill(os.getpid(), signal.SIGTERM)  # the runner's, once the watch has returned
        return cancel_run(engine, experiment_id)

    monkeypatch.setattr(flows.evaluate, "cancel_run", runner_sigterm_then_cancel_run)
    # what the flow engine puts back (and re-sends a TerminationSignal to) as it ends
    outside = signal.signal(signal.SIGTERM, lambda *_: None)
    config = StandInConfig(
        models=("llama3.2:3b",), slots=SLOTS, latency_ms=LATENCY_MS, reply=cancelled_from_the_ui
    )
    try:
        with running_standin(config) as server:
            spec = write_spec(tmp_path / "spec.yaml", server.url)
            with caplog.at_level(logging.INFO), pytest.raises(CancelledRun):
                asyncio.run(evaluate(str(spec), database=database_url))
    finally:
        signal.signal(signal.SIGTERM, outside)
    kept = stored(database_url)
    engine = make_engine(database_url, create=False)
    with session_scope(engine) as session:
        run_row = session.get(ExperimentRun, "cancel-me")
        assert run_row.status == "cancelled"
        flow_run_id = run_row.flow_run_id
    engine.dispose()
    assert asyncio.run(flow_run_state(flow_run_id)) == "CANCELLED"
    assert f"cancel-me cancelled: {kept} generations kept; rerun to resume" in caplog.text
    assert "TerminationSignal" not in caplog.text and "termination signal" not in caplog.text
