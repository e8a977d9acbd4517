"""Engines and sessions. No global engine: callers make one from a URL and pass it on."""

from __future__ import annotations

import itertools
import random
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import URL, Column, TextClause, event, inspect, make_url, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)
from sqlalchemy.pool import StaticPool
from sqlalchemy.schema import CreateIndex
from sqlalchemy.sql.expression import Executable
from sqlmodel import Session, SQLModel, create_engine

from evaluation.errors import DatabaseBusy, StorageError
from evaluation.itembank import schema as itembank_schema
from evaluation.redact import one_line, redact_url
from evaluation.review import schema as review_schema
from evaluation.series import schema as series_schema
from evaluation.settings import (
    SHARE_DATABASE_ENV,
    database_url,
    make_home_for,
    share_database,
    sqlite_file,
)
from evaluation.storage import models as results_schema
from evaluation.storage.executemany import insert_many
from evaluation.storage.impossible_rates import forget_impossible_rates
from evaluation.storage.lock_holder import holder_words
from evaluation.storage.snapshot import SNAPSHOT_OPTION, asked_url, opening
from evaluation.storage.text_search import ensure_text_index
from evaluation.storage.unmeasured import forget_overhead_latencies
from evaluation.storage.unnest import insert_unnested

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Inspector
    from sqlalchemy.engine.interfaces import ReflectedColumn

T = TypeVar("T")
Tables = Sequence[type[SQLModel]]

EVALUATION_TABLES: Tables = (
    *results_schema.TABLES,
    *review_schema.TABLES,
    *series_schema.TABLES,
    *itembank_schema.TABLES,
)
"""The tables evaluation/ owns: results (``storage.models``), review (``review.schema``),
series (``series.schema``) and item banks (``itembank.schema``). The selector's are
``selection.schema.TABLES``."""


def make_engine(
    url: str,
    *,
    create: bool = True,
    tables: Tables = EVALUATION_TABLES,
    reads_only: bool = False,
) -> Engine:
    """An engine for ``url``, with ``tables`` created where missing (unless not
    ``create``); SQLite gets WAL and a busy timeout so concurrent sweeps writing to one
    file wait for each other instead of failing. A caller that ``reads_only`` (what it
    writes is a cache it can do without) reads a SQLite file in WAL mode whose folder
    is read-only as an immutable snapshot (``storage.snapshot``: ``snapshot_note``
    says so); any other caller is refused such a file up front. A database that holds
    tables and is not evalflow's is refused before anything is written to it, created or
    not (``refuse_another_applications``)."""
    if create:
        make_home_for(url)  # a fresh home's folder, made by its first writer
    try:
        if url.startswith("sqlite"):
            in_memory = url in ("sqlite://", "sqlite:///:memory:")
            opened, options = (url, {}) if in_memory else opening(url, reads_only=reads_only)
            engine = create_engine(
                opened,
                connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S},
                poolclass=StaticPool if in_memory else None,
                execution_options=options,
            )
            path = None if in_memory else sqlite_file(url, uri_filename=True)
            if path is not None and path.exists():  # one not there yet is made empty
                _refuse_another_applications_before(engine, pragmas=True)
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True)
            _refuse_another_applications_before(engine, pragmas=False)
        if create:
            create_tables(engine, tables, checked=True)
    except ImportError as exc:  # the URL's driver is not installed
        raise StorageError(
            f"cannot open the results database {redact_url(url)}: its driver is not installed "
            f"({one_line(str(exc), known=[url])}); install it (pip install ...) or use another URL"
        ) from exc
    except (SQLAlchemyError, ValueError) as exc:  # ValueError: e.g. a port that is no number
        if locked(exc):
            raise database_busy(url) from exc
        raise StorageError(
            f"cannot open the results database {redact_url(url)}: "
            f"{storage_problem(exc, [url], asked=url)}"
        ) from exc
    return engine


