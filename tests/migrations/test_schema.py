"""The migrations build exactly the code's tables, on SQLite and on PostgreSQL.

If a drift test fails, a table changed (or was added to `nodes/schema.py`) without a
migration: write one with `gateway db revision --schema <broker|node> -m "<what>"`,
review it, and run these tests again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, text

from gateway import migrate
from gateway.db import make_engine
from gateway.migrate import SCHEMAS, Schema
from tests.postgres import Databases


@pytest.fixture(scope="module", params=SCHEMAS)
def schema(request: pytest.FixtureRequest) -> Schema:
    name: Schema = request.param
    return name


@pytest.fixture(scope="module")
def migrated(databases: Databases, schema: Schema) -> Iterator[Engine]:
    """An empty database of the module's backend, upgraded once to head."""
    engine = make_engine(databases.url(schema))
    assert migrate.current(engine, schema) == ()
    migrate.upgrade(engine, schema)
    yield engine
    engine.dispose()


@pytest.fixture
def empty(databases: Databases) -> Iterator[Engine]:
    """An empty database of the module's backend, for a test that changes it."""
    engine = make_engine(databases.url("empty"))
    yield engine
    engine.dispose()


def tables(engine: Engine, schema: Schema) -> set[str]:
    return set(inspect(engine).get_table_names()) - {migrate.version_table(schema)}


def test_upgrade_of_an_empty_database_reaches_head(migrated: Engine, schema: Schema) -> None:
    assert migrate.current(migrated, schema) == migrate.heads(schema)
    assert tables(migrated, schema) == set(migrate.target_metadata(schema).tables)


def test_migrated_database_matches_the_code(migrated: Engine, schema: Schema) -> None:
    """The drift test: what `alembic check` does, listing every difference."""
    found = migrate.differences(migrated, schema)
    assert not found, (
        f"the {schema} migrations and the code's tables differ; write a migration with "
        f'`gateway db revision --schema {schema} -m "..."`:\n  ' + "\n  ".join(found)
    )


def test_migrated_database_is_what_create_all_makes(
    migrated: Engine, schema: Schema, databases: Databases
) -> None:
    """Beyond the drift test: autoincrement (SERIAL or not), defaults, index names."""
    reference = make_engine(databases.url("reference"))
    try:
        migrate.target_metadata(schema).create_all(reference)
        assert described(migrated, schema) == described(reference, schema)
    finally:
        reference.dispose()


def described(engine: Engine, schema: Schema) -> dict[str, Any]:
    """Every table as reflected; unique constraints by their columns (on SQLite,
    create_all leaves them unnamed, the migrations name them so later ones can drop them)."""
    found = inspect(engine)
    return {
        table: {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], c.get("default"), c.get("autoincrement"))
                for c in found.get_columns(table)
            ],
            "primary key": found.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in found.get_indexes(table)
            ),
            "unique": sorted(tuple(u["column_names"]) for u in found.get_unique_constraints(table)),
        }
        for table in sorted(tables(engine, schema))
    }


def test_upgrade_again_changes_nothing(migrated: Engine, schema: Schema) -> None:
    before = described(migrated, schema)
    migrate.upgrade(migrated, schema)
    migrate.upgrade(migrated, schema)
    assert migrate.current(migrated, schema) == migrate.heads(schema)
    assert described(migrated, schema) == before


def test_downgrade_to_base_removes_every_table(empty: Engine, schema: Schema) -> None:
    migrate.upgrade(empty, schema)
    migrate.downgrade(empty, schema, "base")
    assert tables(empty, schema) == set()
    assert migrate.current(empty, schema) == ()
    migrate.upgrade(empty, schema)  # and up again
    assert migrate.current(empty, schema) == migrate.heads(schema)


def test_drift_is_listed_table_by_table_and_column_by_column(empty: Engine) -> None:
    migrate.upgrade(empty, "node")
    with empty.begin() as conn:
        conn.execute(text("ALTER TABLE numbers ADD COLUMN stray INTEGER"))
        conn.execute(text("DROP TABLE accounts"))
        conn.execute(text("CREATE TABLE bank_ledger (id INTEGER PRIMARY KEY)"))
    found = migrate.differences(empty, "node")
    assert "column numbers.stray: in the database only" in found
    assert "table accounts: in the code, not in the database" in found
    assert "table bank_ledger: in the database only" in found
    if empty.dialect.name == "postgresql":  # SQLite cannot change a column's type in place
        with empty.begin() as conn:
            conn.execute(text("ALTER TABLE numbers ALTER COLUMN status TYPE VARCHAR(40)"))
        assert (
            "column numbers.status type: VARCHAR(40) in the database, VARCHAR(16) in the code"
            in migrate.differences(empty, "node")
        )
    # A node's database may hold the agency's own tables: not a difference when lenient.
    lenient = migrate.differences(empty, "node", strict=False)
    assert "table bank_ledger: in the database only" not in lenient
    assert "column numbers.stray: in the database only" in lenient
