"""Two sweeps on one SQLite file (newcomers' F5): the second one's end gave up with
"database is locked", exit 2, its experiment `failed`, while the first one scored: its
whole scoring was one write transaction, holding SQLite's one write lock for minutes.

Now a run's end computes holding no write lock (every config's scores computed, then
written together in one short transaction, all or none: test_interrupts.py; each view
page; the run's end, then its summary), another process's write is waited for, and a
lock that outlasts the wait is `DatabaseBusy`: exit 75 naming the process that holds
it, the run `interrupted` (a rerun resumes it), never `failed`. The other process is a
real one holding a real write transaction until the test lets it go: no sleeps, no
timing."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

import evaluation.monitor._summary as summary_module
import evaluation.run._scoring as scoring
import evaluation.view.stored as stored
import tasks.results as results
import tasks.sweep as sweep
from evaluation.errors import DatabaseBusy, TryLater
from evaluation.storage import db as db_module
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.models import Experiment, ExperimentRun
from flows import run_control
from flows.cli import main
from flows.cli.app import EXIT_TRY_LATER, error_line
from tests.conftest import REPO
from tests.support.review_db import METRICS, build_review_db

HOLD = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
connection.execute("UPDATE experiments SET name = name")
print("held", flush=True)
sys.stdin.readline()
connection.execute("COMMIT")
"""