def create_tables(engine: Engine, tables: Tables, *, checked: bool = False) -> None:
    """Create those of ``tables`` that are missing, after bringing existing tables up to
    this version's columns (see ``_upgrade_older_schema``), then the indexes older
    tables lack; with the results tables, older simulated pipeline latencies that were
    the client's overhead become "not measured" (``storage.unmeasured``), older
    impossible decode speeds "not reported", their aggregates recomputed
    (``storage.impossible_rates``), and the output search index is built
    (``storage.text_search``). A database that holds tables, none of them evalflow's,
    is refused first (``refuse_another_applications``; ``checked``: it was already).
    One that takes no write and lacks only tables its readers do without
    (``models.READ_WITHOUT``) is read without them."""
    if not checked:
        refuse_another_applications(engine)
    try:
        _while_locked(lambda: _upgrade_older_schema(engine, tables))  # before creating
        _while_locked(lambda: _create_tables(engine, tables))
    except DBAPIError as exc:
        if not refused_write(exc) or not _lacking(engine, tables):
            raise
        needed = [t for t in tables if t not in results_schema.READ_WITHOUT]
        if lacking := _lacking(engine, needed):
            raise StorageError(
                f"the results database {database_name(engine)} lacks {lacking}, which this "
                "evalflow adds to a database it opens (one an older evalflow wrote, or the "
                "selector's before its first `retrain`), and it is read-only: open it once "
                "where it may be written (any evalflow command there adds them), or read it "
                "with the evalflow that wrote it"
            ) from exc
    _while_locked(lambda: _create_missing_indexes(engine, tables))
    if results_schema.Generation in tables:
        _while_locked(lambda: forget_overhead_latencies(engine))
        _while_locked(lambda: _unless_read_only(forget_impossible_rates, engine))
        _while_locked(lambda: _unless_read_only(ensure_text_index, engine))


def _refuse_another_applications_before(engine: Engine, *, pragmas: bool) -> None:
    """``refuse_another_applications`` on a new ``engine``, before anything is written:
    refused, its connection is closed (a WAL database's -wal and -shm files go with it);
    with ``pragmas`` to come (SQLite's WAL), closed either way, so that the connections
    the database is used on have them."""
    try:
        refuse_another_applications(engine)
    except StorageError:
        engine.dispose()
        raise
    if pragmas:
        engine.dispose()


def refuse_another_applications(engine: Engine) -> None:
    """StorageError where the database holds tables and is not evalflow's
    (``holds_evalflows``): another application's database, named by mistake (Prefect's
    and evalflow's URLs side by side), would silently get evalflow's tables beside its
    own. An empty database, or evalflow's, is opened; ``$EVALFLOW_SHARE_DATABASE=1`` lets
    evalflow add its tables beside others. Nothing is written before: only read."""
    inspector = inspect(engine)
    present = inspector.get_table_names()
    if not present or holds_evalflows(inspector, present):
        return
    if share_database():
        # beside another application's tables, not in place of one of the same name: its
        # `experiments` would read as an older evalflow's, after SQLite's WAL was set
        if clash := sorted(set(present) & _EVALFLOW_NAMES):
            raise StorageError(
                f"the database {database_name(engine)} holds another application's "
                f"table{'s' * (len(clash) > 1)} named as evalflow's ({_first_of(clash, 3)}): "
                f"{SHARE_DATABASE_ENV}=1 adds evalflow's tables beside another application's, "
                "not in place of its own; name another database for evalflow's results with "
                "--database or EVALFLOW_DATABASE_URL"
            )
        return
    raise StorageError(
        f"the database {database_name(engine)} holds {len(present)} "
        f"table{'s' * (len(present) > 1)}, none of them evalflow's "
        f"({_first_of(sorted(present), 3)}): another application's database? evalflow "
        "adds its tables only to an empty database or one that holds them: name the results "
        "database with --database or EVALFLOW_DATABASE_URL, or set EVALFLOW_SHARE_DATABASE=1 "
        "to add evalflow's tables beside these"
    )


def _keys(*models: type[SQLModel]) -> dict[str, frozenset[str]]:
    """Each of ``models``' table names with its primary key's columns."""
    return {m.__table__.name: frozenset(c.name for c in m.__table__.primary_key) for m in models}


MADE_TOGETHER: tuple[dict[str, frozenset[str]], ...] = (
    _keys(
        results_schema.Experiment,
        results_schema.ExperimentConfig,
        results_schema.Generation,
        results_schema.Score,
    ),
    {  # selection.schema.TABLES (evaluation/ imports nothing of selection/; a test compares)
        "selector_versions": frozenset({"id"}),
        "selector_blobs": frozenset({"version_id"}),
        "recommendation_log": frozenset({"id"}),
    },
)
"""Tables of evalflow's that each of its versions made together, each with its primary
key: the results' core, the same since its first version (an older evalflow's database
holds them all), and the selector's, which its API makes alone on a caller's empty
database. Another application's database may hold one of these names with such a key by
chance (``experiments(id, name, owner)``), never a whole group."""


