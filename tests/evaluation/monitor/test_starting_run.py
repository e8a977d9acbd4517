"""A run between its claim and its flow's start (Prefect starting: ~20 s under load) is
shown by `status` and the monitor from its claim on, the record that refuses a second
run (newcomer N10: "Nothing runs now" while a second `run` was refused), and is gone
once its process dies without ending (``kill -9``), as the refusal judges it too."""

from __future__ import annotations

import socket
import subprocess

import pytest
from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from evaluation.monitor import running_runs, set_stage
from evaluation.observability import metrics_registry
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.repository import set_experiment_status
from evaluation.storage.runs import (
    ExperimentBusy,
    RunProcess,
    _process_started,
    claim_experiment,
)
from evaluation.view.app import create_app
from flows.cli import main
from tests.support.databases import sqlite_or_postgres
from tests.support.results_db import register_unrun

NAME = "nc-sweep-4"


@pytest.fixture
def holder():
    """A process that holds a claim, then is killed (-9) by the test."""
    child = subprocess.Popen(["sleep", "60"])
    yield child, RunProcess(child.pid, _process_started(child.pid), socket.gethostname())
    child.kill()
    child.wait()


def _refusal(engine) -> str:
    """Which process the refusal of a second run names, and since when."""
    with pytest.raises(ExperimentBusy) as busy, session_scope(engine) as session:
        claim_experiment(session, NAME, RunProcess.current())
    return busy.value.holder.removeprefix(f"experiment {NAME!r} is already running: ")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    yield from sqlite_or_postgres(request.param, tmp_path / "r.db", "evalflow_starting")


def test_a_claimed_run_not_begun_is_starting_until_its_process_dies(url, holder, capsys):
    """On PostgreSQL too: the starting run's stored experiment was looked up by its name
    as the integer key (newcomer W1: status exit 2 and /api/live 500 while starting)."""
    engine = make_engine(url)
    child, process = holder
    with session_scope(engine) as session:
        claim_experiment(session, NAME, process)  # no experiment stored yet
    said = f"{NAME}: starting ({_refusal(engine)}; no generation yet)"
    assert f"process {child.pid} on " in said
    for argv in (["status"], ["status", NAME]):
        assert main(["--database", url, *argv]) == 0
        assert capsys.readouterr().out.strip() == said
    client = TestClient(create_app(engine))
    [row] = client.get("/api/live").json()["running"]
    assert (row["name"], row["stage"], row["done"]) == (NAME, "starting", 0)
    assert said.endswith(f"({row['starting']})")
    running = client.get("/").text.split('id="running"')[1].split("</section>")[0]
    assert NAME in running and "no generation yet" in running and "Nothing runs now" not in running
    page = client.get(f"/e/{NAME}/live")
    assert page.status_code == 200 and "starting" in page.text and "no generation yet" in page.text

    child.kill()  # kill -9: nothing ended the claim
    child.wait()
    assert main(["--database", url, "status"]) == 0
    assert "Nothing runs now" in capsys.readouterr().out
    assert client.get("/api/live").json() == {"running": []}
    with session_scope(engine) as session:  # the refusal judges it dead alike: taken over
        claim_experiment(session, NAME, RunProcess.current())


def test_a_new_claim_over_a_crashed_runs_live_row_is_starting(tmp_path, holder, capsys):
    """A crash leaves its experiment stored as running with its live row (done 3 of 9):
    the run that takes it over is starting, not at the crashed run's figures."""
    url, engine = _claimed_over_a_crash(tmp_path, holder[1])
    with session_scope(engine) as session:
        [row] = running_runs(session)
    assert (row["stage"], row["starting"]) == ("starting", f"{_refusal(engine)}; no generation yet")
    assert main(["--database", url, "status", NAME]) == 0
    assert capsys.readouterr().out.startswith(f"{NAME}: starting (process {holder[0].pid} on ")


def test_a_new_claim_over_a_crashed_run_is_starting_wherever_runs_are_listed(
    tmp_path, holder, capsys
):
    """The monitor said starting (the live row was the crashed run's) while `experiments`
    and ``evalflow_runs`` said running: one rule (``starting_runs``) for all three."""
    url, engine = _claimed_over_a_crash(tmp_path, holder[1])

    assert main(["--database", url, "experiments"]) == 0
    [listed] = capsys.readouterr().out.splitlines()[1:]
    assert " starting " in listed and f"process {holder[0].pid} on " in listed, listed
    assert _runs_by_status(engine) == {"starting": 1}
    client = TestClient(create_app(engine))
    [row] = client.get("/api/live").json()["running"]
    assert row["stage"] == "starting"
    recent = client.get("/").text.split('id="recent"')[1].split("</section>")[0]
    assert 'class="status-starting">starting<' in recent.split(f'data-name="{NAME}"')[1]


