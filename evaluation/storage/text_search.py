"""Substring search over generation outputs that does not read every output: on SQLite
an FTS5 table with the trigram tokenizer over ``generations.output`` (external content),
on PostgreSQL a pg_trgm GIN index on ``lower(output)``, which serves
``lower(output) LIKE '%...%'`` directly.

Both are created with the tables (``ensure_text_index``, from ``db.create_tables``) and
on a database made before them, where they are filled once from the rows already there.
Where neither can be had (SQLite without FTS5, PostgreSQL without the right to create
the extension) the search still works, by reading every output.

On SQLite the rows a run stores are not indexed as they are written: a trigger that
indexed each row on insert was a quarter of the record writer's CPU
(benchmarks/perf/results/issue46-tput-2026-11-29.md), and the same outputs indexed in
bulk cost about a tenth of what the trigger did.
The index covers the generations up to an id, kept in ``generations_text_upto``; a
run's generation phase, once it ends, indexes the rows stored after that id in bulk
(``index_new_outputs``, a page of rows a transaction, each page's id moved in the same
transaction: two runs on one file take turns and never index a row twice). A search
reads the index up to that id and tests each output after it (the rows of a run still
generating, or of one killed before its end): it finds every output, on a read-only
database or snapshot too, and writes nothing. A changed or deleted row that is indexed
is changed in or removed from the index by a trigger (the record writer replaces a
failed generation's row; deletions are the user's own). A database made by an evalflow
that indexed on insert (the three triggers, no ``generations_text_upto``) is indexed
through its last row: opened where it may be written, its insert trigger goes and the
id is set to its last row; read-only, it is searched as it is.
"""

from __future__ import annotations

from sqlalchemy import Table, column, func, select, table, text, union_all
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Selectable

FTS_TABLE = "generations_text"
UPTO_TABLE = f"{FTS_TABLE}_upto"  # one row: the index holds every generation up to ``upto``
TRIGRAM_INDEX = "ix_generations_output_trgm"
_MIN_CHARS = 3  # a trigram index finds substrings of at least three characters
INDEX_PAGE = 20_000
"""Rows indexed a transaction by ``index_new_outputs``: another run's writer waits for
one page at most (~0.15 s of CPU: ~8 µs a short output in bulk, where the trigger cost
~35-80 µs a row), not for a whole run's outputs."""

_INSERT_TRIGGER = f"{FTS_TABLE}_insert"  # an older evalflow's: every row indexed as stored
_TRIGGER_NAMES = (f"{FTS_TABLE}_delete", f"{FTS_TABLE}_update")
_INDEXED = f"old.id <= (SELECT upto FROM {UPTO_TABLE})"
_TRIGGERS = (
    # A deleted row leaves the index; the id then never passes the last row, so that
    # the next row stored (SQLite gives it the last row's id + 1) is not taken as indexed.
    f"""CREATE TRIGGER {FTS_TABLE}_delete AFTER DELETE ON generations WHEN {_INDEXED}
        BEGIN
        INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, output)
        VALUES ('delete', old.id, old.output);
        UPDATE {UPTO_TABLE} SET upto = (SELECT coalesce(max(id), 0) FROM generations)
        WHERE upto > (SELECT coalesce(max(id), 0) FROM generations); END""",
    f"""CREATE TRIGGER {FTS_TABLE}_update AFTER UPDATE OF output ON generations
        WHEN {_INDEXED}
        BEGIN
        INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, output)
        VALUES ('delete', old.id, old.output);
        INSERT INTO {FTS_TABLE}(rowid, output) VALUES (new.id, new.output); END""",
)


def ensure_text_index(engine: Engine) -> None:
    """Create the search index where it is missing, or bring an older one to this
    version's (see the module docstring)."""
    if engine.dialect.name == "sqlite":
        with engine.begin() as connection:
            _sqlite_index(connection)
    elif engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            _postgresql_index(connection)


def _present(connection: Connection) -> set[str]:
    return {
        str(r[0])
        for r in connection.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE name IN (?, ?, ?, ?, ?)",
            (FTS_TABLE, UPTO_TABLE, _INSERT_TRIGGER, *_TRIGGER_NAMES),
        )
    }


_CURRENT = frozenset({FTS_TABLE, UPTO_TABLE, *_TRIGGER_NAMES})
_OLDER = frozenset({FTS_TABLE, _INSERT_TRIGGER, *_TRIGGER_NAMES})  # every row indexed


def _sqlite_index(connection: Connection) -> None:
    present = _present(connection)
    if present == _CURRENT:  # the usual case: nothing to write
        return
    if FTS_TABLE not in present and not _trigrams(connection):
        return  # an SQLite built without FTS5 or its trigram tokenizer
    # one writer at a time decides and changes it (two runs opening an older file)
    connection.exec_driver_sql("BEGIN IMMEDIATE")
    present = _present(connection)
    if present == _CURRENT:
        return
    if FTS_TABLE not in present:
        connection.exec_driver_sql(f"CREATE VIRTUAL TABLE {FTS_TABLE} USING {_FTS}")
        _rebuild(connection)
    elif present != _OLDER:  # not an index kept whole by an older evalflow's triggers:
        _rebuild(connection)  # e.g. one that ran on this file after this version
    for name in (_INSERT_TRIGGER, *_TRIGGER_NAMES):
        connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
    connection.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {UPTO_TABLE} (upto INTEGER NOT NULL)")
    connection.exec_driver_sql(f"DELETE FROM {UPTO_TABLE}")
    connection.exec_driver_sql(
        f"INSERT INTO {UPTO_TABLE} (upto) SELECT coalesce(max(id), 0) FROM generations"
    )
    for trigger in _TRIGGERS:
        connection.exec_driver_sql(trigger)