_EVALFLOW_KEYS: dict[str, frozenset[str]] = _keys(*EVALUATION_TABLES) | {
    name: keys for group in MADE_TOGETHER for name, keys in group.items()
}
"""Every table of evalflow's with its primary key's columns."""
_EVALFLOW_NAMES = frozenset(_EVALFLOW_KEYS)


def holds_evalflows(inspector: Inspector, present: Iterable[str]) -> bool:
    """Whether a database of tables ``present`` (``inspector``'s) is evalflow's: it holds
    every table of one of the ``MADE_TOGETHER`` groups, each with its primary key, or
    nothing but evalflow's tables, each with its key (being made: sweeps that start
    together on a fresh SQLite file see each other's CREATE TABLEs one at a time). A name
    alone is not enough (MLflow's database has an ``experiments`` table too, recheck R3),
    nor one table of evalflow's name and key among another application's (recheck R7:
    ``experiments(id, name, owner)`` beside ``notes``). Keys are read only where the
    names allow the answer."""
    names = set(present)

    def keyed(tables: Mapping[str, frozenset[str]]) -> bool:
        return all(
            set(inspector.get_pk_constraint(name)["constrained_columns"]) == keys
            for name, keys in tables.items()
        )

    if any(group.keys() <= names and keyed(group) for group in MADE_TOGETHER):
        return True  # a few keys read, where every table's would be ~40
    return names <= _EVALFLOW_KEYS.keys() and keyed({n: _EVALFLOW_KEYS[n] for n in names})


def _unless_read_only(step: Callable[[Engine], object], engine: Engine) -> None:
    """``step``, an upgrade of older rows, where the database takes the write: a read-only
    one (a teammate's shared copy) is read as it is (its readers allow for such rows)."""
    try:
        step(engine)
    except DBAPIError as exc:
        if not refused_write(exc):
            raise


def _while_locked(step: Callable[[], None], *, budget_s: float = 30.0) -> None:
    """Run ``step`` again while SQLite answers "database is locked". A deferred
    transaction that read the schema and then wants to write gets that answer at once,
    without waiting out the busy timeout, when another process wrote in between (sweeps
    creating the tables of a fresh file together: 2 of 20 rounds failed so)."""
    deadline = time.monotonic() + budget_s
    while True:
        try:
            step()
            return
        except OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.02, 0.1))


def _upgrade_older_schema(engine: Engine, tables: Tables) -> None:
    """A database written by an older evalflow lacks columns this version reads and
    writes. Columns that can be added without inventing values (nullable, or with a
    constant default: new generation parameters, new optional fields) are added, so an
    upgrade keeps the user's results; if any missing column cannot be added, nothing is
    altered and the database is refused once, up front, instead of failing mid-run."""
    missing = _columns_where(engine, tables, lambda column, found: found is None)
    unaddable = [
        f"{c.table.name}.{c.name}" for c in missing if _added_column_sql(engine, c) is None
    ]
    if unaddable:
        shown = _first_of(unaddable, 5)
        raise StorageError(
            f"the results database {database_name(engine)} "
            "was written by an older evalflow: it lacks "
            f"column{'s' * (len(unaddable) > 1)} {shown}; use a new database (--database or "
            "$EVALFLOW_DATABASE_URL), or export the old results with the version that wrote them"
        )
    if missing:
        with engine.begin() as connection:
            for column in missing:
                table = engine.dialect.identifier_preparer.quote(column.table.name)
                added = _added_column_sql(engine, column)
                connection.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {added}")
    _allow_nulls(engine, tables)


def _lacking(engine: Engine, tables: Tables) -> str:
    """The tables of ``tables`` and the columns of their tables that the database lacks,
    in words (the first 3 named); "" where it lacks none, or holds none of ``tables``
    (not an evalflow database yet: SQLite's own words say what refused the write)."""
    present = set(inspect(engine).get_table_names())
    names = [model.__table__.name for model in tables]
    if not present & set(names):
        return ""
    missing = [f"table {name}" for name in names if name not in present]
    missing += [
        f"column {c.table.name}.{c.name}"
        for c in _columns_where(engine, tables, lambda column, found: found is None)
    ]
    return _first_of(missing, 3)


