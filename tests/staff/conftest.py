"""A fresh, migrated node database per test, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

import nodes.schema  # noqa: F401  (registers the node's tables)
from gateway.migrate import upgrade
from tests.postgres import Databases, opened


@pytest.fixture
def engine(databases: Databases) -> Iterator[Engine]:
    with opened(databases.url("staff")) as engine:
        upgrade(engine, "node")
        yield engine
