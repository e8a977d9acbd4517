"""A fresh Prefect home's SQLite database, created from a snapshot of its schema.

Prefect's server creates a new database by running every alembic migration in turn:
9–22 s on these 2-core machines, paid by the first run on every new Prefect home (a new
machine, a CI job, a test). The result is always the same empty schema, so
``prefect_schema.sql`` holds it as SQL (tables, indexes, the alembic revision), written by
Prefect's own migrations (``python -m flows.prefect_schema`` rewrites it) and loaded in
~30 ms. The server still runs its migrations on start: at the snapshot's revision they
have nothing to do, and a Prefect newer than the snapshot upgrades it from there, as it
would any older database. The snapshot is used only for the Prefect version that wrote
it and only where no database exists yet; ``tests/flows/test_prefect_schema.py`` checks
that it equals what that version's migrations create.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import sys
import tempfile
from pathlib import Path

SNAPSHOT = Path(__file__).with_name("prefect_schema.sql")
_HEADER = "-- Prefect {version}: its migrations' schema (python -m flows.prefect_schema)\n"


def snapshot_version(snapshot: Path = SNAPSHOT) -> str | None:
    """The Prefect version whose migrations wrote ``snapshot`` (None: not a snapshot)."""
    try:
        with snapshot.open(encoding="utf-8") as text:
            first = text.readline()
    except FileNotFoundError:
        return None
    prefix, _, rest = _HEADER.partition("{version}")
    if not (first.startswith(prefix) and first.endswith(rest)):
        return None
    return first[len(prefix) : len(first) - len(rest)]


def sqlite_database_path(connection_url: str) -> Path | None:
    """The file of a SQLite connection URL; None for other databases and in-memory ones."""
    from sqlalchemy.engine import make_url

    url = make_url(connection_url)
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def seed_fresh_database(prefect_version: str, connection_url: str) -> bool:
    """Create the server's SQLite database from the snapshot when none exists yet and the
    snapshot was written by ``prefect_version``. Returns whether it did. Callers hold the
    start-up lock; the file appears complete or not at all (written aside, then renamed)."""
    path = sqlite_database_path(connection_url)
    if path is None or path.exists() or not path.parent.is_dir():
        return False  # a missing folder is Prefect's to report, as it would without this
    if snapshot_version() != prefect_version:
        return False
    handle, aside = tempfile.mkstemp(prefix=".prefect-", suffix=".db", dir=path.parent)
    os.close(handle)
    try:
        with sqlite3.connect(aside) as connection:
            connection.executescript(SNAPSHOT.read_text(encoding="utf-8"))
        connection.close()
        os.replace(aside, path)
    finally:
        Path(aside).unlink(missing_ok=True)
    return True


def is_current(prefect_version: str, connection_url: str) -> bool:
    """Whether the server's SQLite database is at the snapshot's revision and the snapshot
    is ``prefect_version``'s: then its migrations on start have nothing to do."""
    path = sqlite_database_path(connection_url)
    if path is None or not path.exists() or snapshot_version() != prefect_version:
        return False
    snapshot = re.search(r"INSERT INTO \"alembic_version\" VALUES\('(\w+)'\)", SNAPSHOT.read_text())
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        stored = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.Error:
        return False
    finally:
        connection.close()
    return snapshot is not None and stored == [(snapshot.group(1),)]


def dump_schema(database: Path) -> str:
    """The SQL that recreates ``database`` (schema and rows), in a stable order."""
    connection = sqlite3.connect(database)
    try:
        return "\n".join(connection.iterdump()) + "\n"
    finally:
        connection.close()


def schema_facts(database: Path) -> dict[str, object]:
    """What a database's schema means, independent of how its SQL text is ordered
    (Prefect's migrations rebuild tables with their constraints in varying order):
    per table its columns, foreign keys, indexes and CHECK/UNIQUE text, and every row
    of the tables that have rows (the alembic revision)."""
    connection = sqlite3.connect(database)
    try:
        facts: dict[str, object] = {}
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        for table in tables:
            quoted = table.replace('"', '""')
            facts[table] = {
                "columns": connection.execute(f'PRAGMA table_info("{quoted}")').fetchall(),
                "foreign keys": sorted(
                    row[2:] for row in connection.execute(f'PRAGMA foreign_key_list("{quoted}")')
                ),
                # (name of a CREATE INDEX; SQLite numbers its own by constraint order)
                "indexes": sorted(
                    (
                        name if origin == "c" else "",
                        unique,
                        origin,
                        [
                            column
                            for *_, column in connection.execute(f'PRAGMA index_info("{name}")')
                        ],
                    )
                    for _, name, unique, origin, _ in connection.execute(
                        f'PRAGMA index_list("{quoted}")'
                    )
                ),
                "rows": sorted(connection.execute(f'SELECT * FROM "{quoted}"').fetchall()),
            }
        facts["index sql"] = sorted(
            connection.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            ).fetchall()
        )
        facts["constraint lines"] = sorted(
            line.strip().rstrip(",")
            for (sql,) in connection.execute("SELECT sql FROM sqlite_master WHERE type = 'table'")
            for line in sql.splitlines()
        )
        return facts
    finally:
        connection.close()


def migrated_schema(folder: Path) -> str:
    """Run Prefect's own migrations on a new SQLite database in ``folder``; its dump.
    Must run before this process imports Prefect (its settings are read once)."""
    database = folder / "prefect.db"
    os.environ["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{database}"
    from prefect.server.database import provide_database_interface

    asyncio.run(provide_database_interface().create_db())
    return dump_schema(database)


def main(argv: list[str]) -> int:
    """Rewrite the snapshot from the installed Prefect's migrations; with ``--check``,
    exit 1 if the snapshot means something else than what they create."""
    with tempfile.TemporaryDirectory() as folder:
        schema = migrated_schema(Path(folder))
        if "--check" not in argv:
            SNAPSHOT.write_text(_HEADER.format(version=_version()) + schema, encoding="utf-8")
            print(f"wrote {SNAPSHOT} (Prefect {_version()})")
            return 0
        seeded = Path(folder) / "seeded.db"
        with sqlite3.connect(seeded) as connection:
            connection.executescript(SNAPSHOT.read_text(encoding="utf-8"))
        connection.close()
        same = schema_facts(seeded) == schema_facts(Path(folder) / "prefect.db")
    if not same or snapshot_version() != _version():
        print(f"{SNAPSHOT} differs from what Prefect {_version()}'s migrations create")
        return 1
    return 0


def _version() -> str:
    import prefect

    return prefect.__version__


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
