"""Database engines: a SQLite file by default, any SQLAlchemy URL (PostgreSQL) otherwise.

SQLite runs in WAL mode with a busy timeout so that a node's server and its CLI can use
the same file at once; writes are serialised by SQLite itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase


def database_url(value: str) -> str:
    """Accept a URL, or a plain path meaning a SQLite file."""
    if "://" in value:
        return value
    path = Path(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def make_engine(url: str) -> Engine:
    """An engine whose errors never quote the values bound to a statement (rows hold
    sealed payloads and blinded elements, which must not reach a log line)."""
    url = database_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            hide_parameters=True,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(
        url, pool_pre_ping=True, pool_size=10, max_overflow=10, hide_parameters=True
    )


class BrokerBase(DeclarativeBase):
    """Tables of the broker's database."""


class NodeBase(DeclarativeBase):
    """Tables of a node's database."""
