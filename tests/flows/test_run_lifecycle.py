"""`evalflow run` as a process: the embedded Prefect server dies with it however it is
killed, and a rerun after `kill -9` resumes (every generation stored once, finished ones
never requested again); Ctrl-C and SIGTERM stop it within seconds leaving a resumable,
`interrupted` experiment; the same experiment cannot run twice at once while two
different ones start together fine; a failed run says so; and a race killed mid-race
ends, on its rerun, with the rounds of a race never stopped.

Each run is a real process with its own embedded server, so the tests chain what they
can (interrupt, rerun, interrupt the rerun, rerun) rather than start more processes, and
their Prefect homes start from one migrated copy (`prefect_home`, in conftest)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from flows.cli import main
from flows.evaluate import evaluate
from tests.conftest import REPO
from tests.support.processes import parent_pids, sigint_at_start
from tests.support.standin_ollama import StandInConfig, running_standin

SUITE = REPO / "benchmarks/suites/classify-intent.jsonl"
CASES = sum(1 for line in SUITE.read_text().splitlines() if line.strip())
TEMPERATURES = [0.0, 0.3, 0.6]
TOTAL = len(TEMPERATURES) * CASES
SLOTS = 2
LATENCY_MS = 60.0  # 108 generations on 2 slots: ~3 s, so a signal lands mid-sweep
EXIT_LIMIT_S = 5.0
START_S = 600  # Prefect's start-up on a loaded 2-core machine; seconds when quiet

# Each test starts real `evalflow run` processes (each with its Prefect server).
pytestmark = [
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc"),
    pytest.mark.timeout(1800),
]


def write_spec(path: Path, name: str, url: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "suite": str(SUITE),
                "models": ["llama3.2:3b"],
                "grid": {"temperature": TEMPERATURES, "num_predict": [16]},
                "hosts": [{"name": "a", "url": url, "slots": SLOTS}],
            }
        )
    )
    return path


def environment(tmp_path: Path, prefect_home: Path | None = None) -> dict[str, str]:
    """A fresh results database and Prefect home; the home a copy of ``prefect_home``
    (migrated already) when given, else empty (the first server migrates it)."""
    home = tmp_path / "prefect"
    if prefect_home is not None:
        shutil.copytree(prefect_home, home)
    env = os.environ | {
        "EVALFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'results.db'}",
        "EVALFLOW_HOME": str(tmp_path / "evalflow"),
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",  # loaded CI machines
    }
    env.pop("PREFECT_API_URL", None)
    return env


def evalflow(
    env: dict[str, str], *args: str, entry: tuple[str, str] = ("-m", "flows.cli")
) -> subprocess.Popen:
    """`evalflow` as a terminal's shell starts it: Ctrl-C not ignored, a process group of
    its own. ``entry``: how Python runs it (``("-c", script)``: a script calling it)."""
    with sigint_at_start(signal.default_int_handler):
        return subprocess.Popen(
            [sys.executable, *entry, *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )


def query(db: Path, sql: str, *params) -> list[tuple]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return []


def stored(db: Path, experiment: str | None = None) -> int:
    sql = "SELECT count(*) FROM generations g JOIN experiments e ON e.id = g.experiment_id "
    sql += "WHERE g.status = 'ok'" + (" AND e.name = ?" if experiment else "")
    rows = query(db, sql, *([experiment] if experiment else []))
    return rows[0][0] if rows else 0


def status(db: Path, experiment: str) -> str:
    return query(db, "SELECT status FROM experiments WHERE name = ?", experiment)[0][0]


def children(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (read from /proc)."""
    parents = parent_pids()
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found += kids
        frontier += kids
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def wait_for(condition, timeout_s: float, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_kill_9_leaves_no_prefect_server_running_and_a_rerun_resumes(
    tmp_path, prefect_home, started
):
    """A run killed with SIGKILL mid-sweep takes its embedded Prefect server with it; the
    experiment is then reported crashed, not running; a rerun resumes it: only what was
    not stored is generated, every generation stored exactly once."""
    env = environment(tmp_path, prefect_home)
    db = tmp_path / "results.db"
    config = StandInConfig(models=("llama3.2:3b",), slots=SLOTS, latency_ms=LATENCY_MS)
    with running_standin(config) as s:
        spec = write_spec(tmp_path / "spec.yaml", "kill-9", s.url)
        run = evalflow(env, "run", str(spec))
        started.append(run)
        wait_for(lambda: stored(db) >= TOTAL // 3, START_S, run)
        servers = children(run.pid)
        assert servers, "the embedded server should be a child of the command"
        try:
            os.kill(run.pid, signal.SIGKILL)  # the command only, as the OOM killer would
            run.wait()
            deadline = time.monotonic() + 10
            while any(alive(p) for p in servers) and time.monotonic() < deadline:
                time.sleep(0.1)
            left = [p for p in servers if alive(p)]
        finally:
            kill_all(servers)
        at_kill = stored(db)
        killed_status = status(db, "kill-9")
        listing = cli(env, "experiments")
        requests_before = s.stats.requests
        rerun = evalflow(env, "run", str(spec))
        started.append(rerun)
        rerun_output, _ = rerun.communicate(timeout=1200)
        redone = s.stats.requests - requests_before

    assert left == [], f"still running after the command was killed: {left}"
    assert 0 < at_kill < TOTAL
    assert killed_status == "running"  # nobody could record the end ...
    assert listing.returncode == 0, listing.stderr
    line = next(row for row in listing.stdout.splitlines() if row.startswith("kill-9"))
    assert " crashed " in line and f"process {run.pid} " in line  # ... but it is told
    server_log = (tmp_path / "evalflow" / "logs" / "prefect-server.log").read_text()
    assert f"--- evalflow process {run.pid}: " in server_log  # its own log, not the terminal

    assert rerun.returncode == 0, rerun_output
    assert f"{at_kill} generations already stored" in rerun_output
    assert redone == TOTAL - at_kill  # only what was not stored at the kill
    assert "Traceback" not in rerun_output
    assert status(db, "kill-9") == "completed"
    rows = query(
        db, "SELECT count(*), count(DISTINCT config_hash || case_uid || sample_index) "
        "FROM generations"
    )  # fmt: skip
    assert rows == [(TOTAL, TOTAL)]


def interrupt(run: subprocess.Popen, signum: signal.Signals) -> tuple[float, str, list[int]]:
    """Send ``signum`` as a terminal would; seconds to exit, the output, and which of the
    run's children (its embedded server) are still alive afterwards."""
    servers = children(run.pid)
    try:
        # Ctrl-C reaches the whole foreground process group; SIGTERM the command.
        if signum == signal.SIGINT:
            os.killpg(run.pid, signum)
        else:
            os.kill(run.pid, signum)
        sent = time.monotonic()
        output, _ = run.communicate(timeout=30)
        exit_s = time.monotonic() - sent
        left = [p for p in servers if alive(p)]
    finally:
        kill_all(servers)
    print(f"{signum.name}: exited {exit_s:.2f} s after the signal")
    return exit_s, output, left


def test_sigint_then_sigterm_stop_runs_quickly_and_reruns_resume(tmp_path, prefect_home, started):
    """Ctrl-C a quarter into the sweep, rerun, SIGTERM the rerun half-way, rerun again:
    each signal ends its run within the limit, with one line saying how to resume, no
    traceback, the server gone and the experiment `interrupted`; each rerun resumes from
    what was stored and never asks for a stored generation again."""
    env = environment(tmp_path, prefect_home)
    db = tmp_path / "results.db"
    config = StandInConfig(models=("llama3.2:3b",), slots=SLOTS, latency_ms=LATENCY_MS)
    resume_line = "interrupted: 'signalled' stopped; resume with: evalflow run {}"
    stops = []  # per signal: the run, how it stopped, what was stored and requested
    with running_standin(config) as s:
        spec = write_spec(tmp_path / "spec.yaml", "signalled", s.url)
        requests_before = 0
        for signum, share in ((signal.SIGINT, 4), (signal.SIGTERM, 2)):
            run = evalflow(env, "run", str(spec))
            started.append(run)
            wait_for(lambda share=share: stored(db) >= TOTAL // share, START_S, run)
            exit_s, output, left = interrupt(run, signum)
            requests = s.stats.requests - requests_before
            requests_before = s.stats.requests
            at_exit, after_signal = stored(db), status(db, "signalled")
            stops.append((signum, run, exit_s, output, left, at_exit, requests, after_signal))
        rerun = evalflow(env, "run", str(spec))
        started.append(rerun)
        rerun_output, _ = rerun.communicate(timeout=1200)
        redone = s.stats.requests - requests_before

    already = 0
    for signum, run, exit_s, output, left, at_exit, requests, after_signal in stops:
        assert exit_s <= EXIT_LIMIT_S, f"{signum.name}: took {exit_s:.1f} s to exit:\n{output}"
        assert run.returncode == 128 + signum, signum.name
        assert output.strip().splitlines()[-1] == resume_line.format(spec), signum.name
        assert "Traceback" not in output and "ERROR" not in output, output
        assert left == [], signum.name
        assert already < at_exit < TOTAL, signum.name  # stopped mid-sweep, after progress
        assert after_signal == "interrupted", signum.name
        if already:
            assert f"{already} generations already stored" in output
            # the interrupted run gave its host slots back: none left to a "dead run"
            assert "dead run" not in output, output
        # Stored ones are never requested again: what it asked for is what it stored, plus
        # at most one request per slot cut short by the signal (these generations take
        # milliseconds; that the ones in flight are waited for and stored is shown with
        # generations of seconds by test_ctrl_c_stores_what_the_requests_in_flight_return).
        assert at_exit - already <= requests <= at_exit - already + SLOTS, signum.name
        already = at_exit

    assert rerun.returncode == 0, rerun_output
    assert f"{already} generations already stored" in rerun_output
    assert "dead run" not in rerun_output, rerun_output
    assert redone == TOTAL - already
    assert status(db, "signalled") == "completed"
    rows = query(db, "SELECT count(*), count(DISTINCT config_hash || case_uid) FROM generations")
    assert rows == [(TOTAL, TOTAL)]


SLOW_SLOTS = 4
SLOW_CASES = 4  # --limit: 3 temperatures x 4 cases = 12 generations of 3 s on 4 slots
SLOW_MS = 3000.0  # longer than the old exit took (its flush ran ~1 s after the signal)


def read_until(run: subprocess.Popen, text: str, timeout_s: float) -> str:
    """The run's output up to and including the first line holding ``text``."""
    seen: list[str] = []
    found = threading.Event()

    def read() -> None:
        for line in run.stdout:
            seen.append(line)
            if text in line:
                found.set()
                return

    threading.Thread(target=read, daemon=True).start()
    assert found.wait(timeout_s), f"no {text!r} in:\n{''.join(seen)}"
    return "".join(seen)


def test_ctrl_c_stores_what_the_requests_in_flight_return(tmp_path, prefect_home, started):
    """Generations of 3 s, 4 slots: Ctrl-C with 4 requests on the wire waits for them,
    saying so, and stores them: the rerun never asks for them again (before, they were
    dropped and redone). A second Ctrl-C cuts the wait short."""
    env = environment(tmp_path, prefect_home)
    db = tmp_path / "results.db"
    total = len(TEMPERATURES) * SLOW_CASES
    config = StandInConfig(models=("llama3.2:3b",), slots=SLOW_SLOTS, latency_ms=SLOW_MS)
    with running_standin(config) as s:
        spec = write_spec(tmp_path / "spec.yaml", "in-flight", s.url)
        spec.write_text(spec.read_text().replace("slots: 2", f"slots: {SLOW_SLOTS}"))
        command = ("run", str(spec), "--limit", str(SLOW_CASES))

        run = evalflow(env, *command)
        started.append(run)
        wait_for(lambda: stored(db) >= SLOW_SLOTS and s.stats.in_flight == SLOW_SLOTS, START_S, run)
        exit_s, output, left = interrupt(run, signal.SIGINT)
        first_requests, first_stored = s.stats.requests, stored(db)
        assert run.returncode == 130 and left == [], output
        assert 0 < first_stored < total
        assert first_stored == first_requests, output  # every request it sent is stored
        assert f"waiting up to 5 s for the {SLOW_SLOTS} request(s) in flight" in output
        assert exit_s <= SLOW_MS / 1000 + EXIT_LIMIT_S, output  # the generations, the exit

        # A second run whose requests take 12 s, and a wait of 30 s: the second Ctrl-C
        # ends the wait, and what was in flight is lost (asked again by the next run).
        s.reconfigure(latency_ms=12_000.0)
        hurried = evalflow(env, *command, "--interrupt-wait", "30")
        started.append(hurried)
        wait_for(lambda: s.stats.requests - first_requests == SLOW_SLOTS, START_S, hurried)
        os.killpg(hurried.pid, signal.SIGINT)
        waiting = read_until(hurried, "interrupted: waiting up to 30 s", 30)
        os.killpg(hurried.pid, signal.SIGINT)
        sent = time.monotonic()
        rest, _ = hurried.communicate(timeout=30)
        hurried_exit_s = time.monotonic() - sent
        hurried_requests = s.stats.requests - first_requests

        s.reconfigure(latency_ms=1.0)
        before = s.stats.requests
        rerun = evalflow(env, *command)
        started.append(rerun)
        rerun_output, _ = rerun.communicate(timeout=1200)
        redone = s.stats.requests - before

    assert status(db, "in-flight") == "completed"

    assert hurried.returncode == 130, waiting + rest
    assert hurried_exit_s <= EXIT_LIMIT_S, f"{hurried_exit_s:.1f} s after the second Ctrl-C"
    assert hurried_requests == SLOW_SLOTS

    assert rerun.returncode == 0, rerun_output
    assert f"{first_stored} generations already stored" in rerun_output
    assert redone == total - first_stored  # the first run's in-flight ones are not redone


TERM_SLOTS = 4
TERM_MS = 3000.0  # long enough that the signal lands with every slot's request on the wire


@pytest.mark.parametrize(
    ("signum", "again"),
    [
        (signal.SIGTERM, "(a second SIGTERM or Ctrl-C exits now)"),
        (signal.SIGHUP, "(a second SIGHUP, SIGTERM or Ctrl-C exits now)"),
    ],
)
def test_sigterm_stores_what_the_requests_in_flight_return(
    tmp_path, prefect_home, started, signum, again
):
    """SIGTERM takes Ctrl-C's path: sent with every slot's request on the wire, it waits
    for them, saying so, and stores them, so the rerun never asks for them again. Prefect's
    flow engine installs a SIGTERM handler of its own that cancelled every task: those
    requests were dropped (flows/run_control.py). So does SIGHUP (a terminal closed, an
    ssh dropped): it ended the run at once, exit 129, no word, the requests lost and the
    experiment "crashed" (newcomers' S4)."""
    env = environment(tmp_path, prefect_home)
    db = tmp_path / "results.db"
    config = StandInConfig(models=("llama3.2:3b",), slots=TERM_SLOTS, latency_ms=TERM_MS)
    with running_standin(config) as s:
        spec = write_spec(tmp_path / "spec.yaml", "terminated", s.url)
        spec.write_text(spec.read_text().replace("slots: 2", f"slots: {TERM_SLOTS}"))
        run = evalflow(env, "run", str(spec), "--limit", "2")  # 6 generations
        started.append(run)
        wait_for(lambda: s.stats.in_flight == TERM_SLOTS, START_S, run)
        exit_s, output, left = interrupt(run, signum)
        requests, at_exit = s.stats.requests, stored(db)

    assert run.returncode == 128 + signum and left == [], output
    assert f"waiting up to 5 s for the {TERM_SLOTS} request(s) in flight" in output
    assert again in output
    assert "Traceback" not in output, output
    assert at_exit == requests == TERM_SLOTS, output  # every request sent is stored: none redone
    assert at_exit < len(TEMPERATURES) * 2
    assert status(db, "terminated") == "interrupted"
    assert exit_s <= TERM_MS / 1000 + EXIT_LIMIT_S, output


def two_config_demo(tmp_path: Path) -> Path:
    """The demo sweep with two of its models and no templates: 2 configs, not 12 (the
    rerun's comparisons and report of 12 configs cost seconds of CPU and show nothing
    more of how a run stopped while it scored resumes)."""
    spec = yaml.safe_load((REPO / "benchmarks/sweeps/demo-simulated.yaml").read_text())
    spec |= {"suite": str(REPO / "benchmarks/suites/qa-short.jsonl")}
    spec |= {"models": ["sim-small:1b", "sim-large:8b"], "grid": {"temperature": [0.0]}}
    del spec["templates"]
    path = tmp_path / "demo-simulated.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


# `evalflow run` SIGTERMed once it has aggregated what it scored: `show` has a
# leaderboard, the run has no comparison and no report.
_TERMINATED_WHILE_SCORING = """
import os, signal, sys, time
import flows.evaluate
from flows.cli import main

aggregated = flows.evaluate.aggregate

def aggregate(*args, **kwargs):
    aggregated(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(60)  # the interrupt's thread exits the process

flows.evaluate.aggregate = aggregate
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_while_scoring_shows_how_to_resume_and_the_rerun_only_scores(
    tmp_path, prefect_home, started
):
    """SIGTERM while the run scored: `show` printed the leaderboard, "Status:
    interrupted", and no word of how to finish it (no comparison, no report until a
    rerun). Now it says the command that resumes it, as it does for a run stopped while
    it generated; the rerun generates nothing, scores and writes the report."""
    env = environment(tmp_path, prefect_home)
    db = tmp_path / "results.db"
    spec = two_config_demo(tmp_path)
    command = ("run", str(spec), "--limit", "2", "--time-scale", "0.001")
    resume = f"evalflow run {spec} --limit 2 --time-scale 0.001"
    total = 2 * 2  # 2 configs, 2 cases
    run = evalflow(env, *command, entry=("-c", _TERMINATED_WHILE_SCORING))
    started.append(run)
    output, _ = run.communicate(timeout=START_S)
    assert run.returncode == 143, output
    assert output.strip().splitlines()[-1] == (
        f"interrupted: 'demo-simulated' stopped; resume with: {resume}"
    )
    assert stored(db) == total
    reports = tmp_path / "evalflow" / "reports"
    assert not any(reports.glob("*.html"))

    shown = cli(env, "show", "demo-simulated")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("Status: interrupted")
    assert "sim-large:8b" in shown.stdout  # the leaderboard of what was scored
    assert shown.stdout.strip().splitlines()[-1] == (
        f"The run stopped before it ended (status interrupted); resume with: {resume} "
        "(it generates only what is missing, then scores and writes the report)"
    )

    rerun = evalflow(env, *command)
    started.append(rerun)
    rerun_output, _ = rerun.communicate(timeout=1200)
    assert rerun.returncode == 0, rerun_output
    assert f"0 generated, 0 failed, {total} already done (resumed)" in rerun_output
    assert status(db, "demo-simulated") == "completed"
    rows = query(db, "SELECT count(*), count(DISTINCT config_hash || case_uid) FROM generations")
    assert rows == [(total, total)]
    assert len(list(reports.glob("*.html"))) == 1
    shown = cli(env, "show", "demo-simulated")
    assert "Status:" not in shown.stdout and "resume with" not in shown.stdout


# `evalflow run` SIGTERMed while its flow starts: the signal's thread records the run
# interrupted before the flow's register task claims the experiment again.
_TERMINATED_AS_THE_FLOW_CLAIMS = """
import os, signal, sqlite3, sys, time
import tasks.sweep
from flows.cli import main

claim = tasks.sweep.claim_experiment
db = os.environ["EVALFLOW_DATABASE_URL"].removeprefix("sqlite:///")

def claim_experiment(session, name, *args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)
    sql = "SELECT status FROM experiment_runs WHERE experiment = ?"
    while sqlite3.connect(db).execute(sql, (name,)).fetchone() != ("interrupted",):
        time.sleep(0.05)
    return claim(session, name, *args, **kwargs)

tasks.sweep.claim_experiment = claim_experiment
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_as_the_flow_claims_leaves_the_run_interrupted_with_its_command(
    tmp_path, prefect_home, started
):
    """SIGTERM after `run` claimed the experiment, before its flow registered it (while
    Prefect started): `run` said it stopped before anything was stored, but the flow's
    register task, still going, claimed the ended run again: left 'running' without
    its command, `status` called it crashed and its start-over command lost the run's
    options. The claim now stays interrupted, with the command the run printed."""
    env = environment(tmp_path, prefect_home)
    db = tmp_path / "results.db"
    spec = REPO / "benchmarks/sweeps/demo-simulated.yaml"
    command = ("run", str(spec), "--limit", "1", "--time-scale", "0.001")
    resume = f"evalflow run {spec} --limit 1 --time-scale 0.001"
    run = evalflow(env, *command, entry=("-c", _TERMINATED_AS_THE_FLOW_CLAIMS))
    started.append(run)
    output, _ = run.communicate(timeout=START_S)
    assert run.returncode == 143, output
    assert output.strip().splitlines()[-1] == (
        f"interrupted: 'demo-simulated' stopped before anything was stored; "
        f"start it over with: {resume}"
    )
    sql = "SELECT status, reason, command FROM experiment_runs WHERE experiment = ?"
    assert query(db, sql, "demo-simulated") == [("interrupted", "interrupted by a signal", resume)]
    assert stored(db) == 0


def test_same_experiment_twice_at_once_runs_once_beside_another(tmp_path, started):
    """Three runs start together on a fresh database: two of one experiment, one of
    another. One of the pair refuses at once, naming the other; both experiments run."""
    env = environment(tmp_path)  # a fresh Prefect home too: three servers create it
    db = tmp_path / "results.db"
    with running_standin(StandInConfig(models=("llama3.2:3b",), slots=4, latency_ms=10.0)) as s:
        spec = write_spec(tmp_path / "spec.yaml", "twice", s.url)
        other = write_spec(tmp_path / "other.yaml", "other", s.url)
        runs = [evalflow(env, "run", str(p)) for p in (spec, spec, other)]
        started.extend(runs)
        outputs = [r.communicate(timeout=1500)[0] for r in runs]
        requests = s.stats.requests

    codes = [r.returncode for r in runs]
    assert sorted(codes[:2]) == [0, 75] and codes[2] == 0, outputs  # 75: try again later
    loser = codes.index(75)
    winner = runs[1 - loser]
    assert outputs[loser].strip() == outputs[loser].strip().splitlines()[0]  # one line
    assert outputs[loser].startswith(
        f"error: experiment 'twice' is already running: process {winner.pid} on "
    ), outputs[loser]
    assert all("UNIQUE constraint" not in out for out in outputs)
    assert requests == 2 * TOTAL  # nothing generated twice
    assert stored(db, "twice") == stored(db, "other") == TOTAL
    assert f"{TOTAL} generated" in outputs[1 - loser] and f"{TOTAL} generated" in outputs[2]


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )


def _disk_full(*args, **kwargs):
    raise RuntimeError("disk full while scoring")


@pytest.mark.usefixtures("prefect_harness")
def test_a_failed_run_is_failed_with_its_reason(tmp_path, monkeypatch, capsys):
    """A stage that raises leaves the experiment failed with the error; `experiments`
    and `show` say so (not a row of dashes), and a rerun resumes it. In this process:
    what is checked is what the commands print and store, not how a process ends (each
    command a process of its own, two with their own Prefect server, cost a minute)."""
    monkeypatch.setenv("EVALFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'results.db'}")
    monkeypatch.setenv("EVALFLOW_HOME", str(tmp_path / "evalflow"))
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "breaks",
                "suite": str(REPO / "benchmarks/suites/qa-short.jsonl"),
                "models": ["sim-small:1b"],
                "grid": {"temperature": [0.0]},
                "hosts": [{"name": "sim", "url": "simulated://local", "kind": "simulated"}],
            }
        )
    )

    def evalflow_here(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    # Options that change what the run does: `show`'s resume command keeps them as the
    # run's own does (it dropped them, printing a command built from the spec's path).
    options = ("--time-scale", "0.001", "--interrupt-wait", "2")
    with monkeypatch.context() as broken:  # the first scoring call raises
        broken.setattr("flows.evaluate.score", _disk_full)
        code, _, err = evalflow_here("run", str(spec), *options)
    assert code == 1, err
    assert err.strip().splitlines()[-1] == (
        "error: the run failed: RuntimeError: disk full while scoring; "
        f"resume with: evalflow run {spec} {' '.join(options)}"
    )

    _, listing, _ = evalflow_here("experiments")
    line = next(row for row in listing.splitlines() if row.startswith("breaks"))
    assert " failed " in line and line.endswith("RuntimeError: disk full while scoring")

    code, shown, _ = evalflow_here("show", "breaks")
    assert code == 0  # the experiment exists: nothing scored is no error
    assert shown.splitlines() == [
        "Status: failed: RuntimeError: disk full while scoring",
        "No results for 'breaks' yet: 36 generations stored, none scored (status failed); "
        f"resume with: evalflow run {spec} {' '.join(options)}",  # as the run said
    ]

    code, rerun, err = evalflow_here("run", str(spec), *options)
    assert code == 0, err
    assert "0 generated, 0 failed, 36 already done" in rerun
    code, shown, _ = evalflow_here("show", "breaks")
    assert code == 0 and "Status:" not in shown
    assert "completed" in evalflow_here("experiments")[1]


RACE_CASES = 60  # rounds of 20, 30, 45 and 60 cases


def race_reply(model: str, messages) -> str:
    """good:1b knows every code word, fair:1b misses every eighth, poor:1b none: poor is
    dropped in round 1, fair too close to good to drop, so the race runs every round."""
    item = int(re.search(r"item (\d+)", str(messages[-1]["content"])).group(1))
    right = model == "good:1b" or (model == "fair:1b" and item % 8 != 0)
    return f"word{item}" if right else "no idea"


def write_race(tmp_path: Path, url: str) -> Path:
    suite = tmp_path / "words.jsonl"
    suite.write_text(
        "".join(
            json.dumps({"id": f"w{i:02d}", "input": f"The code word of item {i}?",
                        "references": [f"word{i}"]}) + "\n"
            for i in range(RACE_CASES)
        )
    )  # fmt: skip
    (tmp_path / "words.suite.yaml").write_text(
        "name: words\nversion: '1'\ntask_type: qa\ndefault_metrics: [contains]\n"
    )
    spec = tmp_path / "race.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "race-kill",
                "suite": str(suite),
                "models": ["good:1b", "fair:1b", "poor:1b"],
                "grid": {"temperature": [0.0], "num_predict": [8]},
                "metrics": ["contains"],
                "hosts": [{"name": "a", "url": url, "slots": SLOTS}],
                "strategy": "race",
            }
        )
    )
    return spec


