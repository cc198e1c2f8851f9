"""Fixtures shared by the audit log tests: a log signer and a migrated broker database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from gateway.audit.note import Ed25519Signer
from gateway.db import make_engine
from gateway.migrate import upgrade
from tests.postgres import Databases

ORIGIN = "test.gateway/gateway-audit"


@pytest.fixture
def signer() -> Ed25519Signer:
    return Ed25519Signer.generate(ORIGIN)


@pytest.fixture
def broker_engine(databases: Databases) -> Iterator[Engine]:
    """An empty broker database at the latest migration (SQLite, then PostgreSQL)."""
    engine = make_engine(databases.url("broker"))
    upgrade(engine, "broker")
    yield engine
    engine.dispose()
