"""`gateway.batched_sql`: driver-level inserts fill defaults as Core would, refuse what they
cannot write, and on PostgreSQL a pipelined batch reports a failed row as SQLAlchemy's own
error (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Column, Engine, Integer, LargeBinary, MetaData, String, Table, select
from sqlalchemy.exc import IntegrityError

from gateway.batched_sql import insert_rows, pipelined
from gateway.db import make_engine
from tests.postgres import Databases

METADATA = MetaData()
ITEMS = Table(
    "items",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(16), unique=True),
    Column("state", String(16), default="new"),
    Column("tries", Integer, default=0),
    Column("blob", LargeBinary, nullable=True),
)
STAMPED = Table(
    "stamped",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("at", Integer, default=lambda: 42),
)


@pytest.fixture
def engine(databases: Databases) -> Iterator[Engine]:
    engine = make_engine(databases.url("batched"))
    METADATA.create_all(engine)
    yield engine
    engine.dispose()


def test_rows_naming_different_columns_get_the_defaults_core_would(engine: Engine) -> None:
    with engine.begin() as connection:
        insert_rows(
            connection,
            ITEMS,
            [{"name": "a"}, {"name": "b", "state": "done", "blob": b"\x00\xff"}, {"name": "c"}],
        )
    with engine.connect() as connection:
        rows = connection.execute(
            select(ITEMS.c.name, ITEMS.c.state, ITEMS.c.tries, ITEMS.c.blob).order_by(ITEMS.c.name)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("a", "new", 0, None),
        ("b", "done", 0, b"\x00\xff"),
        ("c", "new", 0, None),
    ]


def test_an_unknown_column_is_named_and_nothing_is_written(engine: Engine) -> None:
    with pytest.raises(ValueError, match="items: no column named colour"), engine.begin() as c:
        insert_rows(c, ITEMS, [{"name": "a", "colour": "red"}])
    with engine.connect() as connection:
        assert connection.execute(select(ITEMS.c.id)).all() == []


def test_a_computed_default_left_out_is_refused_not_left_null(engine: Engine) -> None:
    with pytest.raises(ValueError, match="stamped: at must be given"), engine.begin() as c:
        insert_rows(c, STAMPED, [{"id": 1, "at": 7}, {"id": 2}])
    with engine.begin() as connection:
        insert_rows(connection, STAMPED, [{"id": 1, "at": 7}])
        assert connection.execute(select(STAMPED.c.at)).scalars().all() == [7]


def test_a_duplicate_in_a_pipelined_batch_fails_the_whole_transaction(engine: Engine) -> None:
    with engine.begin() as connection:
        insert_rows(connection, ITEMS, [{"name": "taken"}])
    with (
        pytest.raises(IntegrityError),
        engine.connect() as connection,
        connection.begin() as transaction,
        pipelined(connection),
    ):
        insert_rows(connection, ITEMS, [{"name": "fresh"}])
        insert_rows(connection, ITEMS, [{"name": "taken"}])  # the last row before the commit
        transaction.commit()
    with engine.connect() as connection:  # the pool hands out a clean connection
        assert connection.execute(select(ITEMS.c.name)).scalars().all() == ["taken"]


def test_a_failed_insert_does_not_quote_the_values_it_carried(engine: Engine) -> None:
    """Rows carry sealed payloads and blinded elements: errors name the statement only."""
    with engine.begin() as connection:
        insert_rows(connection, ITEMS, [{"name": "taken"}])
    with pytest.raises(IntegrityError) as caught, engine.begin() as connection:
        insert_rows(connection, ITEMS, [{"name": "taken", "blob": b"BLINDED-ELEMENT"}])
    assert "BLINDED-ELEMENT" not in str(caught.value)
    assert "parameters hidden" in str(caught.value)
