"""A SQLite database in WAL mode (evalflow's) whose folder may not be written: a teammate's
copy on a read-only share, mount or folder. SQLite (3.22 and later) opens such a database
only where its -wal and -shm files exist or can be made beside it, or as immutable
(https://www.sqlite.org/wal.html, "Read-Only Databases"); else every statement fails with
"unable to open database file" (a read-only mount) or "attempt to write a readonly
database" (a folder without write permission), even read-only ones.

A command that only reads gets such a file as an immutable snapshot, which it says in a
note (what is written to the file meanwhile is not seen); a command that writes is refused
before it starts, saying why. Where a -wal file with changes not yet in the database is
there without its -shm, an immutable read would leave them out: both are refused."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.engine import URL, Connection, Engine, make_url

from evaluation.errors import StorageError
from evaluation.settings import sqlite_file

SNAPSHOT_OPTION = "evalflow_snapshot_of"
"""The execution option that marks an engine reading a snapshot: the file's path."""
ASKED_OPTION = "evalflow_snapshot_asked"
"""A snapshot's execution option: the URL the user named, which messages show (recheck
R3: "the database searched: sqlite:///file:…?immutable=1&mode=ro&uri=true")."""

_WAL_VERSIONS = b"\x02\x02"  # header bytes 18-19, the file format's read and write versions


def opening(url: str, *, reads_only: bool) -> tuple[str | URL, dict[str, str]]:
    """What an engine opens for ``url`` and its execution options: ``url`` and none, or,
    where SQLite cannot open it as it is (a file in WAL mode in a folder that may not be
    written, without its -wal and -shm files) and the caller ``reads_only``, the URL
    that reads it as an immutable snapshot and the option that marks one. StorageError
    where it may not be read so: a writer, or a -wal file holding changes not yet in the
    database."""
    path = sqlite_file(url, uri_filename=True)
    if path is None or not path.is_file() or not _out_of_reach(path):
        return url, {}
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise StorageError(
            f"cannot open the results database {path}: its folder is read-only and {wal.name} "
            f"beside it holds changes not yet in the database, which SQLite cannot read there "
            f"without {path.name}-shm; open it once where its folder may be written (any "
            "evalflow command there folds them in), then copy it"
        )
    if not reads_only:
        raise StorageError(
            f"cannot open the results database {path}: its folder is read-only, and SQLite "
            f"writes a database in WAL mode (evalflow's) only with {path.name}-wal and "
            f"{path.name}-shm beside it; this command stores results: copy the database to a "
            "folder you may write and point --database (or EVALFLOW_HOME) at it (commands "
            "that only read, such as show, read it where it is)"
        )
    parsed = make_url(url)
    query = {**parsed.query, "mode": "ro", "immutable": "1", "uri": "true"}
    snapshot = parsed.set(database=f"file:{quote(str(path))}", query=query)
    return snapshot, {SNAPSHOT_OPTION: str(path), ASKED_OPTION: url}


def asked_url(bind: Engine | Connection) -> str | URL:
    """The URL of ``bind``'s database as the user named it: a snapshot's (``opening``),
    not the URI filename that reads it; else the one it opened."""
    return bind.get_execution_options().get(ASKED_OPTION) or bind.engine.url


def read_only_here(bind: Engine | Connection) -> str:
    """Why a command that stores cannot write the SQLite database ``bind`` reads, as
    advice says it: "PATH is read-only here: its folder is read-only" (read as a
    snapshot), "…: the file is read-only", "…: its URL opens it read-only (mode=ro)"; ""
    where none holds (or another database: a server says for itself)."""
    options = bind.get_execution_options()
    if snapshot := options.get(SNAPSHOT_OPTION):
        return f"{snapshot} is read-only here: its folder is read-only"
    asked = asked_url(bind)
    text = asked if isinstance(asked, str) else asked.render_as_string(hide_password=False)
    path = sqlite_file(text, uri_filename=True)
    if path is None:
        why = ""
    elif make_url(text).query.get("mode") == "ro":
        why = "its URL opens it read-only (mode=ro)"
    elif path.is_file() and not os.access(path, os.W_OK):
        why = "the file is read-only"
    else:
        why = ""
    return f"{path} is read-only here: {why}" if why else ""


def where_writable(bind: Engine | Connection) -> str:
    """Where `evalflow baseline accept` must run, said after advice to run it, when
    ``bind``'s database takes no write here (``read_only_here``: it is refused there):
    "where the results database may be written (it stores the choice; PATH is read-only
    here: its folder is read-only)"; "" otherwise."""
    if not (why := read_only_here(bind)):
        return ""
    return f"where the results database may be written (it stores the choice; {why})"


def snapshot_note(engine: Engine) -> str:
    """What a command reading ``engine`` says where it reads a snapshot; "" otherwise."""
    path = engine.get_execution_options().get(SNAPSHOT_OPTION)
    if path is None:
        return ""
    return (
        f"read the results database {path} as a snapshot: its folder is read-only, where "
        "SQLite cannot make the -wal and -shm files it reads a WAL database with; what is "
        "written to it meanwhile is not seen"
    )


def _out_of_reach(path: Path) -> bool:
    """Whether SQLite cannot open the database at ``path`` as it is: in WAL mode, in a
    folder that may not be written, without both its -wal and -shm files (with both, it
    reads them as they are)."""
    if os.access(path.parent, os.W_OK):
        return False
    try:
        with path.open("rb") as file:
            header = file.read(20)
    except OSError:  # SQLite says what is wrong with it
        return False
    if header[18:20] != _WAL_VERSIONS:
        return False
    beside = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]
    return not all(p.exists() for p in beside)
