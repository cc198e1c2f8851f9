"""Start-up migration: processes starting at once, databases made before migrations,
and tables that are not the gateway's. On SQLite and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, inspect, select, text

from gateway import migrate
from gateway.db import make_engine
from nodes.actions.numbers import BUILTIN_NUMBERS
from tests.postgres import Databases

STARTER = """
import logging, sys, time
from pathlib import Path
from gateway.db import make_engine
from gateway.migrate import upgrade
logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
url, schema, folder, me, count = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4], int(sys.argv[5])
engine = make_engine(url)
(folder / me).touch()
while len(list(folder.iterdir())) < count:  # every process imported: go at once
    time.sleep(0.005)
upgrade(engine, schema)
"""
STARTERS = 2


@pytest.fixture
def empty(databases: Databases) -> Iterator[Engine]:
    engine = make_engine(databases.url("node"))
    yield engine
    engine.dispose()


def test_processes_starting_at_once_migrate_exactly_once(
    databases: Databases, tmp_path: Path
) -> None:
    url = databases.url("shared")
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", STARTER, url, "node", str(tmp_path), str(i), str(STARTERS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for i in range(STARTERS)
    ]
    logs = [p.communicate(timeout=120)[0].decode() for p in processes]
    assert [p.returncode for p in processes] == [0] * STARTERS, "\n".join(logs)
    assert sum("node database migrated from empty" in log for log in logs) == 1, logs
    engine = make_engine(url)
    try:
        assert migrate.current(engine, "node") == migrate.heads("node")
        assert migrate.differences(engine, "node") == []
    finally:
        engine.dispose()


def made_before_migrations(engine: Engine) -> None:
    """What `create_all` made before migrations: the first revision without its version."""
    migrate.upgrade(engine, "node", "0001")
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {migrate.version_table('node')}"))


def test_a_database_made_before_migrations_is_adopted_with_its_rows(empty: Engine) -> None:
    made_before_migrations(empty)
    with empty.begin() as conn:
        conn.execute(insert(BUILTIN_NUMBERS).values(number="+8613812345678", status="active"))
    migrate.upgrade(empty, "node")
    assert migrate.current(empty, "node") == migrate.heads("node")
    assert migrate.differences(empty, "node") == []
    with empty.connect() as conn:
        assert conn.execute(select(BUILTIN_NUMBERS.c.status)).scalars().all() == ["active"]


def test_a_database_with_some_of_the_tables_gets_the_others(empty: Engine) -> None:
    """`gateway node ingest` used to create_all only the tables it had imported."""
    made_before_migrations(empty)
    with empty.begin() as conn:
        conn.execute(text("DROP TABLE numbers"))
        conn.execute(text("DROP TABLE inbound"))
    migrate.upgrade(empty, "node")
    assert migrate.differences(empty, "node") == []


def test_a_table_lacking_a_column_is_refused(empty: Engine) -> None:
    made_before_migrations(empty)
    with empty.begin() as conn:
        conn.execute(text("ALTER TABLE accounts DROP COLUMN held_minor"))
    with pytest.raises(migrate.MigrationError) as refused:
        migrate.upgrade(empty, "node")
    assert "lacks column accounts.held_minor of revision 0001" in str(refused.value)
    assert migrate.current(empty, "node") == ()


def test_a_database_newer_than_the_code_is_refused(empty: Engine) -> None:
    migrate.upgrade(empty, "node")
    with empty.begin() as conn:
        conn.execute(text(f"UPDATE {migrate.version_table('node')} SET version_num = '9999'"))
    with pytest.raises(migrate.MigrationError, match=r"node database at 9999: .*'9999'"):
        migrate.upgrade(empty, "node")


def test_an_agency_table_in_the_node_database_is_left_alone(empty: Engine) -> None:
    with empty.begin() as conn:
        conn.execute(text("CREATE TABLE bank_ledger (account VARCHAR(34) PRIMARY KEY)"))
        conn.execute(text("INSERT INTO bank_ledger VALUES ('6222020200112233445')"))
    migrate.upgrade(empty, "node")
    assert "bank_ledger" in inspect(empty).get_table_names()
    assert migrate.differences(empty, "node", strict=False) == []
    migrate.downgrade(empty, "node")
    with empty.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM bank_ledger")).scalar() == 1
