"""Driver-level multi-row inserts and PostgreSQL pipelining, for the group commit.

A group commit writes a handful of rows to four or five tables and must do it in as few
round trips and as little Python as possible. SQLAlchemy Core's `insert()` compiles and
processes every row and, for a single row on PostgreSQL, asks for the new primary key
back; here the statement is built once per (table, columns), every row is passed straight
to the driver's `executemany` on the connection's own DBAPI connection (SQLAlchemy's
execution layer alone cost seven times the statement: 9 against 1.2 us for a one-row
insert on SQLite), and on PostgreSQL the inserts and the commit travel as one
batch (psycopg's pipeline mode), so a group costs one round trip instead of one per table.

Only plain columns are written this way (strings, integers, bytes): no type on these tables
needs a bind processor. Columns a row leaves out take their scalar `default=`, exactly as
Core would fill them; a row leaving out a column whose default is computed is refused, not
silently given NULL.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError


def insert_rows(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` into `table` with one driver-level statement.

    A column some rows leave out takes its default, or NULL if it has none.
    """
    if not rows:
        return
    _, computed = _defaults(table)
    named = frozenset().union(*rows)
    left_out = sorted(c for c in computed if any(c not in row for row in rows))
    if left_out:
        raise ValueError(f"{table.name}: {', '.join(left_out)} must be given (computed default)")
    sql, base = _statement(connection.dialect, table, named)
    _execute_many(connection, sql, [{**base, **row} for row in rows])


@lru_cache(maxsize=256)
def _statement(dialect: Dialect, table: Table, named: frozenset[str]) -> tuple[str, dict[str, Any]]:
    """The INSERT for rows naming the columns `named`, and the values of those left out."""
    unknown = sorted(named.difference(table.c.keys()))
    if unknown:
        raise ValueError(f"{table.name}: no column named {', '.join(unknown)}")
    defaults, _ = _defaults(table)
    columns = tuple(sorted(named.union(defaults)))
    return _insert_sql(dialect, table, columns), {**dict.fromkeys(columns), **defaults}


def _execute_many(connection: Connection, sql: str, rows: list[dict[str, Any]]) -> None:
    """The driver's `executemany`, its errors raised as SQLAlchemy's own (an
    `IntegrityError` for a duplicate key), as `exec_driver_sql` would; a connection the
    database dropped is invalidated, never reused."""
    dialect = connection.dialect
    dbapi_connection: Any = connection.connection.dbapi_connection
    cursor = dbapi_connection.cursor()
    try:
        cursor.executemany(sql, rows)
    except dialect.loaded_dbapi.Error as exc:
        dropped = dialect.is_disconnect(exc, dbapi_connection, cursor)
        if dropped:
            connection.invalidate(exc)
        raise DBAPIError.instance(
            sql,
            rows,
            exc,
            dialect.loaded_dbapi.Error,
            hide_parameters=True,
            connection_invalidated=dropped,
            dialect=dialect,
            ismulti=True,
        ) from exc
    finally:
        cursor.close()


@contextmanager
def pipelined(connection: Connection) -> Iterator[None]:
    """On PostgreSQL, queue the statements inside and send them as one batch.

    Statements inside must not read results through SQLAlchemy (it would see none until
    the batch is sent). An error may arrive only at the commit, which SQLAlchemy still
    turns into its own exception (an `IntegrityError` for a duplicate key) but after
    which it no longer rolls the connection back: so a connection whose batch failed is
    invalidated, never returned to the pool mid-transaction. Elsewhere this does nothing.
    """
    driver: Any = connection.connection.driver_connection
    if connection.dialect.name != "postgresql" or not hasattr(driver, "pipeline"):
        yield
        return
    try:
        with driver.pipeline():
            yield
    except BaseException:
        connection.invalidate()
        raise


@lru_cache(maxsize=64)
def _defaults(table: Table) -> tuple[dict[str, Any], frozenset[str]]:
    """The scalar `default=` of each column that has one, and the columns whose default
    is computed (a callable or SQL expression), which this module cannot fill."""
    scalar: dict[str, Any] = {}
    computed: set[str] = set()
    for column in table.columns:
        default = column.default
        if default is None:
            continue
        if default.is_scalar:
            scalar[column.name] = default.arg  # type: ignore[attr-defined]
        else:
            computed.add(column.name)
    return scalar, frozenset(computed)


@lru_cache(maxsize=256)
def _insert_sql(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> str:
    """`INSERT INTO t (a, b) VALUES (%(a)s, %(b)s)` in the driver's named style."""
    quote = dialect.identifier_preparer.quote
    marker = "%({})s" if dialect.paramstyle in ("pyformat", "format") else ":{}"
    names = ", ".join(quote(c) for c in columns)
    values = ", ".join(marker.format(c) for c in columns)
    return f"INSERT INTO {quote(table.name)} ({names}) VALUES ({values})"