def _claimed_over_a_crash(tmp_path, process: RunProcess):
    """A database whose experiment's run crashed (stored as running, its live row at
    "generate") and that ``process`` claims again; its URL and engine."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    engine = make_engine(url)
    here = RunProcess.current()
    with session_scope(engine) as session:
        claim_experiment(session, NAME, RunProcess(here.pid, "gone", here.hostname))
        register_unrun(session, NAME, spec_path="spec.yaml")
    set_stage(engine, NAME, "generate", started=True)
    with session_scope(engine) as session:
        claim_experiment(session, NAME, process)
    return url, engine


def test_a_starting_run_is_starting_wherever_runs_are_listed(tmp_path, holder, capsys):
    """`experiments`, the metrics and the monitor's recent runs left out a starting run
    not stored yet, and showed one resuming a stored experiment as that last ended
    (interrupted), while `status` and "Running now" said starting."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    engine = make_engine(url)
    with session_scope(engine) as session:
        resumed = register_unrun(session, "nc-resumed", spec_path="spec.yaml")
        set_experiment_status(session, resumed.id, "interrupted")
        claim_experiment(session, "nc-resumed", holder[1])
        claim_experiment(session, NAME, holder[1], task_type="qa")  # not stored yet
        claim_experiment(session, "nc-untold", holder[1])  # no task type: not counted

    assert main(["--database", url, "experiments"]) == 0
    listed = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    words = f"process {holder[0].pid} on "
    for name in (NAME, "nc-resumed"):
        assert " starting " in listed[name] and words in listed[name], listed[name]
    assert "interrupted" not in listed["nc-resumed"]
    assert _runs_by_status(engine) == {"starting": 3}

    page = TestClient(create_app(engine)).get("/").text
    recent = page.split('id="recent"')[1].split("</section>")[0]
    for name in (NAME, "nc-resumed"):
        row = recent.split(f'data-name="{name}"')[1].split("</tr>")[0]
        assert 'class="status-starting">starting<' in row and f"/e/{name}/live" in row
    stats = page.split('id="stats"')[1].split("</section>")[0]
    # the stored one, and the one its claim tells the task type of (it was left out)
    by_task, by_pipeline = stats.split("<h3>pipeline</h3>")
    assert by_task.count(" active · ") == 1 and "<div>2 active · 2 runs</div>" in by_task
    assert "<div>1 active · 1 runs</div>" in by_pipeline  # its pipeline: known once stored

    holder[0].kill()  # kill -9: the claims are gone, the stored experiment as it ended
    holder[0].wait()
    assert main(["--database", url, "experiments"]) == 0
    out = capsys.readouterr().out
    assert NAME not in out and "interrupted" in out
    assert _runs_by_status(engine) == {"interrupted": 1}
    recent = TestClient(create_app(engine)).get("/").text.split('id="recent"')[1]
    assert NAME not in recent.split("</section>")[0]


def _runs_by_status(engine) -> dict[str, float]:
    """``evalflow_runs`` as a scrape reads it."""
    text = generate_latest(metrics_registry(engine)).decode()
    (runs,) = [f for f in text_string_to_metric_families(text) if f.name == "evalflow_runs"]
    return {s.labels["status"]: s.value for s in runs.samples}


def test_a_starting_run_is_starting_to_the_verbs_that_name_it(tmp_path, holder, capsys):
    """Recheck R16: in a run's first seconds `status` showed it starting while `gate`,
    `show` and `baseline accept` said "no experiment named …": a CI job gating right
    after starting a run was told it did not exist."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    engine = make_engine(url)
    with session_scope(engine) as session:
        register_unrun(session, "nc-earlier", spec_path="spec.yaml")
        claim_experiment(session, NAME, holder[1])  # not stored yet
    said = (
        f"error: experiment {NAME!r} is starting ({_refusal(engine)}; no generation yet): "
        "nothing of it is stored yet; wait for it to finish (a rerun is refused while it runs)"
    )
    for argv in (
        ["show", NAME],
        ["gate", NAME, "--baseline", "nc-earlier"],
        ["baseline", "accept", NAME],
    ):
        assert main(["--database", url, *argv]) == 2, argv
        out, err = capsys.readouterr()
        assert (out, err.strip()) == ("", said), argv


def test_a_simulated_run_is_simulated_from_its_claim(tmp_path, holder, capsys):
    """Newcomer F5: a simulated run starting (not stored yet) read ``"simulated": false``
    on /api/live and /api/runs/NAME (and ``"task_type": ""`` there), and `status` left out
    its [SIMULATED] mark, until its flow stored the experiment; its claim says both."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    engine = make_engine(url)
    with session_scope(engine) as session:
        claim_experiment(session, NAME, holder[1], task_type="qa", simulated=True)
        claim_experiment(session, "nc-real", holder[1], task_type="qa", simulated=False)
    client = TestClient(create_app(engine))
    live = {row["name"]: row for row in client.get("/api/live").json()["running"]}
    assert {n: (r["simulated"], r["task_type"]) for n, r in live.items()} == {
        NAME: (True, "qa"),
        "nc-real": (False, "qa"),
    }
    # newcomer ncmon-5: the home page's "Running now" rows carried no mark
    running = client.get("/").text.split('id="running-rows"')[1].split("</tbody>")[0]
    rows = {row.split('"')[0]: row for row in running.split('<tr data-name="')[1:]}
    assert {n: "SIMULATED" in r for n, r in rows.items()} == {NAME: True, "nc-real": False}
    facts = client.get(f"/api/runs/{NAME}").json()
    assert (facts["status"], facts["simulated"], facts["task_type"]) == ("starting", True, "qa")
    text = generate_latest(metrics_registry(engine)).decode()  # ncmon-6: counted apart
    (runs,) = [f for f in text_string_to_metric_families(text) if f.name == "evalflow_runs"]
    assert {(s.labels["status"], s.labels["simulated"]): s.value for s in runs.samples} == {
        ("starting", "true"): 1,
        ("starting", "false"): 1,
    }
    assert main(["--database", url, "status", NAME]) == 0
    assert capsys.readouterr().out.startswith(f"{NAME} [SIMULATED]: starting (process ")
