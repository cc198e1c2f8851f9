"""Database engines: a SQLite file by default, any SQLAlchemy URL (PostgreSQL) otherwise.

SQLite runs in WAL mode with a busy timeout so that a node's server and its CLI can use
the same file at once; writes are serialised by SQLite itself.
"""

from __future__ import annotations

import sqlite3
import time
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
            _use_wal(cursor)
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(
        url, pool_pre_ping=True, pool_size=10, max_overflow=10, hide_parameters=True
    )


WAL_SWITCH_S = 10.0
"""How long a new SQLite file may take to switch to WAL while other processes open it."""


def _use_wal(cursor: Any) -> None:
    """Put the file in WAL mode (it stays so). Switching needs the file to itself, and
    SQLite reports a clash with another process doing the same at once as "locked"
    without waiting, so the switch is retried for a while."""
    deadline = time.monotonic() + WAL_SWITCH_S
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal":
                return
            problem = sqlite3.OperationalError("the database file did not switch to WAL mode")
        except sqlite3.OperationalError as exc:
            problem = exc
        if time.monotonic() > deadline:
            raise problem
        time.sleep(0.01)


class BrokerBase(DeclarativeBase):
    """Tables of the broker's database."""


class NodeBase(DeclarativeBase):
    """Tables of a node's database."""