def _first_of(items: Sequence[str], shown: int) -> str:
    """``items`` joined, the first ``shown`` of them named and the rest counted."""
    rest = len(items) - shown
    return ", ".join(items[:shown]) + (f" and {rest} more" if rest > 0 else "")


def _allow_nulls(engine: Engine, tables: Tables) -> None:
    """A column that an older evalflow declared NOT NULL and this one lets be NULL
    (``generations.prompt_eval_count``: a count the server did not report is NULL, not
    0) loses its NOT NULL, keeping every value. PostgreSQL drops the constraint; SQLite,
    which cannot, gets a nullable copy of the column (renamed aside, added, copied,
    dropped: SQLite 3.35+), at the end of the table's columns."""
    stricter = _columns_where(
        engine,
        tables,
        lambda column, found: (
            found is not None
            and not found["nullable"]
            and column.nullable
            and not column.primary_key
        ),
    )
    if not stricter:
        return
    quote = engine.dialect.identifier_preparer.quote
    with engine.begin() as connection:
        for column in stricter:
            table, name = quote(column.table.name), quote(column.name)
            if engine.dialect.name != "sqlite":
                connection.exec_driver_sql(f"ALTER TABLE {table} ALTER COLUMN {name} DROP NOT NULL")
                continue
            aside = quote(f"{column.name}__not_null")
            kind = column.type.compile(dialect=engine.dialect)
            for step in (
                f"ALTER TABLE {table} RENAME COLUMN {name} TO {aside}",
                f"ALTER TABLE {table} ADD COLUMN {name} {kind}",
                f"UPDATE {table} SET {name} = {aside}",
                f"ALTER TABLE {table} DROP COLUMN {aside}",
            ):
                connection.exec_driver_sql(step)


def _columns_where(
    engine: Engine,
    tables: Tables,
    wanted: Callable[[Column[Any], ReflectedColumn | None], bool],
) -> list[Column[Any]]:
    """This version's columns of those of ``tables`` the database has, the ones for which
    ``wanted(column, found)`` holds: ``found`` is the database's account of the column
    (None where its table lacks it)."""
    inspector = inspect(engine)
    present = set(inspector.get_table_names())
    chosen = []
    for table in (model.__table__ for model in tables):
        if table.name not in present:
            continue
        found = {c["name"]: c for c in inspector.get_columns(table.name)}
        chosen += [c for c in table.columns if wanted(c, found.get(c.name))]
    return chosen


def _added_column_sql(engine: Engine, column: Column[Any]) -> str | None:
    """``name TYPE [NOT NULL] [DEFAULT value]`` for ALTER TABLE ADD COLUMN, or None when
    existing rows would need a value nobody knows (a key, or NOT NULL without a constant
    default)."""
    if column.primary_key or column.foreign_keys:
        return None
    name = engine.dialect.identifier_preparer.quote(column.name)
    kind = column.type.compile(dialect=engine.dialect)
    default = column.default.arg if column.default is not None else None
    if isinstance(default, bool):
        default = int(default)
    if isinstance(default, (int, float)):
        literal = repr(default)
    elif isinstance(default, str):
        literal = "'" + default.replace("'", "''") + "'"
    else:
        return f"{name} {kind}" if column.nullable else None
    return f"{name} {kind}{'' if column.nullable else ' NOT NULL'} DEFAULT {literal}"


def _create_tables(engine: Engine, tables: Tables) -> None:
    """Create the missing tables. Sweeps starting together on a fresh database race on
    CREATE TABLE ("table already exists" on SQLite, a duplicate pg_type row on
    PostgreSQL); the loser tries again, and every lost race means one more table exists,
    so one attempt per table is enough."""
    attempts = len(tables) + 1
    for attempt in range(1, attempts + 1):
        try:
            SQLModel.metadata.create_all(engine, tables=[model.__table__ for model in tables])
            return
        except (OperationalError, ProgrammingError, IntegrityError):
            if attempt == attempts:
                raise


