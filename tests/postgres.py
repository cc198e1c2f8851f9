"""PostgreSQL for tests: the URL from GATEWAY_TEST_POSTGRES_URL, a fresh schema per use.

Without the variable the PostgreSQL tests skip; with GATEWAY_REQUIRE_POSTGRES=1 (CI) an
unreachable server fails them instead, so CI cannot pass without having run them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def postgres_base_url() -> str:
    url = os.environ.get("GATEWAY_TEST_POSTGRES_URL")
    required = os.environ.get("GATEWAY_REQUIRE_POSTGRES") == "1"
    if not url:
        if required:
            pytest.fail("GATEWAY_REQUIRE_POSTGRES=1 but GATEWAY_TEST_POSTGRES_URL is not set")
        pytest.skip("GATEWAY_TEST_POSTGRES_URL not set")
    try:
        with create_engine(url).connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        if required:
            pytest.fail(f"PostgreSQL required but unreachable: {type(exc).__name__}")
        pytest.skip("PostgreSQL unreachable")
    return url


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A URL whose connections use a new, empty schema, dropped afterwards."""
    base = postgres_base_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
