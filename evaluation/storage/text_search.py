"""Substring search over generation outputs that does not read every output: on SQLite
an FTS5 table with the trigram tokenizer over ``generations.output`` (external content,
kept in step by triggers on insert, update and delete), on PostgreSQL a pg_trgm GIN
index on ``lower(output)``, which serves ``lower(output) LIKE '%...%'`` directly.

Both are created with the tables (``ensure_text_index``, from ``db.create_tables``) and
on a database made before them, where they are filled once from the rows already there.
Where neither can be had (SQLite without FTS5, PostgreSQL without the right to create
the extension) the search still works, by reading every output.
"""

from __future__ import annotations

from sqlalchemy import Table, column, func, select, table, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Selectable

FTS_TABLE = "generations_text"
TRIGRAM_INDEX = "ix_generations_output_trgm"
_MIN_CHARS = 3  # a trigram index finds substrings of at least three characters

_SQLITE_TRIGGER_NAMES = (f"{FTS_TABLE}_insert", f"{FTS_TABLE}_delete", f"{FTS_TABLE}_update")
_SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_insert AFTER INSERT ON generations BEGIN
        INSERT INTO {FTS_TABLE}(rowid, output) VALUES (new.id, new.output); END""",
    f"""CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_delete AFTER DELETE ON generations BEGIN
        INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, output)
        VALUES ('delete', old.id, old.output); END""",
    f"""CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_update AFTER UPDATE OF output ON generations
        BEGIN
        INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, output)
        VALUES ('delete', old.id, old.output);
        INSERT INTO {FTS_TABLE}(rowid, output) VALUES (new.id, new.output); END""",
)


def ensure_text_index(engine: Engine) -> None:
    """Create the search index where it is missing (see the module docstring)."""
    if engine.dialect.name == "sqlite":
        with engine.begin() as connection:
            _sqlite_index(connection)
    elif engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            _postgresql_index(connection)


def _sqlite_index(connection: Connection) -> None:
    present = {
        str(r[0])
        for r in connection.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE name LIKE ?", (f"{FTS_TABLE}%",)
        )
    }
    if {FTS_TABLE, *_SQLITE_TRIGGER_NAMES} <= present:  # the usual case: nothing to write
        return
    if FTS_TABLE not in present:
        try:
            connection.exec_driver_sql(
                f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5(output, "
                "content='generations', content_rowid='id', tokenize='trigram')"
            )
        except DBAPIError as exc:  # an SQLite built without FTS5 or its trigram tokenizer
            if "no such" in str(exc):  # "no such module: fts5", "no such tokenizer"
                return
            raise  # "database is locked": create_tables tries again
        connection.exec_driver_sql(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")
    for trigger in _SQLITE_TRIGGERS:
        connection.exec_driver_sql(trigger)


def _postgresql_index(connection: Connection) -> None:
    present = connection.exec_driver_sql(
        "SELECT 1 FROM pg_indexes WHERE indexname = %s", (TRIGRAM_INDEX,)
    ).first()
    if present is not None:
        return
    savepoint = connection.begin_nested()
    try:
        connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        connection.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS {TRIGRAM_INDEX} ON generations "
            "USING gin (lower(output) gin_trgm_ops)"
        )
    except DBAPIError:  # no right to create the extension: search reads every output
        savepoint.rollback()
    else:
        savepoint.commit()


#: Past this many outputs containing the text, walking the list in order and testing
#: each output finds a page sooner than listing every match from the index.
NARROW = 20_000


def _indexed(connection: Connection, needle: str) -> bool:
    return (
        connection.dialect.name == "sqlite"
        and len(needle) >= _MIN_CHARS
        and connection.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE name = ?", (FTS_TABLE,)
        ).first()
        is not None
    )


def _fts_match(needle: str):
    phrase = '"' + needle.replace('"', '""') + '"'
    return text(f"{FTS_TABLE} MATCH :phrase").bindparams(phrase=phrase)


def narrow_output_match(connection: Connection, needle: str) -> bool:
    """Whether fewer than :data:`NARROW` outputs contain ``needle``, as the index tells:
    then :func:`output_matches` (the index) is the fast way, else a condition on each
    output while the list is walked in order. SQLite's index counts them, stopping at
    :data:`NARROW`; PostgreSQL's planner estimates them (from its statistics of the
    outputs)."""
    if connection.dialect.name == "postgresql":
        if len(needle) < _MIN_CHARS:
            return False
        pattern = like_pattern(needle.lower())
        plan = connection.exec_driver_sql(
            "EXPLAIN (FORMAT JSON) SELECT id FROM generations "
            "WHERE lower(output) LIKE %(p)s ESCAPE '\\'",
            {"p": pattern},
        ).scalar_one()
        return float(plan[0]["Plan"]["Plan Rows"]) < NARROW
    if not _indexed(connection, needle):
        return False
    fts = table(FTS_TABLE, column("rowid"))
    first = select(fts.c.rowid).where(_fts_match(needle)).limit(NARROW).subquery()
    found = connection.execute(select(func.count()).select_from(first)).scalar_one()
    return int(found) < NARROW


def output_matches(connection: Connection, generations: Table, needle: str) -> Selectable:
    """The ids of the generations whose output contains ``needle`` (case-insensitive),
    from the index (see :func:`narrow_output_match`)."""
    if connection.dialect.name == "sqlite":
        fts = table(FTS_TABLE, column("rowid"))
        return select(fts.c.rowid.label("id")).where(_fts_match(needle))
    pattern = like_pattern(needle.lower())
    return select(generations.c.id).where(
        func.lower(generations.c.output).like(pattern, escape="\\")
    )


def like_pattern(needle: str) -> str:
    """``%needle%`` with LIKE's wildcards in ``needle`` taken literally (escape ``\\``)."""
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