def _create_missing_indexes(engine: Engine, tables: Tables) -> None:
    """The indexes of existing tables that an older evalflow did not create (CREATE
    TABLE makes a new table's own; the view's queries need e.g. generations by case),
    after settling the rows a unique one would refuse (``SETTLE_BEFORE_INDEX``), and
    the older ones this version replaced dropped (``models.RETIRED_INDEXES``). A
    database that refuses the write (read-only: a teammate's shared copy) is read
    without them (and with the retired ones, unused)."""
    inspector = inspect(engine)
    present = set(inspector.get_table_names())
    for table in (model.__table__ for model in tables):
        if table.name not in present or not table.indexes:
            continue
        have = {i["name"] for i in inspector.get_indexes(table.name)}
        missing = [index for index in table.indexes if index.name not in have]
        for index in missing:  # IF NOT EXISTS: sweeps starting together both see it missing
            settle = review_schema.SETTLE_BEFORE_INDEX.get(str(index.name))
            _index_change(engine, CreateIndex(index, if_not_exists=True), settle)
        for name in results_schema.RETIRED_INDEXES.get(table.name, ()):
            if name in have:
                _index_change(engine, text(f"DROP INDEX IF EXISTS {name}"))


def _index_change(engine: Engine, statement: Executable, settle: str | None = None) -> None:
    """Create or drop one index (after ``settle``: the rows a unique one refuses); lost
    to another process's same change, or refused by a read-only database: left."""
    try:
        with engine.begin() as connection:
            if settle:
                connection.exec_driver_sql(settle)
            connection.execute(statement)
    except (ProgrammingError, IntegrityError):  # PostgreSQL's race: a duplicate name
        pass
    except DBAPIError as exc:  # a read-only database is read without it
        if not refused_write(exc):
            raise


def refresh_planner_facts(engine: Engine) -> None:
    """After a run's writes, on PostgreSQL: VACUUM (ANALYZE) the generations and scores,
    so that the view's queries are planned on their sizes (without statistics the
    planner takes a million rows for a few thousand) and index-only scans need no heap
    reads (the visibility map VACUUM sets: without it the case and group filters read
    25,000 rows from the heap, 0.5-1 s at a million generations). Autovacuum would do
    it in time where it is on; here it is done once, when the run ends. SQLite needs
    neither."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(
            "VACUUM (ANALYZE) generations, scores, experiments, run_summaries"
        )


BUSY_TIMEOUT_S = 30.0
"""How long a SQLite write waits for another process's write to end before it gives up
(``DatabaseBusy``). Each write transaction of a run is short (a batch of generations,
its scores, computed first and written together, one page: seconds at most under load),
so concurrent sweeps take turns well within it; a run's scoring written as it was
computed held the lock for minutes, and a second sweep's end gave up (newcomers' F5)."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # first: switching to WAL takes a lock
    cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError as refused:
        # a rollback-journal file opened read-only (mode=ro) cannot switch: it is read in
        # the mode it has; a write through it is refused later in words of its own
        if (getattr(refused, "sqlite_errorcode", 0) or 0) & 0xFF != SQLITE_READONLY:
            raise
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


SQLITE_READONLY = 8  # the primary result code of every SQLITE_READONLY_* error
SQLITE_BUSY, SQLITE_LOCKED = 5, 6  # "database is locked", "database table is locked"


