"""PostgreSQL for tests: the URL from GATEWAY_TEST_POSTGRES_URL, a fresh schema per use.

Without the variable the PostgreSQL tests skip; with GATEWAY_REQUIRE_POSTGRES=1 (CI) an
unreachable server fails them instead, so CI cannot pass without having run them.

Storage tests run on both backends through the `backend` and `databases` fixtures
(tests/conftest.py), which hand out fresh databases of the backend under test.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from gateway.db import make_engine
from gateway.localnet import DEFAULT_NODES


def postgres_base_url() -> str:
    url = os.environ.get("GATEWAY_TEST_POSTGRES_URL")
    required = os.environ.get("GATEWAY_REQUIRE_POSTGRES") == "1"
    if not url:
        if required:
            pytest.fail("GATEWAY_REQUIRE_POSTGRES=1 but GATEWAY_TEST_POSTGRES_URL is not set")
        pytest.skip("GATEWAY_TEST_POSTGRES_URL not set")
    problem = _unreachable(url)
    if problem:
        if required:
            pytest.fail(f"PostgreSQL required but unreachable: {problem}")
        pytest.skip("PostgreSQL unreachable")
    return url


@functools.cache
def _unreachable(url: str) -> str:
    """Why the server cannot be used (the exception's type), or "" if it can; asked once."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return type(exc).__name__
    finally:
        engine.dispose()
    return ""


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A URL whose connections use a new, empty schema, dropped afterwards."""
    base = postgres_base_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text("SET lock_timeout = '30s'"))  # an open transaction: fail, not hang
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


BACKENDS = ("sqlite", pytest.param("postgres", marks=pytest.mark.postgres))
"""Parameters of the `backend` fixture: every storage test runs on both."""


class Databases:
    """Fresh, empty databases on one backend: SQLite files in a folder, or new PostgreSQL
    schemas (one per database, as each party has its own); dropped with the `stack`."""

    def __init__(self, backend: str, folder: Path, stack: ExitStack) -> None:
        self.backend = backend
        self.folder = folder
        self.stack = stack
        self._made = 0

    def url(self, name: str) -> str:
        """A new empty database: a SQLite path or a PostgreSQL URL."""
        if self.backend == "postgres":
            return self.stack.enter_context(fresh_schema())
        self._made += 1
        return str(self.folder / f"{name}-{self._made}.db")

    def for_consortium(
        self, nodes: tuple[tuple[str, str, str], ...] = DEFAULT_NODES
    ) -> dict[str, str] | None:
        """`Consortium.create`'s database_urls: None keeps its SQLite files on SQLite."""
        if self.backend != "postgres":
            return None
        return {"broker": self.url("broker"), **{node: self.url(node) for node, _, _ in nodes}}


@contextmanager
def opened(database: str) -> Iterator[Engine]:
    """An engine on a broker's or node's database (path or URL), disposed on exit."""
    engine = make_engine(database)
    try:
        yield engine
    finally:
        engine.dispose()
