"""Many rows in one statement on PostgreSQL: each column's values go as one array
parameter, and the server unnests the arrays into rows (``INSERT ... SELECT * FROM
unnest(...)``, ``DELETE ... USING unnest(...)``).

psycopg2 runs an ``executemany`` as one statement and one round trip per row, and
SQLAlchemy (2.0) makes no multi-row VALUES of an INSERT ... ON CONFLICT without
RETURNING: the record writer's storing cost ~210 us of CPU a record on PostgreSQL
(twice SQLite's), ~75 us so (``benchmarks/perf/writer_store.py``). Here a batch is one statement
per table, whatever its size, with one parameter per column (no limit on rows from
PostgreSQL's 65,535 parameters) and no per-row SQL for the driver to build. The values
are those SQLAlchemy would send: each column's bind processor applied, and a column a
row leaves out given its default (``Column(default=...)``, scalar or a function of no
arguments). Callers choose this path where the connection's dialect is
PostgreSQL; SQLite's ``executemany`` is in-process and cheap.

One statement is one command: ``ON CONFLICT DO UPDATE`` refuses to touch a row twice
in it, so rows with the same conflict key must be merged first (see
``repository.save_generations`` and ``db.insert_ignoring_conflicts``); ``DO NOTHING``
keeps the first.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection, CursorResult, Dialect

_Values = Callable[[Sequence[Mapping[str, Any]]], list[Any]]

_PLANS: weakref.WeakKeyDictionary[Dialect, dict[tuple[Any, ...], tuple[str, list[_Values]]]] = (
    weakref.WeakKeyDictionary()
)


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
    key = ("insert", table, columns, on_conflict, tuple(returning))
    plans = _PLANS.setdefault(connection.dialect, {})
    plan = plans.get(key)
    if plan is None:
        plan = plans[key] = _insert_plan(connection.dialect, table, columns, on_conflict, returning)
    sql, values = plan
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
    key = ("delete", table, tuple(fixed), names)
    plans = _PLANS.setdefault(connection.dialect, {})
    plan = plans.get(key)
    if plan is None:
        dialect = connection.dialect
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
        plan = plans[key] = (sql, [_processed(table.c[n], dialect, _given(n)) for n in names])
    sql, values = plan
    params = {f"p{i}": column_values(keys) for i, column_values in enumerate(values)}
    params |= {f"f_{n}": v for n, v in fixed.items()}
    connection.exec_driver_sql(sql, params)


def _insert_plan(
    dialect: Dialect,
    table: Table,
    columns: tuple[str, ...],
    on_conflict: str,
    returning: Sequence[str],
) -> tuple[str, list[_Values]]:
    """The statement and, per inserted column, how its array is made from the rows."""
    quote = dialect.identifier_preparer.quote
    inserted = [
        c for c in table.columns if c.name in columns or not _generated(c)
    ]  # the table's order: the rows' own order of keys does not matter
    unknown = set(columns) - {c.name for c in inserted}
    if unknown:
        raise ValueError(f"{table.name} has no column {sorted(unknown)}")
    values = [
        _processed(c, dialect, _given(c.name) if c.name in columns else _default(c))
        for c in inserted
    ]
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
    return sql, values


def _generated(column: Any) -> bool:
    """Whether the database makes ``column``'s value where a row leaves it out (an
    autoincrement key, a server default), as SQLAlchemy leaves it out of its INSERT."""
    return column is column.table.autoincrement_column or column.server_default is not None


def _array_type(dialect: Dialect, table: Table, name: str) -> str:
    return f"{table.c[name].type.compile(dialect=dialect)}[]"


def _processed(column: Any, dialect: Dialect, values: _Values) -> _Values:
    """``values`` as SQLAlchemy sends them: through the column type's bind processor."""
    process = column.type._cached_bind_processor(dialect)
    if process is None:
        return values
    return lambda rows: [process(v) for v in values(rows)]


def _given(name: str) -> _Values:
    return lambda rows: [row[name] for row in rows]


def _default(column: Any) -> _Values:
    """What SQLAlchemy inserts into ``column`` for a row that leaves it out."""
    default = column.default
    if default is None:
        return lambda rows: [None] * len(rows)
    if default.is_scalar:
        value = default.arg
        return lambda rows: [value] * len(rows)
    if default.is_callable:
        make = default.arg  # SQLAlchemy wraps a function of no arguments to take a context
        return lambda rows: [make(None) for _ in rows]
    raise ValueError(f"{column.table.name}.{column.name}: a default only the database computes")