def locked(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite giving up on a lock another connection holds: past the
    busy timeout, or at once where a transaction that holds a read wants to write."""
    cause = getattr(exc, "orig", None) or exc
    return (getattr(cause, "sqlite_errorcode", 0) or 0) & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED)


def database_busy(url: str | URL) -> DatabaseBusy:
    """The error of a write that waited out the busy timeout on the SQLite file of
    ``url``: which process holds the lock, where that can be told, and what to do."""
    path = sqlite_file(url if isinstance(url, str) else url.render_as_string(), uri_filename=True)
    holder = holder_words(path) if path is not None else ""
    by = f" by {holder}" if holder else " by another process"
    return DatabaseBusy(
        f"the results database {path or redact_url(str(url))} stayed locked{by} for "
        f"{BUSY_TIMEOUT_S:g} s (one writer at a time); nothing is lost: run the same command "
        "again once that process has written"
    )


def storage_problem(
    exc: BaseException, known: Iterable[str] = (), *, asked: str | URL | None = None
) -> str:
    """What the database (or its driver) said, in one line: never the statement or its
    parameters, which SQLAlchemy appends (model outputs, kilobytes of them), nor any
    part of the credentials of the ``known`` URLs (a driver may print a piece of a
    password as a host name). A write SQLite refused because the URL the user gave
    (``asked``) opens it read-only (``mode=ro``) says so, not "check the permissions"
    of a file that may be written (recheck R6)."""
    cause = getattr(exc, "orig", None) or exc
    first = (str(cause).strip().splitlines() or [""])[0].split(" [SQL: ")[0]
    said = first or type(cause).__name__  # the driver's words, not its class (newcomer N8)
    said = one_line(said, known=known)
    if (getattr(cause, "sqlite_errorcode", 0) or 0) & 0xFF == SQLITE_READONLY:
        if asked is not None and _opens_read_only(asked):
            return (
                f"it is read-only ({said}): its URL opens it read-only (mode=ro); drop "
                "mode=ro from the URL to write to it"
            )
        return f"it is read-only ({said}); check the permissions of the file and its folder"
    return said


def _opens_read_only(url: str | URL) -> bool:
    """Whether ``url`` opens a SQLite database read-only (``?mode=ro``)."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except (ArgumentError, ValueError):
        return False
    return parsed.get_backend_name() == "sqlite" and parsed.query.get("mode") == "ro"


#: PostgreSQL's SQLSTATEs of a write refused: a read-only transaction (a standby, or
#: default_transaction_read_only), a role without the right to write the table.
_NO_WRITE_SQLSTATES = frozenset({"25006", "42501"})


def refused_write(exc: BaseException) -> bool:
    """Whether ``exc`` is the database refusing a write it cannot take (a read-only
    SQLite file or connection, a read-only PostgreSQL transaction or role), which a
    cache may shrug off: a reader of a shared copy still gets its page."""
    cause = getattr(exc, "orig", None) or exc
    if (getattr(cause, "sqlite_errorcode", 0) or 0) & 0xFF == SQLITE_READONLY:
        return True
    return getattr(cause, "pgcode", None) in _NO_WRITE_SQLSTATES


def database_name(engine: Engine) -> str:
    """The database an engine writes to, as the user knows it: the SQLite file, else the
    URL without its password."""
    url = engine.url
    if snapshot := engine.get_execution_options().get(SNAPSHOT_OPTION):
        return str(snapshot)  # the file, not the URI filename that reads it
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return str(url.database)
    return redact_url(url.render_as_string(hide_password=False))


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except SQLAlchemyError as exc:
            session.rollback()
            if locked(exc):
                raise database_busy(asked_url(engine)) from exc
            raise StorageError(
                f"the results database {database_name(engine)}: "
                f"{storage_problem(exc, asked=asked_url(engine))}"
            ) from exc
        except BaseException:
            session.rollback()
            raise


#: How often a write is tried when another writer committed the row a unique index
#: allows once between its read and its write (``saved_at_once``).
SAVE_TRIES = 3


def saved_at_once(engine: Engine, write: Callable[[Session], T]) -> T:
    """``write(session)`` in one transaction (``session_scope``), tried again (up to
    ``SAVE_TRIES`` times) where the database refused it for a unique index: another save
    of the same row committed first (the review's one current rating a slot: a double
    click on Save, two tabs), and the next try reads it (an identical rating is then
    "unchanged", a different one supersedes)."""
    for attempt in range(1, SAVE_TRIES + 1):
        try:
            with session_scope(engine) as session:
                return write(session)
        except StorageError as exc:
            if attempt == SAVE_TRIES or not isinstance(exc.__cause__, IntegrityError):
                raise
    raise AssertionError("unreachable")


READ_ROWS = 10_000  # rows a read makes Python objects of at once (read_frame)


def read_frame(session: Session, query: TextClause, params: Mapping[str, Any]) -> pd.DataFrame:
    """The rows of ``query`` as a DataFrame, read ``READ_ROWS`` at a time: each row's
    values are Python objects until pandas packs them, and 100,000 scores (a 10 MiB
    frame) read at once peaked 61 MiB above where they started, 24 so. The parts' column
    types are those of one read (else the query is read again whole). pandas is imported
    here, on first use, not with the storage modules: listing experiments needs none."""
    import pandas as pd

    parts = list(pd.read_sql(query, session.connection(), params=dict(params), chunksize=READ_ROWS))
    if len(parts) == 1:
        return parts[0]
    if not _same_types(parts):
        del parts
        return pd.read_sql(query, session.connection(), params=dict(params))
    return pd.concat(parts, ignore_index=True)


def _same_types(parts: list[pd.DataFrame]) -> bool:
    """Whether each column has one type in every part, as one read gives it; a part's
    column of nulls only takes the others' type where that is float or string (what one
    read makes of those nulls)."""
    for column in parts[0].columns:
        filled = {part[column].dtype for part in parts if part[column].notna().any()}
        if len(filled) > 1:
            return False
        kind = filled.pop() if filled else parts[0][column].dtype
        for part in parts:
            if part[column].dtype != kind:  # nulls only
                if kind.kind != "f" and str(kind) != "str":
                    return False
                part[column] = part[column].astype(kind)
    return True


def dialect_insert(dialect: str) -> Callable[..., Any]:
    """The INSERT of ``dialect`` that takes ON CONFLICT: SQLite's or PostgreSQL's, their
    modules imported here on first use (PostgreSQL's brings its drivers' dialects: a
    read-only command does without)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert
    raise StorageError(f"unsupported database dialect {dialect!r} (use SQLite or PostgreSQL)")


def insert_ignoring_conflicts(
    session: Session,
    model: type[SQLModel],
    rows: Iterable[Mapping[str, Any]],
    *,
    update_columns: Iterable[str] = (),
    conflict_columns: Iterable[str] | None = None,
) -> None:
    """INSERT ... ON CONFLICT DO NOTHING (or DO UPDATE of ``update_columns``), for
    SQLite and PostgreSQL: concurrent writers never duplicate a row. The rows go in
    order, each run of rows with the same columns straight to the driver: on SQLite one
    executemany (``storage.executemany``), on PostgreSQL one statement of unnested arrays
    (``storage.unnest``: psycopg2 would send each row on its own), the rows of a key an
    update touches twice merged first. (One multi-row VALUES statement per 500 rows was
    compiled anew each time: 140 us of CPU a row at 64 rows, 25 us as one statement over
    the rows; the record writer's largest cost while a fast host generates.)"""
    rows = list(rows)
    if not rows:
        return
    table = model.__table__
    updates = tuple(update_columns)
    keys = list(conflict_columns or [c.name for c in table.primary_key.columns])
    connection = session.connection()
    quote = connection.dialect.identifier_preparer.quote
    on_conflict = "ON CONFLICT DO NOTHING"
    if updates:
        on_conflict = f"ON CONFLICT ({', '.join(map(quote, keys))}) DO UPDATE SET " + ", ".join(
            f"{quote(c)} = excluded.{quote(c)}" for c in updates
        )
    postgresql = connection.dialect.name == "postgresql"
    for _, run in itertools.groupby(rows, key=tuple):
        same = list(run)
        if postgresql:  # one statement: a key updated twice in it is merged first
            merged = _as_updated(same, keys, updates) if updates else same
            insert_unnested(connection, table, merged, on_conflict=on_conflict)
        else:  # row after row
            insert_many(connection, table, same, on_conflict=on_conflict)


def _as_updated(
    rows: list[Mapping[str, Any]], keys: Sequence[str], updates: Sequence[str]
) -> list[Mapping[str, Any]]:
    """One row per key, as INSERT ... ON CONFLICT DO UPDATE of ``updates`` run over
    ``rows`` one after another would leave it: the first row's columns, the last row's
    ``updates``, in the first one's place (one statement may not update a row twice). A
    key with a NULL never conflicts: such rows are kept as they are."""
    kept: dict[Any, Mapping[str, Any]] = {}
    for i, row in enumerate(rows):
        key = tuple(row.get(k) for k in keys)
        if None in key:
            key = (i, None)  # unique: never merged
        earlier = kept.get(key)
        kept[key] = row if earlier is None else {**earlier, **{c: row[c] for c in updates}}
    return list(kept.values())


def open_database(
    explicit: str | None = None, *, create: bool = True, reads_only: bool = False
) -> Engine:
    """The results database the user chose (``explicit``, else the environment, else the
    default file): every edge opens it this one way."""
    return make_engine(database_url(explicit), create=create, reads_only=reads_only)
