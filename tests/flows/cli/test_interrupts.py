"""Ctrl-C on a command says what became of its work and what a rerun does, and says
"resume" only where a rerun keeps what was done: each line is checked against what the
command really leaves behind when interrupted part way."""

from __future__ import annotations

import argparse
import signal

import pytest
from sqlalchemy import func, select, update
from sqlmodel import Session

from evaluation.itembank.schema import ItemBank
from evaluation.settings import database_url
from evaluation.storage.db import make_engine
from evaluation.storage.models import Generation, Score
from flows.cli import main
from flows.cli.app import NOTHING_TO_RESUME, ON_INTERRUPT, build_parser
from tests.support.itembank_db import build
from tests.support.review_db import build_review_db


def _verbs() -> set[str]:
    parser = build_parser([])
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def test_every_command_that_stores_work_says_what_ctrl_c_left():
    """A new verb must choose: nothing to resume ("<verb> stopped") or its own line."""
    verbs = _verbs()
    assert verbs == NOTHING_TO_RESUME | set(ON_INTERRUPT)
    assert not NOTHING_TO_RESUME & set(ON_INTERRUPT)
    resumes = {verb for verb, line in ON_INTERRUPT.items() if "resume" in line}
    assert resumes == {"run", "judge"}  # the two whose rerun keeps what was done


@pytest.mark.parametrize(
    ("argv", "module", "name", "said"),
    [
        (["series"], "flows.cli.trends", "cmd_series", "series stopped"),  # it only lists
        (["rescore", "x"], "flows.cli.rescore", "cmd_rescore", ON_INTERRUPT["rescore"]),
        (["retrain"], "flows.cli.selection", "cmd_retrain", ON_INTERRUPT["retrain"]),
    ],
)
def test_each_command_says_its_own_line(monkeypatch, capsys, argv, module, name, said):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(f"{module}.{name}", interrupted)
    make_engine(database_url(None))  # a home with a database: a fresh one is refused first
    assert main(argv) == 130
    assert capsys.readouterr().err.strip() == said


