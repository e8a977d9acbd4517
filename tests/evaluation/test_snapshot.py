"""A SQLite database in WAL mode in a folder that may not be written (storage.snapshot):
a reader gets it as an immutable snapshot, a writer is refused up front, and a -wal file
holding changes the snapshot would leave out is refused to both. ``os.access`` stands in
for the permissions root does not have (the ``read_only`` fixture, tests/conftest.py;
tests/selection/test_read_only_share.py runs the commands in a real read-only folder)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import text
from sqlmodel import Session

from evaluation.errors import StorageError
from evaluation.storage.db import make_engine
from evaluation.storage.repository import database_searched
from evaluation.storage.snapshot import opening, snapshot_note
from tests.support.databases import as_the_first_version_made_it


def _database(folder: Path, *, wal: bool = True) -> Path:
    """evalflow's database (an older one's tables) with one row of its own, closed (a WAL
    one's -wal and -shm gone with it)."""
    folder.mkdir()
    path = folder / "evalflow.db"
    with sqlite3.connect(path) as connection:
        connection.execute(f"PRAGMA journal_mode={'WAL' if wal else 'DELETE'}")
        as_the_first_version_made_it(connection)
        connection.execute("CREATE TABLE notes (text TEXT)")
        connection.execute("INSERT INTO notes VALUES ('kept')")
    connection.close()
    assert sorted(p.name for p in folder.iterdir()) == ["evalflow.db"]
    return path


def test_a_reader_gets_a_snapshot_that_says_so(tmp_path, read_only):
    path = _database(tmp_path / "shared #1 100%")  # characters a URI filename escapes
    read_only(path.parent)
    for url in (f"sqlite:///{path}", f"sqlite:///file:{quote(str(path))}?mode=ro&uri=true"):
        engine = make_engine(url, create=False, reads_only=True)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT text FROM notes")).scalar_one() == "kept"
        assert snapshot_note(engine).startswith(
            f"read the results database {path} as a snapshot: its folder is read-only"
        )
        engine.dispose()
    assert sorted(p.name for p in path.parent.iterdir()) == ["evalflow.db"]


def test_a_writer_is_refused_up_front_in_one_line(tmp_path, read_only):
    path = _database(tmp_path / "shared")
    read_only(path.parent)
    with pytest.raises(StorageError) as refused:
        make_engine(f"sqlite:///{path}", create=False)
    said = str(refused.value)
    assert said.startswith(f"cannot open the results database {path}: its folder is read-only")
    assert "evalflow.db-wal and evalflow.db-shm" in said and "\n" not in said


def test_changes_not_yet_in_the_file_are_never_left_out(tmp_path, read_only):
    """A -wal file with frames (a writer that died, a copy taken while one wrote) without
    its -shm: an immutable read would not see them, so even a reader is refused."""
    path = _database(tmp_path / "shared")
    (path.parent / "evalflow.db-wal").write_bytes(b"\x37\x7f\x06\x82" + bytes(28))
    read_only(path.parent)
    with pytest.raises(StorageError, match=r"evalflow\.db-wal beside it holds changes"):
        opening(f"sqlite:///{path}", reads_only=True)


def test_what_sqlite_opens_itself_is_left_as_it_is(tmp_path, read_only):
    """A writable folder; a database in rollback-journal mode (read without new files);
    a WAL database with both its -wal and -shm (SQLite reads them); an immutable URI."""
    writable = _database(tmp_path / "writable")
    journal = _database(tmp_path / "journal", wal=False)
    both = _database(tmp_path / "both")
    for suffix in ("-wal", "-shm"):
        (both.parent / f"evalflow.db{suffix}").touch()
    asked = _database(tmp_path / "asked")
    for path in (journal, both, asked):
        read_only(path.parent)
    urls = [f"sqlite:///{p}" for p in (writable, journal, both)]
    urls.append(f"sqlite:///file:{asked}?immutable=1&uri=true")
    for url in urls:
        assert opening(url, reads_only=True) == (url, {})


def test_a_snapshot_is_named_by_the_url_the_user_gave(tmp_path, read_only):
    """Recheck R3: "the database searched: sqlite:///file:…?immutable=1&mode=ro&uri=true",
    the URL that reads the snapshot, not the one the user named."""
    path = _database(tmp_path / "shared")
    read_only(path.parent)
    for url in (f"sqlite:///{path}", f"sqlite:///file:{path}?mode=ro&uri=true"):
        engine = make_engine(url, create=False, reads_only=True)
        assert snapshot_note(engine)
        with Session(engine) as session:
            assert database_searched(session) == f"; the database searched: {url}"
        engine.dispose()


def test_a_snapshot_finds_run_notes_and_is_checked_under_its_own_path(tmp_path, read_only):
    """Recheck: the snapshot's URL (``file:…?immutable=1&mode=ro&uri=true``) was what the
    health check named, and what the run-notes lookup looked beside (a note beside no
    file: a run that ended on a full disk read "crashed" on a teammate's copy)."""
    from socket import gethostname

    from fastapi.testclient import TestClient
    from sqlmodel import select

    from evaluation.observability import observability_app
    from evaluation.storage import run_notes
    from evaluation.storage.db import EVALUATION_TABLES
    from evaluation.storage.models import Experiment, ExperimentRun
    from evaluation.storage.runs import experiment_status

    folder = tmp_path / "shared"
    folder.mkdir()
    url = f"sqlite:///{folder / 'evalflow.db'}"
    engine = make_engine(url, tables=EVALUATION_TABLES)
    with Session(engine) as session:
        session.add(Experiment(name="full", suite="s", task_type="qa", status="running"))
        gone = ExperimentRun(experiment="full", token="t1", pid=2**22 + 1, hostname=gethostname())
        session.add(gone)  # a run of this host whose process is gone
        session.commit()
    engine.dispose()  # the -wal folded in and gone: a closed copy
    run_notes.reserve(url, "full")
    assert run_notes.write(url, "full", "t1", "failed", "database or disk is full")
    read_only(folder)
    snapshot = make_engine(url, create=False, reads_only=True)
    assert snapshot_note(snapshot)
    with Session(snapshot) as session:
        experiment = session.exec(select(Experiment).where(Experiment.name == "full")).one()
        state = experiment_status(session, experiment)
    assert (state.status, state.reason) == ("failed", "database or disk is full")
    ready = TestClient(observability_app(snapshot)).get("/health/ready").json()
    (check,) = ready["checks"]
    assert check["detail"] == f"{url}: reachable (sqlite)", check
    snapshot.dispose()


def test_a_rollback_journal_database_reads_through_a_read_only_url(tmp_path):
    """A results database in rollback-journal mode (a copy made with the sqlite3 shell's
    .backup, an older tool) named with ``mode=ro``, as a read-only command opens it:
    every connection switched to WAL first, which a read-only connection may not, so
    `evalflow show` failed with "attempt to write a readonly database ... drop mode=ro
    from the URL to write to it" (last stops' R3)."""
    path = tmp_path / "evalflow.db"
    make_engine(f"sqlite:///{path}").dispose()  # this version's tables, then closed
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=DELETE")
        connection.execute("CREATE TABLE notes (text TEXT)")
        connection.execute("INSERT INTO notes VALUES ('kept')")
    connection.close()
    engine = make_engine(f"sqlite:///file:{quote(str(path))}?mode=ro&uri=true", reads_only=True)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT text FROM notes")).scalar_one() == "kept"
    engine.dispose()
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    connection.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evalflow.db"]