@contextlib.contextmanager
def held(path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding ``path``'s write lock until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.communicate("go\n", timeout=60)


def write_lock_free(path: Path) -> bool:
    """Whether another connection could write ``path`` now, without waiting: it does (and
    commits), so what the run writes after must take a newer database than it read."""
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE experiments SET name = name")
        other.execute("COMMIT")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


@pytest.fixture
def scored(tmp_path, monkeypatch):
    path = tmp_path / "results.db"
    db = build_review_db(f"sqlite:///{path}")
    monkeypatch.setattr(results, "get_run_logger", lambda: logging.getLogger("test"))
    return path, db


def test_a_runs_end_computes_holding_no_write_lock(scored, monkeypatch):
    """Scoring each config, computing each view page, counting the run's summary: another
    process may write meanwhile (the scoring held the lock from its first config's write
    to its last config's: F5), and the run's writes after it still land."""
    path, db = scored
    free: dict[str, list[bool]] = {"score": [], "pages": [], "summary": []}

    def watched(stage, real):
        def call(*args, **kwargs):
            free[stage].append(write_lock_free(path))
            return real(*args, **kwargs)

        return call

    detailed = scoring.score_generations_detailed
    monkeypatch.setattr(scoring, "score_generations_detailed", watched("score", detailed))
    for page in ("summary_page", "flips_page", "estimates_page"):
        monkeypatch.setattr(stored, page, watched("pages", getattr(stored, page)))
    monkeypatch.setattr(summary_module, "summarize", watched("summary", summary_module.summarize))

    assert results.score.fn(db.engine, db.experiment_id, db.suite, METRICS) == 24
    with session_scope(db.engine) as session:
        stored.store_pages(session, db.experiment, ending="completed")
    run_control.claim(db.engine, db.experiment, wait=False)
    sweep.finish.fn(db.engine, db.experiment_id, "completed")

    assert free == {"score": [True] * 3, "pages": [True] * 3, "summary": [True]}


def test_a_runs_end_waits_for_another_processs_write_and_ends(scored):
    path, db = scored
    run_control.claim(db.engine, db.experiment, wait=False)
    writing = threading.Event()
    db.engine.dispose()  # connections made from here on are traced

    @event.listens_for(db.engine, "connect")
    def traced(dbapi_connection, _record):
        def seen(statement: str) -> None:
            if statement.lstrip().upper().startswith("UPDATE EXPERIMENT_RUNS"):
                writing.set()

        dbapi_connection.set_trace_callback(seen)

    ended: list[BaseException | None] = []

    def end() -> None:
        try:
            sweep.finish.fn(db.engine, db.experiment_id, "completed")
            ended.append(None)
        except BaseException as exc:  # handed to the test's thread
            ended.append(exc)

    with held(path):
        thread = threading.Thread(target=end)
        thread.start()
        assert writing.wait(60), ended  # its end's first write waits on the holder
        assert not ended
    thread.join(60)

    assert ended == [None]
    with session_scope(db.engine) as session:
        assert session.get(ExperimentRun, db.experiment).status == "completed"
        assert session.get(Experiment, db.experiment_id).status == "completed"


def test_a_lock_past_the_wait_is_try_later_naming_its_holder(scored, monkeypatch):
    path, _ = scored
    monkeypatch.setattr(db_module, "BUSY_TIMEOUT_S", 0.05)  # the holder holds until let go
    engine = make_engine(f"sqlite:///{path}", create=False)
    with (
        held(path) as holder,
        pytest.raises(DatabaseBusy) as raised,
        session_scope(engine) as session,
    ):
        session.add(Experiment(name="another", suite="s", task_type="qa"))
    engine.dispose()

    assert isinstance(raised.value, TryLater)
    message = str(raised.value)
    assert f"stayed locked by process {holder.pid} (" in message, message
    assert "(-c import sqlite3, sys connection = " in message, message  # its command, one line
    code, line = error_line(raised.value)
    assert code == EXIT_TRY_LATER == 75
    assert line.startswith(f"the results database {path} stayed locked by process"), line
    assert "run the same command again" in line


def test_a_locked_sqlalchemy_error_reaching_the_edge_exits_75(scored):
    path, db = scored
    with held(path), pytest.raises(OperationalError) as raised, db.engine.connect() as raw:
        raw.exec_driver_sql("PRAGMA busy_timeout=0")
        raw.exec_driver_sql("UPDATE experiments SET name = name")
    code, line = error_line(raised.value)
    assert code == EXIT_TRY_LATER, line
    assert "database is locked" in line and "run the same command again" in line


def test_a_run_ended_by_a_lasting_lock_is_interrupted_not_failed(scored):
    path, db = scored
    process, _ = run_control.claim(db.engine, db.experiment, wait=False)
    busy = DatabaseBusy(f"the results database {path} stayed locked by process 1 for 30 s")
    reason = run_control.record_failure(f"sqlite:///{path}", db.experiment, process, busy)

    assert reason.startswith(f"the results database {path} stayed locked"), reason
    with session_scope(db.engine) as session:
        assert session.get(ExperimentRun, db.experiment).status == "interrupted"


@pytest.mark.usefixtures("prefect_harness")
def test_a_run_whose_store_stays_locked_exits_75_interrupted_with_its_resume_line(
    tmp_path, monkeypatch, capsys
):
    """`evalflow run` whose scores' write gave up on the lock (SQLITE_BUSY past the wait):
    exit 75, the run interrupted, not failed, and its line says how to resume (it was exit
    2, `failed`: F5)."""
    spec = REPO / "benchmarks/sweeps/demo-simulated.yaml"
    url = f"sqlite:///{tmp_path / 'r.db'}"

    def gave_up(*args, **kwargs):
        locked = sqlite3.OperationalError("database is locked")
        locked.sqlite_errorcode = 5  # SQLITE_BUSY, as SQLite sets it past busy_timeout
        raise OperationalError("DELETE FROM scores", {}, locked)

    monkeypatch.setattr(results, "replace_scores", gave_up)
    code = main(["--database", url, "run", str(spec), "--limit", "2", "-q"])

    err = capsys.readouterr().err
    assert code == EXIT_TRY_LATER, err
    assert f"the results database {tmp_path / 'r.db'} stayed locked by another process" in err
    assert f"resume with: evalflow --database {url} run {spec} --limit 2 -q" in err, err
    engine = make_engine(url, create=False)
    with session_scope(engine) as session:
        assert session.get(ExperimentRun, "demo-simulated").status == "interrupted"
        assert session.get(Experiment, 1).status == "interrupted"
    engine.dispose()
