"""Many rows in one statement on PostgreSQL: each column's values go as one array
parameter, and the server unnests the arrays into rows (``INSERT ... SELECT * FROM
unnest(...)``, ``DELETE ... USING unnest(...)``).

psycopg2 runs an ``executemany`` as one statement and one round trip per row, and
SQLAlchemy (2.0) makes no multi-row VALUES of an INSERT ... ON CONFLICT without
RETURNING: the record writer's storing cost ~210 us of CPU a record on PostgreSQL
(twice SQLite's), ~75 us so (``benchmarks/perf/writer_store.py``). Here a batch is one statement
per table, whatever its size, with one parameter per column (no limit on rows from
PostgreSQL's 65,535 parameters) and no per-row SQL for the driver to build. The values
are those SQLAlchemy would send (``storage.bound``). Callers choose this path where the
connection's dialect is PostgreSQL; on SQLite the rows go to its in-process
``executemany`` (``storage.executemany``).

One statement is one command: ``ON CONFLICT DO UPDATE`` refuses to touch a row twice
in it, so rows with the same conflict key must be merged first (see
``repository.save_generations`` and ``db.insert_ignoring_conflicts``); ``DO NOTHING``
keeps the first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from evaluation.storage.bound import (
    Plan,
    given_values,
    inserted_columns,
    inserted_values,
    planned,
    processed,
)

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection, CursorResult, Dialect


def insert_unnested(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    on_conflict: str = "",
    returning: Sequence[str] = (),
) -> CursorResult[Any]:
    """INSERT ``rows`` (all with the same columns) into ``table`` as one statement,
    followed by ``on_conflict`` (SQL: ``ON CONFLICT ...``) and RETURNING ``returning``.
    Every column of the table but an autoincrement key is inserted: those a row lacks
    take their column's default. The rows are inserted in order."""
    columns = tuple(rows[0])
    sql, values = planned(
        connection.dialect,
        ("unnest", table, columns, on_conflict, tuple(returning)),
        lambda: _insert_plan(connection.dialect, table, columns, on_conflict, returning),
    )
    params = {f"p{i}": column_values(rows) for i, column_values in enumerate(values)}
    return connection.exec_driver_sql(sql, params)


def delete_unnested(
    connection: Connection,
    table: Table,
    fixed: Mapping[str, Any],
    keys: Sequence[Mapping[str, Any]],
) -> None:
    """DELETE the rows of ``table`` whose columns equal ``fixed`` and, for one of ``keys``
    (all with the same columns), each of its columns: one statement for all the keys."""
    names = tuple(keys[0])
    sql, values = planned(
        connection.dialect,
        ("unnest delete", table, tuple(fixed), names),
        lambda: _delete_plan(connection.dialect, table, fixed, names),
    )
    params = {f"p{i}": column_values(keys) for i, column_values in enumerate(values)}
    params |= {f"f_{n}": v for n, v in fixed.items()}
    connection.exec_driver_sql(sql, params)


def _delete_plan(
    dialect: Dialect, table: Table, fixed: Mapping[str, Any], names: tuple[str, ...]
) -> Plan:
    quote = dialect.identifier_preparer.quote
    target = dialect.identifier_preparer.format_table(table)
    arrays = ", ".join(
        f"%(p{i})s::{_array_type(dialect, table, name)}" for i, name in enumerate(names)
    )
    same = [f"{target}.{quote(n)} = %(f_{n})s" for n in fixed]
    same += [f"{target}.{quote(n)} = k.{quote(n)}" for n in names]
    sql = (
        f"DELETE FROM {target} USING unnest({arrays}) AS k({', '.join(map(quote, names))}) "
        f"WHERE {' AND '.join(same)}"
    )
    return sql, [processed(table.c[n], dialect, given_values(n)) for n in names]


def _insert_plan(
    dialect: Dialect,
    table: Table,
    columns: tuple[str, ...],
    on_conflict: str,
    returning: Sequence[str],
) -> Plan:
    """The statement and, per inserted column, how its array is made from the rows."""
    quote = dialect.identifier_preparer.quote
    inserted = inserted_columns(table, columns)  # the table's order, not the rows' keys'
    arrays = ", ".join(
        f"%(p{i})s::{_array_type(dialect, table, c.name)}" for i, c in enumerate(inserted)
    )
    sql = (
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
        f"({', '.join(quote(c.name) for c in inserted)}) SELECT * FROM unnest({arrays})"
    )
    if on_conflict:
        sql += f" {on_conflict}"
    if returning:
        sql += f" RETURNING {', '.join(map(quote, returning))}"
    return sql, inserted_values(dialect, inserted, columns)


def _array_type(dialect: Dialect, table: Table, name: str) -> str:
    return f"{table.c[name].type.compile(dialect=dialect)}[]"