_FTS = "fts5(output, content='generations', content_rowid='id', tokenize='trigram')"


def _trigrams(connection: Connection) -> bool:
    """Whether this SQLite has FTS5 and its trigram tokenizer: a table made and dropped
    in the connection's temporary schema (no lock on the database's file)."""
    try:
        connection.exec_driver_sql(f"CREATE VIRTUAL TABLE temp.{FTS_TABLE}_probe USING {_FTS}")
    except DBAPIError as exc:
        if "no such" in str(exc):  # "no such module: fts5", "no such tokenizer"
            return False
        raise
    connection.exec_driver_sql(f"DROP TABLE temp.{FTS_TABLE}_probe")
    return True


def _rebuild(connection: Connection) -> None:
    """Every stored output indexed, from the rows (FTS5 drops what it held first)."""
    connection.exec_driver_sql(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")


def index_new_outputs(engine: Engine, *, page: int = INDEX_PAGE) -> int:
    """Index the outputs stored after the index's last id (SQLite; see the module
    docstring), ``page`` rows a transaction, each moving the id in the same transaction
    (taken with the write lock first: a row is never indexed twice). Returns how many
    were indexed: 0 where there is no such index (PostgreSQL keeps its own) or nothing
    new."""
    if engine.dialect.name != "sqlite":
        return 0
    indexed = 0
    while True:
        with engine.begin() as connection:
            if not _present(connection) >= _CURRENT:
                return indexed
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            upto = _upto(connection)
            last = connection.exec_driver_sql(
                "SELECT max(id), count(*) FROM "
                "(SELECT id FROM generations WHERE id > ? ORDER BY id LIMIT ?)",
                (upto, page),
            ).one()
            if last[0] is None:
                return indexed
            connection.exec_driver_sql(
                f"INSERT INTO {FTS_TABLE}(rowid, output) "
                "SELECT id, output FROM generations WHERE id > ? AND id <= ?",
                (upto, last[0]),
            )
            connection.exec_driver_sql(f"UPDATE {UPTO_TABLE} SET upto = ?", (last[0],))
        indexed += int(last[1])
        if last[1] < page:
            return indexed


def _upto(connection: Connection) -> int:
    return int(connection.exec_driver_sql(f"SELECT upto FROM {UPTO_TABLE}").scalar_one())


_ALL = None  # the index holds every row (an older evalflow's, indexed as stored)


def _indexed_upto(connection: Connection) -> tuple[bool, int | None]:
    """Whether SQLite's index is there, and the last id it holds for certain (``_ALL``:
    every row). Where neither this version's id nor an older version's insert trigger
    is there, the index is not read."""
    present = _present(connection)
    if FTS_TABLE not in present:
        return False, _ALL
    if UPTO_TABLE in present:
        return True, _upto(connection)
    return _INSERT_TRIGGER in present, _ALL


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

_GENERATIONS = table("generations", column("id"), column("output"))


def _fts_match(needle: str):
    phrase = '"' + needle.replace('"', '""') + '"'
    return text(f"{FTS_TABLE} MATCH :phrase").bindparams(phrase=phrase)


def _sqlite_matches(connection: Connection, needle: str) -> Selectable | None:
    """The ids of the outputs containing ``needle``: the index's up to its last id, then
    each output after it tested (see the module docstring); None where the index
    cannot answer (no index, or ``needle`` shorter than a trigram)."""
    if len(needle) < _MIN_CHARS:
        return None
    there, upto = _indexed_upto(connection)
    if not there:
        return None
    fts = table(FTS_TABLE, column("rowid"))
    indexed = select(fts.c.rowid.label("id")).where(_fts_match(needle))
    if upto is _ALL:
        return indexed
    indexed = indexed.where(fts.c.rowid <= upto)
    g = _GENERATIONS
    last = connection.execute(select(func.max(g.c.id))).scalar()
    if last is None or last <= upto:  # nothing stored since it was indexed
        return indexed
    after = select(g.c.id).where(
        g.c.id > upto, func.lower(g.c.output).like(like_pattern(needle.lower()), escape="\\")
    )
    both = union_all(indexed, after).subquery()
    return select(both.c.id)


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
    if connection.dialect.name != "sqlite":
        return False
    matches = _sqlite_matches(connection, needle)
    if matches is None:
        return False
    first = matches.limit(NARROW).subquery()
    found = connection.execute(select(func.count()).select_from(first)).scalar_one()
    return int(found) < NARROW


def output_matches(connection: Connection, generations: Table, needle: str) -> Selectable:
    """The ids of the generations whose output contains ``needle`` (case-insensitive),
    from the index (see :func:`narrow_output_match`, which said it can answer)."""
    if connection.dialect.name == "sqlite":
        matches = _sqlite_matches(connection, needle)
        assert matches is not None  # narrow_output_match said the index answers
        return matches
    pattern = like_pattern(needle.lower())
    return select(generations.c.id).where(
        func.lower(generations.c.output).like(pattern, escape="\\")
    )


def like_pattern(needle: str) -> str:
    """``%needle%`` with LIKE's wildcards in ``needle`` taken literally (escape ``\\``)."""
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