def race_rounds(db: Path) -> list[tuple]:
    return query(
        db, "SELECT round_index, n_cases, survivors, eliminated, spent, outcome, pick "
        "FROM race_rounds ORDER BY round_index"
    )  # fmt: skip


def generations(db: Path) -> dict[tuple, tuple]:
    rows = query(db, "SELECT config_hash, case_uid, sample_index, id, created_at FROM generations")
    return {row[:3]: row[3:] for row in rows}


@pytest.mark.usefixtures("prefect_harness")
def test_kill_9_mid_race_and_the_rerun_ends_with_the_uninterrupted_races_rounds(
    tmp_path, prefect_home, started
):
    """`kill -9` of `evalflow run` on a race after its first round is stored: no server
    left behind; the rerun replays the stored rounds, requests only what was not stored
    (the stored generations keep their ids) and ends with the rounds, survivors and
    eliminations of the same race run without a stop on a fresh database."""
    env = environment(tmp_path, prefect_home)
    db = tmp_path / "results.db"
    models = ("good:1b", "fair:1b", "poor:1b")
    config = StandInConfig(
        models=models, slots=SLOTS, latency_ms=LATENCY_MS, max_loaded_models=3, reply=race_reply
    )
    with running_standin(config) as s:
        spec = write_race(tmp_path, s.url)
        run = evalflow(env, "run", str(spec))
        started.append(run)

        def mid_round_two() -> bool:
            first = race_rounds(db)[:1]
            return bool(first) and len(generations(db)) > first[0][4]

        wait_for(mid_round_two, START_S, run)
        servers = children(run.pid)
        try:
            os.kill(run.pid, signal.SIGKILL)
            run.wait()
            deadline = time.monotonic() + 10
            while any(alive(p) for p in servers) and time.monotonic() < deadline:
                time.sleep(0.1)
            left = [p for p in servers if alive(p)]
        finally:
            kill_all(servers)
        at_kill = generations(db)
        requests_before = s.stats.requests
        rerun = evalflow(env, "run", str(spec))
        started.append(rerun)
        rerun_output, _ = rerun.communicate(timeout=1200)
        redone = s.stats.requests - requests_before

        reference_db = tmp_path / "reference.db"
        asyncio.run(evaluate(spec_path=str(spec), database=f"sqlite:///{reference_db}"))

    assert servers and left == [], f"still running after the command was killed: {left}"
    assert rerun.returncode == 0, rerun_output
    assert "Traceback" not in rerun_output
    reference = race_rounds(reference_db)
    assert len(reference) >= 2 and reference[-1][5] is not None  # rounds, an end
    assert race_rounds(db) == reference
    assert reference[0][4] < len(at_kill) < reference[-1][4]  # killed in round 2 or later
    after = generations(db)
    assert len(after) == reference[-1][4] == len(generations(reference_db))
    assert query(db, "SELECT count(*) FROM generations") == [(len(after),)]  # none twice
    assert {k: after[k] for k in at_kill} == at_kill  # same ids and times: none redone
    assert redone == len(after) - len(at_kill)  # requested only what was not stored
