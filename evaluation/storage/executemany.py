"""Many rows on SQLite straight to the driver: SQL written once per shape of rows, the
rows as tuples of what SQLAlchemy would send (``storage.bound``), run as one
``executemany`` of sqlite3.

SQLAlchemy's own executemany of a compiled statement builds each row's parameters in
Python (``construct_params``, its bind processors per row and value): ~100 us of the
record writer's CPU a record stored (a generation, its case run and its stage), most of
it that, not SQLite (py-spy of the writer process: ``construct_params`` alone a quarter;
``benchmarks/perf/writer_store.py``). While lane workers generate at thousands a second
on a few cores, the writer's CPU is the host's rate less (benchmarks/perf/
throughput_goal.py). Here each column's values are made in one pass over the rows, and
sqlite3 binds them in C.

The rows go in order, each its own INSERT (or DELETE) as sqlite3's executemany runs
them: an upsert of a key twice in one call acts as one after the other. An INSERT ...
RETURNING cannot go through executemany; it goes as one multi-row VALUES statement per
page of a power of two rows (at most ``RETURNING_PAGE_ROWS``): SQLite prepares each
number of rows as a statement of its own and keeps the last 128 prepared on each
connection (~1 KB a row), so a statement a batch, whose size follows the run's pace,
grew a 100,000-generation run's process by ~100 MiB; these pages are at most 9
statements, whatever the batches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from evaluation.storage.bound import (
    Plan,
    Values,
    given_values,
    inserted_columns,
    inserted_values,
    planned,
    processed,
)

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection, Dialect

RETURNING_PAGE_ROWS = 256
"""The most rows one INSERT ... RETURNING of ``insert_returning`` carries."""


def insert_many(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    on_conflict: str = "",
) -> None:
    """INSERT ``rows`` (all with the same columns) into ``table``, one after another,
    each followed by ``on_conflict`` (SQL: ``ON CONFLICT ...``). Every column but an
    autoincrement key or one with a server default is inserted: those a row lacks take
    their column's default."""
    if not rows:
        return
    sql, values = _insert_plan(connection.dialect, table, tuple(rows[0]), on_conflict)
    connection.exec_driver_sql(sql, _tuples(values, rows))


def insert_returning(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    on_conflict: str,
    returning: Sequence[str],
) -> list[tuple[Any, ...]]:
    """``insert_many`` that returns ``returning`` of each row inserted (in no set order),
    in pages of a power of two rows: 200 rows as 128, 64 and 8."""
    if not rows:
        return []
    quote = connection.dialect.identifier_preparer.quote
    tail = f" RETURNING {', '.join(map(quote, returning))}"
    single, values = _insert_plan(connection.dialect, table, tuple(rows[0]), "")
    head, _, one = single.partition(" VALUES ")
    returned: list[tuple[Any, ...]] = []
    start = 0
    while start < len(rows):
        left = len(rows) - start
        size = min(RETURNING_PAGE_ROWS, 1 << (left.bit_length() - 1))
        page = rows[start : start + size]
        flat = tuple(v for row in _tuples(values, page) for v in row)
        sql = f"{head} VALUES {', '.join([one] * size)} {on_conflict}{tail}"
        returned += [tuple(r) for r in connection.exec_driver_sql(sql, flat)]
        start += size
    return returned


def delete_many(
    connection: Connection,
    table: Table,
    fixed: Mapping[str, Any],
    keys: Sequence[Mapping[str, Any]],
) -> None:
    """DELETE the rows of ``table`` whose columns equal ``fixed`` and, for one of ``keys``
    (all with the same columns), each of its columns."""
    if not keys:
        return
    names = (*fixed, *keys[0])
    sql, values = planned(
        connection.dialect,
        ("executemany delete", table, names),
        lambda: _delete_plan(connection.dialect, table, names),
    )
    connection.exec_driver_sql(sql, _tuples(values, [{**fixed, **key} for key in keys]))


def _delete_plan(dialect: Dialect, table: Table, names: tuple[str, ...]) -> Plan:
    quote = dialect.identifier_preparer.quote
    where = " AND ".join(f"{quote(n)} = ?" for n in names)
    sql = f"DELETE FROM {dialect.identifier_preparer.format_table(table)} WHERE {where}"
    return sql, [processed(table.c[n], dialect, given_values(n)) for n in names]


def _insert_plan(
    dialect: Dialect, table: Table, columns: tuple[str, ...], on_conflict: str
) -> Plan:
    """The SQL of one row and how each column's values are made from the rows."""
    return planned(
        dialect,
        ("executemany", table, columns, on_conflict),
        lambda: _insert_sql(dialect, table, columns, on_conflict),
    )


def _insert_sql(dialect: Dialect, table: Table, columns: tuple[str, ...], on_conflict: str) -> Plan:
    quote = dialect.identifier_preparer.quote
    inserted = inserted_columns(table, columns)
    sql = (
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
        f"({', '.join(quote(c.name) for c in inserted)}) "
        f"VALUES ({', '.join('?' for _ in inserted)})"
    )
    if on_conflict:
        sql += f" {on_conflict}"
    return sql, inserted_values(dialect, inserted, columns)


def _tuples(values: list[Values], rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """The rows as the driver takes them: a tuple each, in the columns' order."""
    return list(zip(*(column(rows) for column in values), strict=True))