def test_rescore_interrupted_part_way_changes_no_score(tmp_path, monkeypatch):
    """Its line says the scores are stored together: interrupted after the first config's
    were computed and written, none of them is kept."""
    import tasks.results

    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", n_cases=4)
    with Session(db.engine) as session:
        session.exec(update(Score).values(value=-1.0))  # what a kept rescore would change
        session.commit()
    writes = []
    replace = tasks.results.replace_scores

    def replace_then_interrupt(*args, **kwargs):
        replace(*args, **kwargs)
        writes.append(1)
        if len(writes) == 2:  # the second config's scores
            raise KeyboardInterrupt

    monkeypatch.setattr(tasks.results, "replace_scores", replace_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        tasks.results.score.fn(db.engine, db.experiment_id, db.suite, ("exact_match",))
    with Session(db.engine) as session:
        values = (
            session.exec(
                select(Score.value)
                .join(Generation, Generation.id == Score.generation_id)
                .where(Generation.experiment_id == db.experiment_id, Score.metric == "exact_match")
            )
            .scalars()
            .all()
        )
    assert values and set(values) == {-1.0}


def test_bank_interrupted_part_way_stores_no_version_and_a_rerun_calibrates(
    tmp_path, monkeypatch, capsys
):
    import evaluation.itembank._bank as bank_module

    url = f"sqlite:///{tmp_path / 'r.db'}"
    build(url)
    real = bank_module.BankAbility

    def interrupted(**kwargs):  # after the bank's row and its cases were added
        raise KeyboardInterrupt

    monkeypatch.setattr(bank_module, "BankAbility", interrupted)
    assert main(["--database", url, "bank", "toy"]) == 130
    assert capsys.readouterr().err.strip() == ON_INTERRUPT["bank"]
    monkeypatch.setattr(bank_module, "BankAbility", real)

    def versions() -> int:
        from evaluation.storage.db import make_engine

        with Session(make_engine(url)) as session:
            return session.exec(select(func.count()).select_from(ItemBank)).scalar()

    assert versions() == 0
    assert main(["--database", url, "bank", "toy"]) == 0
    assert versions() == 1


@pytest.mark.parametrize(
    ("argv", "signum", "code", "said"),
    [
        (
            ["judge", "toy-review", "--url", "http://127.0.0.1:9", "--model", "j"],
            2,
            130,
            ON_INTERRUPT["judge"],
        ),
        (
            ["judge", "toy-review", "--url", "http://127.0.0.1:9", "--model", "j"],
            15,
            143,
            ON_INTERRUPT["judge"],
        ),
        (
            ["judge", "toy-review", "--url", "http://127.0.0.1:9", "--model", "j"],
            1,  # SIGHUP: the terminal closed as it started
            129,
            ON_INTERRUPT["judge"],
        ),
        (["bank", "toy-review"], 2, 130, ON_INTERRUPT["bank"]),
        (["monitor", "--port", "9"], 2, 130, "monitor stopped"),
    ],
)
def test_a_signal_while_the_cli_imports_is_taken_by_the_command(tmp_path, argv, signum, code, said):
    """`judge` in its first moments (Python importing the CLI) ended with 143 and not a
    word on SIGTERM, with a KeyboardInterrupt traceback on Ctrl-C, as `run` did; so did
    Ctrl-C on any other verb. Now the signal is held until the command takes it: its
    interrupt line, 128 + the signal, no traceback, nothing asked of the judge's host."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO
    from tests.support.processes import SIGNALLED_WHILE_IMPORTING, sigint_at_start

    url = f"sqlite:///{tmp_path / 'r.db'}"
    build_review_db(url, n_cases=2, temperatures=(0.0, 0.7))
    env = os.environ | {"EVALFLOW_HOME": str(tmp_path / "home")}
    command = [sys.executable, "-c", SIGNALLED_WHILE_IMPORTING, str(signum), "--database", url]
    with sigint_at_start(signal.default_int_handler):  # as a terminal's shell starts it
        done = subprocess.run(
            [*command, *argv],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert done.returncode == code, done.stderr
    assert done.stderr.strip().splitlines()[-1] == said
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("argv", "code", "said"),
    [
        (["judge", "toy-review", "--url", "http://127.0.0.1:9", "--model", "j"], 130, None),
        (["rescore", "nope"], 130, None),
        (["retrain"], 130, None),
        (["show", "nope"], 2, "error: "),  # it stores nothing: SIGINT stays ignored
    ],
)
def test_a_command_that_stores_work_takes_a_sigint_it_started_ignoring(tmp_path, argv, code, said):
    """A script's background job starts with SIGINT ignored (POSIX): `run` takes it
    (``_signals.ignored_sigint_taken``), but `judge`, `rescore` and `retrain` kept it
    ignored, so a `kill -INT` of one went unheard (each went on, here to its refusal:
    exit 2, 2 and 1). Now every command that
    stores work takes it, also one held while the CLI imported: its interrupt line, 130.
    A command that stores nothing keeps it ignored, as most Unix tools do."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO
    from tests.support.processes import SIGNALLED_WHILE_IMPORTING, sigint_at_start

    url = f"sqlite:///{tmp_path / 'r.db'}"
    build_review_db(url, n_cases=2, temperatures=(0.0, 0.7))
    env = os.environ | {"EVALFLOW_HOME": str(tmp_path / "home")}
    command = [sys.executable, "-c", SIGNALLED_WHILE_IMPORTING, "2", "--database", url]
    with sigint_at_start(signal.SIG_IGN):  # as a script starts a background job
        done = subprocess.run(
            [*command, *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
        )
    assert done.returncode == code, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(said) if said else last == ON_INTERRUPT[argv[0]]
    assert "Traceback" not in done.stderr


def test_run_hung_up_in_the_middle_of_an_import_says_its_line(tmp_path):
    """SIGHUP while `run` imported its machinery (flows.run_control) cut a module in
    half: its line then imported it again, whose tables were made already ('Table
    'series_runs' is already defined'), a traceback and exit 1. The stop signals are
    held while it imports: its line, 129."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO
    from tests.support.processes import HUNG_UP_MID_IMPORT

    spec = REPO / "benchmarks" / "sweeps" / "demo-simulated.yaml"
    url = f"sqlite:///{tmp_path / 'r.db'}"
    env = os.environ | {"EVALFLOW_HOME": str(tmp_path / "home")}
    command = [sys.executable, "-c", HUNG_UP_MID_IMPORT, "--database", url, "run", str(spec)]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 129, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "interrupted: 'demo-simulated' stopped before anything was stored; start it over with: "
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_stops_rescore_as_ctrl_c_does(
    tmp_path, monkeypatch, capfd, prefect_harness, signum
):
    """Newcomer F7's neighbour: `rescore` runs a flow too, and SIGTERM crashed it with
    Prefect's ERROR lines and no word of its own; now its Ctrl-C line, exit 143. SIGHUP
    (its terminal closed) ended it at once; now the same way out, exit 129."""
    import os

    url = f"sqlite:///{tmp_path / 'r.db'}"
    db = build_review_db(url, n_cases=4)

    def signalled(*args, **kwargs):
        os.kill(os.getpid(), signum)  # its handler runs before the next line
        raise AssertionError("the signal did not stop the rescore")

    def not_taken(*args):  # here of old: a signal the command left to the process
        raise AssertionError("rescore did not take the signal")

    monkeypatch.setattr("flows.rescore.suite_path", signalled)  # in the flow, before scoring
    before = signal.signal(signum, not_taken)
    try:
        assert main(["--database", url, "rescore", db.experiment, "-q"]) == 128 + signum
    finally:
        signal.signal(signum, before)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Crash" not in err, err
    assert err.strip().splitlines()[-1] == ON_INTERRUPT["rescore"], err


def test_a_served_page_keeps_a_sigint_it_started_ignoring(tmp_path):
    """Newcomers' S7: a command that only serves keeps an ignored SIGINT ignored (a
    script's background job), as docs/hosts-that-fail.md says, but uvicorn took it: a
    `kill -INT` of a background `view` stopped it with exit 0 and no line. Now it stays
    ignored while serving (the process's ignore mask says so, and the page answers
    after one); SIGTERM stops it."""
    import contextlib
    import os
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    import httpx

    from tests.conftest import REPO
    from tests.support.processes import sigint_at_start

    url = f"sqlite:///{tmp_path / 'r.db'}"
    build_review_db(url, n_cases=2)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    env = os.environ | {"EVALFLOW_HOME": str(tmp_path / "home")}
    argv = ["--database", url, "view", "toy-review", "--port", str(port)]
    with sigint_at_start(signal.SIG_IGN):  # as a script starts a background job
        view = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", *argv],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        page = view.stdout.readline().split("open ", 1)[1].split()[0]  # said before serving
        with httpx.Client(timeout=30, follow_redirects=True) as client:
            answered = None  # serving (its signal handlers set) once it answers
            while answered is None and view.poll() is None:
                with contextlib.suppress(httpx.TransportError):
                    answered = client.get(page).status_code
                time.sleep(0.05)
            status = Path(f"/proc/{view.pid}/status").read_text().splitlines()
            ignored = int(next(x for x in status if x.startswith("SigIgn:")).split()[1], 16)
            assert ignored & (1 << (signal.SIGINT - 1))  # uvicorn caught it
            view.send_signal(signal.SIGINT)
            assert client.get(page).status_code == 200 == answered
        assert view.poll() is None
        view.send_signal(signal.SIGTERM)
        view.wait(timeout=60)
    finally:
        if view.poll() is None:
            view.kill()
            view.wait()
    assert view.returncode == -signal.SIGTERM
