"""A table's rows as SQLAlchemy would send them to the driver, made without its per-row
work: each column's bind processor applied, and a column a row leaves out given its
default (``Column(default=...)``, scalar or a function of no arguments). What the
statements whose rows go straight to the driver share: ``unnest`` (PostgreSQL: a column's
values as one array) and ``executemany`` (SQLite: the rows as tuples)."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Column, Table
    from sqlalchemy.engine import Dialect

Values = Callable[[Sequence[Mapping[str, Any]]], list[Any]]
"""A column's values over rows, as they go to the driver."""
Plan = tuple[str, list[Values]]
"""A statement's SQL and how the values of each of its columns are made from the rows."""

_PLANS: weakref.WeakKeyDictionary[Dialect, dict[Hashable, Plan]] = weakref.WeakKeyDictionary()


def planned(dialect: Dialect, key: Hashable, make: Callable[[], Plan]) -> Plan:
    """``make()``, made once per dialect and ``key`` (a statement's kind, its table and
    the shape of its rows)."""
    plans = _PLANS.setdefault(dialect, {})
    plan = plans.get(key)
    if plan is None:
        plan = plans[key] = make()
    return plan


def inserted_columns(table: Table, columns: Sequence[str]) -> list[Column[Any]]:
    """The columns an INSERT of rows with ``columns`` fills, in the table's order: those
    given and every other but what the database makes itself (an autoincrement key, a
    server default), as SQLAlchemy's INSERT leaves those out."""
    inserted = [c for c in table.columns if c.name in columns or not _generated(c)]
    unknown = set(columns) - {c.name for c in inserted}
    if unknown:
        raise ValueError(f"{table.name} has no column {sorted(unknown)}")
    return inserted


def inserted_values(
    dialect: Dialect, columns: Sequence[Column[Any]], given: Sequence[str]
) -> list[Values]:
    """Per column of ``columns`` (``inserted_columns``), how its values are made from rows
    that hold ``given``."""
    return [
        processed(c, dialect, given_values(c.name) if c.name in given else _default(c))
        for c in columns
    ]


def processed(column: Any, dialect: Dialect, values: Values) -> Values:
    """``values`` as SQLAlchemy sends them: through the column type's bind processor."""
    process = column.type._cached_bind_processor(dialect)
    if process is None:
        return values
    return lambda rows: [process(v) for v in values(rows)]


def given_values(name: str) -> Values:
    return lambda rows: [row[name] for row in rows]


def _generated(column: Any) -> bool:
    """Whether the database makes ``column``'s value where a row leaves it out (an
    autoincrement key, a server default), as SQLAlchemy leaves it out of its INSERT."""
    return column is column.table.autoincrement_column or column.server_default is not None


def _default(column: Any) -> Values:
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
