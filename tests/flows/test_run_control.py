"""`evalflow run --wait`: a run that finds its experiment taken waits for the holder; an
interrupted run gives its host slots back, then marks its flow run cancelled."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time

import pytest

from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.models import ExperimentRun
from evaluation.storage.runs import ExperimentBusy, RunProcess, claim_experiment, end_run
from flows import run_control
from flows.run_control import claim
from tests.support.processes import SIGNALLED_WHILE_IMPORTING, carrying, sigint_at_start


def test_wait_takes_the_experiment_once_its_holder_ends(database_url, capsys):
    engine = make_engine(database_url)
    holder = RunProcess(1, "", "another-host")  # elsewhere: believed alive until it ends
    with session_scope(engine) as session:
        claim_experiment(session, "sweep", holder, flow_run_id="f-1")
    with pytest.raises(ExperimentBusy):
        claim(engine, "sweep", wait=False)

    def end_later() -> None:
        time.sleep(1.5)
        with session_scope(engine) as session:
            end_run(session, "sweep", "completed", holder)

    ender = threading.Thread(target=end_later)
    ender.start()
    started = time.monotonic()
    assert claim(engine, "sweep", wait=True) == (RunProcess.current(), None)  # ended, not dead
    ender.join()
    assert time.monotonic() - started >= 1.5
    out = capsys.readouterr().out
    assert out.startswith("waiting: experiment 'sweep' is already running: process 1 on ")
    assert "flow run f-1" in out


def test_a_run_of_an_experiment_running_elsewhere_is_refused_for_now(database_url):
    """A second `run` of an experiment another process runs exited 2, bad input, though
    nothing in its input is wrong and the same command works once the other ends: now
    75 (try again later), and its line says when and how to wait instead."""
    from flows.cli.app import error_line

    engine = make_engine(database_url)
    with session_scope(engine) as session:
        claim_experiment(session, "sweep", RunProcess(1, "", "another-host"))
    with pytest.raises(ExperimentBusy) as busy:
        claim(engine, "sweep", wait=False)
    code, line = error_line(busy.value)
    assert code == 75
    assert line.startswith("experiment 'sweep' is already running: process 1 on another-host")
    assert line.endswith(
        "; run the same command again once it has ended, or with --wait to wait for it"
    )


def test_an_interrupt_gives_the_slots_back_before_it_cancels_the_flow_run(monkeypatch):
    """Both wrote to the embedded server's SQLite side by side, within one second: a
    collision's 503 was tried again later, the give-back ran out of time and the rerun
    gave back slots "held by dead run(s)" (tests/flows/test_run_lifecycle.py, now and
    then). Now one write follows the other, and the give-back ends before the exit."""
    events: list[str] = []

    def give_back() -> None:
        events.append("give-back starts")
        time.sleep(0.2)
        events.append("give-back ends")

    def exit_(code: int) -> None:
        events.append(f"exit {code}")
        raise SystemExit(code)

    for name in ("stop_sending", "wait_for_cases_in_flight", "flush_all"):
        monkeypatch.setattr(run_control, name, lambda *a, **k: None)
    monkeypatch.setattr(run_control, "cases_in_flight", lambda: 0)
    monkeypatch.setattr(run_control, "_mark_interrupted", lambda *a: ("flow-run-1", True))
    monkeypatch.setattr(run_control, "_give_back_slots", give_back)
    monkeypatch.setattr(run_control, "_cancel_flow_run", lambda i: events.append(f"cancel {i}"))
    monkeypatch.setattr(run_control.os, "_exit", exit_)
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(SystemExit):
            run_control._stop(
                "db", "demo", None, "evalflow run x", None, write_end, 0, threading.Event(), 2
            )
        assert os.read(read_end, 4096).decode().endswith("resume with: evalflow run x\n")
    finally:
        os.close(read_end)
        os.close(write_end)
    assert events == ["give-back starts", "give-back ends", "cancel flow-run-1", "exit 130"]


def test_an_interrupt_ends_the_record_writer_process_before_the_exit(tmp_path, monkeypatch):
    """With ``--workers`` the records are stored by a process of the run's; it was left to
    see its pipe close after the exit, and one still importing ran a second after the
    run had printed its last line. Now it is ended (after the last flush) before."""
    from evaluation.run._writer_process import WriterProcess

    at_exit: list[bool] = []

    def exit_(code: int) -> None:
        at_exit.append(writer._process.is_alive())
        raise SystemExit(code)

    for name in ("stop_sending", "wait_for_cases_in_flight", "flush_all", "_give_back_slots"):
        monkeypatch.setattr(run_control, name, lambda *a, **k: None)
    monkeypatch.setattr(run_control, "cases_in_flight", lambda: 0)
    monkeypatch.setattr(run_control, "_mark_interrupted", lambda *a: (None, True))
    monkeypatch.setattr(run_control.os, "_exit", exit_)
    writer = WriterProcess(f"sqlite:///{tmp_path / 'r.db'}", 1)
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(SystemExit):
            run_control._stop(
                "db", "demo", None, "evalflow run x", None, write_end, 0, threading.Event(), 15
            )
    finally:
        os.close(read_end)
        os.close(write_end)
        writer.close()
    assert at_exit == [False]


@pytest.mark.parametrize("in_flight_s", [0.0, 5.0])
def test_steps_that_take_all_they_are_given_still_exit_by_the_deadline(monkeypatch, in_flight_s):
    """Each step of the exit was bounded on its own: together, after the wait for the
    requests in flight, up to 7.6 s (and 1.5 s before it), past EXIT_DEADLINE_S. Now
    each leaves the steps after it theirs: on a clock of the test's, with every step
    taking all it is given, the exit comes EXIT_DEADLINE_S after the signal (the wait
    aside), and the flush of what the lanes finished still gets FLUSH_MIN_S."""
    from types import SimpleNamespace

    clock = [100.0]
    bounds: list[float] = []
    flushed: list[float] = []
    exits: list[float] = []

    def bounded(work, deadline: float):
        bounds.append(deadline)
        clock[0] = max(clock[0], deadline)  # it ran until it was given up on
        return ("flow-run-1", False) if len(bounds) == 1 else None  # marked: none stored

    def advance(seconds: float) -> None:
        clock[0] += seconds

    def exit_(code: int) -> None:
        exits.append(clock[0])
        raise SystemExit(code)

    monkeypatch.setattr(run_control, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    monkeypatch.setattr(run_control, "stop_sending", lambda: None)
    monkeypatch.setattr(run_control, "cases_in_flight", lambda: 1)
    monkeypatch.setattr(run_control, "wait_for_cases_in_flight", lambda s, h: advance(in_flight_s))
    monkeypatch.setattr(run_control, "_bounded", bounded)
    monkeypatch.setattr(
        run_control, "flush_all", lambda timeout_s: (flushed.append(timeout_s), advance(timeout_s))
    )
    monkeypatch.setattr(run_control.os, "_exit", exit_)
    server = SimpleNamespace(stop=lambda timeout_s: advance(timeout_s))
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(SystemExit):
            run_control._stop(
                "db", "demo", None, "evalflow run x", server, write_end, in_flight_s,
                threading.Event(), 15,
            )  # fmt: skip
    finally:
        os.close(read_end)
        os.close(write_end)
    assert len(bounds) == 6  # marked, workers, slots, flow run, writer, the recheck
    assert exits[0] <= 100.0 + run_control.EXIT_DEADLINE_S + in_flight_s + 1e-9
    assert flushed and flushed[0] >= run_control.FLUSH_MIN_S


@pytest.mark.parametrize(
    ("signum", "code", "again"),
    [
        (2, 130, "(Ctrl-C again to exit now)"),
        (15, 143, "(a second SIGTERM or Ctrl-C exits now)"),
    ],
)
def test_sigterm_exits_143_and_does_not_speak_of_ctrl_c(monkeypatch, signum, code, again):
    """A supervisor tells SIGTERM from SIGINT by the exit code (128 + the signal, as a
    shell reports it); a newcomer's SIGTERM exited 130 saying "Ctrl-C again". (Ctrl-C is
    offered even where it started ignored: `run` takes it, app.main.)"""
    exits: list[int] = []

    def exit_(code: int) -> None:
        exits.append(code)
        raise SystemExit(code)

    for name in ("stop_sending", "wait_for_cases_in_flight", "flush_all", "_give_back_slots"):
        monkeypatch.setattr(run_control, name, lambda *a, **k: None)
    monkeypatch.setattr(run_control, "cases_in_flight", lambda: 1)
    monkeypatch.setattr(run_control, "_mark_interrupted", lambda *a: None)
    monkeypatch.setattr(run_control.os, "_exit", exit_)
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(SystemExit):
            run_control._stop(
                "db", "demo", None, "evalflow run x", None, write_end, 5, threading.Event(), signum
            )
        said = os.read(read_end, 4096).decode()
    finally:
        os.close(read_end)
        os.close(write_end)
    assert exits == [code]
    assert f"1 request(s) in flight to finish and be stored {again}\n" in said


@pytest.mark.parametrize(("in_flight", "left"), [(2, 1), (2, 0), (0, 0)])
def test_requests_left_unanswered_at_the_exit_are_said_to_keep_their_server_busy(
    monkeypatch, in_flight, left
):
    """The newcomer's N7: the waiting line suggested the requests stop with the run; a
    llama-cpp-python server went on with them and a judge started next was kept waiting."""
    for name in ("stop_sending", "flush_all", "_give_back_slots"):
        monkeypatch.setattr(run_control, name, lambda *a, **k: None)
    monkeypatch.setattr(run_control, "cases_in_flight", lambda: in_flight)
    monkeypatch.setattr(run_control, "wait_for_cases_in_flight", lambda *a: left)
    monkeypatch.setattr(run_control, "_mark_interrupted", lambda *a: None)
    monkeypatch.setattr(run_control.os, "_exit", lambda code: sys.exit(code))
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(SystemExit):
            run_control._stop(
                "db", "demo", None, "evalflow run x", None, write_end, 5, threading.Event(), 15
            )
        said = os.read(read_end, 4096).decode()
    finally:
        os.close(read_end)
        os.close(write_end)
    unanswered = [line for line in said.splitlines() if "left unanswered" in line]
    assert unanswered == (
        [
            f"interrupted: {left} request(s) left unanswered (the rerun asks them again); the "
            "model server may go on computing them (llama-cpp-python's does): wait for it, "
            "or restart it, before the next run or judge"
        ]
        if left
        else []
    )


def test_the_interrupt_lines_fit_the_width_known_before_the_signal(monkeypatch):
    """The newcomer's F2: at 80 columns `interrupted: waiting up to 5 s for the 1
    request(s) in flight ... (a second SIGTERM exits now)` was 114 wide. The lines go
    through the CLI's fit (the width read before stdout went to /dev/null): the waiting
    line wraps at spaces, the resume command keeps whole on lines of its own."""
    from functools import partial

    from flows.cli._width import fitted_command

    for name in ("stop_sending", "wait_for_cases_in_flight", "flush_all", "_give_back_slots"):
        monkeypatch.setattr(run_control, name, lambda *a, **k: None)
    monkeypatch.setattr(run_control, "cases_in_flight", lambda: 1)
    monkeypatch.setattr(run_control, "_mark_interrupted", lambda *a: None)
    monkeypatch.setattr(run_control.os, "_exit", lambda code: sys.exit(code))
    resume = "evalflow run /home/someone/specs/a-long-sweep-name.yaml --experiment nc-real-2"
    fit = partial(fitted_command, command=resume, width=80)
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(SystemExit):
            run_control._stop(
                "db", "nc", None, resume, None, write_end, 5, threading.Event(), 15, fit=fit
            )
        said = os.read(read_end, 4096).decode()
    finally:
        os.close(read_end)
        os.close(write_end)
    lines = said.splitlines()
    assert max(map(len, lines)) <= 80 and len(lines) == 5, said
    assert " ".join(lines[:2]).replace("  ", " ").endswith("(a second SIGTERM or Ctrl-C exits now)")
    pasted = [line.removesuffix(" \\").strip() for line in lines[3:]]
    assert " ".join(pasted) == resume


# `evalflow run` signalled while Prefect starts, before the flow has created the
# experiment, every time: the server is not launched (no Prefect start-up to wait for),
# and the signal is sent from the step named by argv[1]: the check whether a server is
# needed (it imports Prefect's settings, seconds under load), or the wait for the server.
# $SIGNALS: the signals sent there, one after the other (SIGTERM where not given).
_TERMINATED_WHILE_PREFECT_STARTS = """
import os, signal, sys, time
from flows.embedded_server import EmbeddedServer
from flows import run_control
from flows.cli import main

def terminated(*args, **kwargs):
    for signum in os.environ.get("SIGNALS", "15").split(","):
        os.kill(os.getpid(), int(signum))  # one after the other, as a user sends them
    time.sleep(60)  # the interrupt's thread exits the process

where = sys.argv[1]
run_control.embedded_server_needed = terminated if where == "settings" else (lambda: True)
if where == "hosts":  # before the claim
    import evaluation.run._preflight

    evaluation.run._preflight.check_before_run = terminated
EmbeddedServer.launch = lambda self: None
EmbeddedServer.start = lambda self: setattr(self, "started", True)
EmbeddedServer.wait_ready = terminated
sys.exit(main(sys.argv[2:]))
"""


def demo_run(
    tmp_path, script: str, *args: str, sigint=signal.default_int_handler, signals: str = "15"
):
    """``script`` run with ``args``, then `--database DB run <the demo> --limit 1`, started
    with SIGINT's action ``sigint`` (as at a terminal, or as a script's background job);
    ``signals``: $SIGNALS. The finished process, and the line that says to start it over.
    No process of the run outlives it: a SIGTERM before the run had pointed Prefect at
    its server left a server of Prefect's own running, its parent gone (those found are
    killed, then the test fails)."""
    import subprocess
    import sys

    from tests.conftest import REPO

    spec = REPO / "benchmarks/sweeps/demo-simulated.yaml"
    database = f"sqlite:///{tmp_path / 'results.db'}"
    home = str(tmp_path / "prefect")  # the run's own: what it leaves behind carries it
    env = os.environ | {
        "EVALFLOW_HOME": str(tmp_path / "home"),
        "PREFECT_HOME": home,
        "SIGNALS": signals,
    }
    argv = ["--database", database, "run", str(spec), "--limit", "1"]
    with sigint_at_start(sigint):
        run = subprocess.run(
            [sys.executable, "-c", script, *args, *argv],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    left = carrying("PREFECT_HOME", home)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not left, f"processes of the run outlived it: {left}"
    return run, f"start it over with: evalflow --database {database} run {spec} --limit 1"


@pytest.mark.parametrize("where", ["hosts", "settings", "wait"])
def test_sigterm_before_anything_is_stored_says_so_not_resume(tmp_path, capsys, where):
    """A newcomer's SIGTERM during "starting Prefect" printed `resume with: ...`, and
    `evalflow show` then knew no such experiment; one in the seconds Prefect's settings
    import ended the command without a word (and left its claim "running"), and one
    before the claim (checking the hosts) still did. Now the line says nothing was
    stored and that the same command starts it over; the exit code is SIGTERM's still."""
    from flows.cli import main

    run, start_over = demo_run(tmp_path, _TERMINATED_WHILE_PREFECT_STARTS, where)
    assert run.returncode == 143, run.stderr
    assert run.stderr.splitlines()[-1] == (
        f"interrupted: 'demo-simulated' stopped before anything was stored; {start_over}"
    )
    assert "resume with" not in run.stderr and "Traceback" not in run.stderr
    database = f"sqlite:///{tmp_path / 'results.db'}"
    assert main(["--database", database, "show", "demo-simulated"]) == 2
    if where == "hosts":  # nothing written, not even the database
        assert not (tmp_path / "results.db").exists()
        return
    assert "no experiment named 'demo-simulated'" in capsys.readouterr().err
    with session_scope(make_engine(database)) as session:
        assert session.get(ExperimentRun, "demo-simulated").status == "interrupted"


def test_an_interrupt_holding_no_slot_makes_no_prefect_client(monkeypatch):
    """The interrupt gives the run's host slots back through a Prefect client; one made
    before the run had pointed Prefect at its server (a SIGTERM while Prefect's settings
    import) made Prefect start a temporary server of its own, which the exit left running
    (an orphan uvicorn after the test above, CI). Holding no slot, it makes no client."""
    import tasks.adapters.prefect_client as clients
    from tasks.adapters import slots_at_exit

    made: list[dict] = []
    monkeypatch.setattr(clients, "prefect_client", lambda **options: made.append(options))
    monkeypatch.setattr(slots_at_exit, "_OPEN_RECORDS", {})
    assert slots_at_exit.give_back_on_exit() == 0
    assert made == []


@pytest.mark.parametrize("where", ["hosts", "wait"])
def test_a_sigint_stops_a_run_that_started_with_it_ignored(tmp_path, where):
    """A background `run` of a script starts with SIGINT ignored (POSIX), and it kept it
    ignored: a newcomer's `kill -INT` of such a run was silently ignored for 45 s, where
    the docs promise that Ctrl-C stops a run within seconds. Now `run` installs its own
    SIGINT handling, so SIGINT stops it as Ctrl-C at a terminal does, before the claim
    (checking the hosts) or after it (waiting for Prefect): a SIGINT then a SIGTERM exit
    130 with the SIGINT's line (the SIGTERM's 143 before)."""
    run, start_over = demo_run(
        tmp_path, _TERMINATED_WHILE_PREFECT_STARTS, where, sigint=signal.SIG_IGN, signals="2,15"
    )
    assert run.returncode == 130, run.stderr
    assert run.stderr.splitlines()[-1] == (
        f"interrupted: 'demo-simulated' stopped before anything was stored; {start_over}"
    )
    assert "Traceback" not in run.stderr


# `evalflow run` off a terminal while its Prefect server starts: the beat of
# flows.cli._steps writes its line at once, then the wait for the server (that line
# written) ends the run by SIGTERM; no timing involved.
_A_SLOW_PREFECT_START = """
import os, signal, sys, threading, time
from flows.embedded_server import EmbeddedServer
from flows import run_control
from flows.cli import _steps, main

beaten = threading.Event()

def beat(self, step, stop, every_s):
    self(f"{step}, still")
    beaten.set()

def wait_ready(self, *args, **kwargs):
    assert beaten.wait(60)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(60)  # the interrupt's thread exits the process

_steps.Steps.beat = beat
run_control.embedded_server_needed = lambda: True
EmbeddedServer.launch = lambda self: None
EmbeddedServer.start = lambda self: setattr(self, "started", True)
EmbeddedServer.wait_ready = wait_ready
sys.exit(main(sys.argv[1:]))
"""


def test_a_log_shows_the_prefect_start_going_on(tmp_path):
    """A newcomer's first run sat on `starting Prefect…` for 44 s in a log with no sign
    of progress (a terminal's display counts the seconds; a log had nothing): off a
    terminal a line every 10 s says it still starts, with the seconds since it began."""
    run, _ = demo_run(tmp_path, _A_SLOW_PREFECT_START)
    lines = run.stderr.splitlines()
    assert lines[0].endswith("; starting Prefect…"), run.stderr
    assert lines[1].startswith("demo-simulated: starting Prefect, still · "), run.stderr


@pytest.mark.parametrize("signum", [2, 15, 1])
def test_a_signal_while_run_imports_says_to_start_it_over(tmp_path, signum):
    """A SIGTERM in `run`'s first moments (Python importing the CLI) ended it with 143
    and not a word, a Ctrl-C with a KeyboardInterrupt traceback, a SIGHUP (its terminal
    closed) with 129 and not a word. Now each is held until `run` takes it, then says
    the line an interrupt before the claim says: nothing stored, the command that
    starts it over; nothing written."""
    run, start_over = demo_run(tmp_path, SIGNALLED_WHILE_IMPORTING, str(signum))
    assert run.returncode == 128 + signum, run.stderr
    assert run.stderr.splitlines()[-1] == (
        f"interrupted: stopped before anything was stored; {start_over}"
    )
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "results.db").exists()


def _said_by_stop(database_url: str, monkeypatch, signum: int = 15, **stubbed) -> str:
    """What the interrupt's thread says of experiment "demo", its steps around the
    database stubbed (``stubbed``: more of run_control's names), its exit a SystemExit."""

    def exit_(code: int) -> None:
        raise SystemExit(code)

    for name in ("stop_sending", "wait_for_cases_in_flight", "_give_back_slots"):
        monkeypatch.setattr(run_control, name, lambda *a, **k: None)
    monkeypatch.setattr(run_control, "cases_in_flight", lambda: 0)
    for name, value in stubbed.items():
        monkeypatch.setattr(run_control, name, value)
    monkeypatch.setattr(run_control.os, "_exit", exit_)
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(SystemExit):
            run_control._stop(
                database_url, "demo", RunProcess.current(), "evalflow run x", None, write_end,
                0, threading.Event(), signum,
            )  # fmt: skip
        return os.read(read_end, 4096).decode()
    finally:
        os.close(read_end)
        os.close(write_end)


@pytest.mark.parametrize(
    ("flush_stores", "last"),
    [
        (False, "stopped before anything was stored; start it over with: evalflow run x\n"),
        (True, "stopped; resume with: evalflow run x\n"),
    ],
)
def test_nothing_stored_is_said_after_the_flush(database_url, monkeypatch, flush_stores, last):
    """Nothing was stored when the signal came; what the last flush stores (answers that
    arrived just before it) is there for the same command to resume."""
    from tests.support.results_db import add_experiment, make_config, make_suite

    engine = make_engine(database_url)
    with session_scope(engine) as session:
        claim_experiment(session, "demo", RunProcess.current())

    def flush_all(timeout_s: float) -> None:
        if flush_stores:
            with session_scope(engine) as session:
                add_experiment(
                    session, "demo", make_suite(1), {make_config(): {"exact_match": [1.0]}}
                )

    said = _said_by_stop(database_url, monkeypatch, flush_all=flush_all)
    assert said == f"interrupted: 'demo' {last}"
    with session_scope(engine) as session:
        assert session.get(ExperimentRun, "demo").status == "interrupted"


def test_an_interruption_whose_mark_is_not_known_reads_what_was_stored_again(
    database_url, monkeypatch
):
    """Newcomers' M8: the interruption's mark not back within MARK_S (a loaded machine)
    was taken to mean "something stored": a run stopped while Prefect started said
    `resume with: ...` and `status` then knew no such experiment. Read again after the
    flush, as when the mark says nothing was stored."""
    engine = make_engine(database_url)
    with session_scope(engine) as session:
        claim_experiment(session, "demo", RunProcess.current())

    def mark_not_back(*args):
        raise TimeoutError  # _bounded's None, as when it passes its deadline

    stubbed = {"flush_all": lambda *a, **k: None, "_mark_interrupted": mark_not_back}
    said = _said_by_stop(database_url, monkeypatch, signum=2, **stubbed)
    assert said == (
        "interrupted: 'demo' stopped before anything was stored; start it over with: "
        "evalflow run x\n"
    )


@pytest.mark.parametrize("earlier", [False, True])
def test_ctrl_c_before_the_claim_says_what_the_same_command_does(
    database_url, monkeypatch, capsys, earlier
):
    """Ctrl-C while the hosts were checked printed "interrupted: rerun the same command to
    resume", with no command, where nothing was stored. Now: the line a later interrupt
    prints, "start it over" or, where earlier runs of the experiment stored some, "resume"."""
    import evaluation.run._preflight
    from flows.cli import main
    from tests.conftest import REPO
    from tests.support.results_db import add_experiment, make_config, make_suite

    if earlier:  # stored by an earlier run of the same spec on the same suite
        with session_scope(make_engine(database_url)) as session:
            suite = make_suite(1, name="qa-short")
            made = add_experiment(session, "demo", suite, {make_config(): {"exact_match": [1.0]}})
            made.spec = {"name": "demo-simulated"}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_control, "_embedded_server_likely", lambda: False)
    monkeypatch.setattr(evaluation.run._preflight, "check_before_run", interrupted)
    spec = REPO / "benchmarks/sweeps/demo-simulated.yaml"
    argv = ["--database", database_url, "run", str(spec), "--experiment", "demo"]
    assert main(argv) == 130
    command = f"evalflow --database {database_url} run {spec} --experiment demo"
    said = (
        "stopped; resume with"
        if earlier
        else "stopped before anything was stored; start it over with"
    )
    assert capsys.readouterr().err.splitlines()[-1] == f"interrupted: 'demo' {said}: {command}"
