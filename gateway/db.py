"""Database engines: a SQLite file by default, any SQLAlchemy URL (PostgreSQL) otherwise.

SQLite runs in WAL mode with a busy timeout so that a node's server and its CLI can use
the same file at once; writes are serialised by SQLite itself.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import NullPool

from gateway.pki.custody import FILE_MODE, private_file, private_folder

SIDE_FILES = ("-wal", "-shm", "-journal")
"""The files SQLite keeps beside a database; they hold its rows too."""


def database_url(value: str) -> str:
    """Accept a URL, or a plain path meaning a SQLite file."""
    if "://" in value:
        return value
    path = Path(value)
    private_folder(path.parent)
    return f"sqlite:///{path}"


def private_sqlite(url: str) -> None:
    """Create a SQLite file 0600 (and its folder 0700) before SQLite opens it.

    SQLite gives its `-wal`, `-shm` and journal files the mode of the database file, so
    they are 0600 too whatever the umask; side files left by an older version are
    narrowed. In-memory and URI databases are left alone.
    """
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    private_folder(path.parent)
    if not path.exists():
        private_file(path)
    # An existing database is narrowed by path, never opened here: closing a descriptor
    # of a database file drops every POSIX lock this process holds on it, which lets
    # another connection of this process write under a reader and corrupts the file.
    for file in (path, *(path.with_name(path.name + suffix) for suffix in SIDE_FILES)):
        narrow_to_owner(file)


def narrow_to_owner(path: Path) -> None:
    """chmod 0600 a file this process owns that is wider; a missing file is left so."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) != FILE_MODE:
        os.chmod(path, FILE_MODE)


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

        made_private = threading.Lock()
        done: list[bool] = []

        @event.listens_for(engine, "do_connect")
        def _private(*_: Any) -> None:
            with made_private:  # once, before the engine's first connection creates it
                if not done:
                    private_sqlite(url)
                    done.append(True)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            use_wal(cursor)
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(
        url, pool_pre_ping=True, pool_size=10, max_overflow=10, hide_parameters=True
    )


class DatabaseError(Exception):
    """A database named by the user cannot be opened as asked; the message says why."""


def open_read_only(value: str, tables: tuple[str, ...] = ()) -> Engine:
    """An engine that only reads a database someone else writes, or a copy of one.

    A SQLite file is opened read-only (`mode=ro`): nothing is written to it, its `-wal`
    file is read when it was copied too, and a missing file is an error instead of a new
    empty database. A server database reads in read-only transactions. `tables` must
    exist: a copy of a WAL database made without its `-wal` file may lack them all.
    """
    url = make_url(value if "://" in value else f"sqlite:///{value}")
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise DatabaseError("name a database file to read, not an in-memory database")
        path = Path(url.database)
        if not path.is_file():
            raise DatabaseError(f"database file {path} does not exist")
        uri = path.resolve().as_uri()
        engine = create_engine(
            url.set(database=uri, query={"mode": "ro", "uri": "true"}),
            connect_args={"timeout": 30},
            hide_parameters=True,
            poolclass=NullPool,
        )
    else:
        path = None
        read_only = "-c default_transaction_read_only=on"
        given = url.query.get("options", "")  # a URL's own options (search_path) stay
        options = f"{given} {read_only}".strip() if isinstance(given, str) else read_only
        engine = create_engine(
            url.difference_update_query(["options"]),
            connect_args={"options": options} if url.get_backend_name() == "postgresql" else {},
            hide_parameters=True,
            poolclass=NullPool,
        )
    shown = path or url.render_as_string(hide_password=True)
    try:
        with engine.connect() as connection:
            present = set(inspect(connection).get_table_names())
    except SQLAlchemyError as exc:
        engine.dispose()
        raise DatabaseError(f"cannot read {shown}: {getattr(exc, 'orig', None) or exc}") from exc
    missing = [t for t in tables if t not in present]
    if missing:
        engine.dispose()
        hint = (
            ": if it was copied while in use, copy its -wal file with it, or make a "
            "consistent copy with `gateway db backup`"
            if path
            else ""
        )
        raise DatabaseError(f"{shown} has no table {', '.join(missing)}{hint}")
    return engine


@dataclass(frozen=True)
class Backup:
    """What `backup_sqlite` wrote: a file of `pages` pages, `size` bytes."""

    path: Path
    pages: int
    size: int
    seconds: float


def backup_sqlite(value: str, to: Path) -> Backup:
    """Copy a SQLite database that may be in use into `to`, consistently.

    SQLite's backup API copies every page within one read transaction (`pages=-1`), so
    the copy is the database as of one commit, WAL contents included, while the broker
    or node goes on writing (in WAL mode a reader blocks no writer). The copy is turned
    into a single self-contained file (rollback journal, no `-wal`) and checked with
    `integrity_check`; it is written beside `to` and renamed, so `to` is never partial.
    """
    url = make_url(value if "://" in value else f"sqlite:///{value}")
    if url.get_backend_name() != "sqlite":
        shown = url.render_as_string(hide_password=True)
        raise DatabaseError(f"{shown} is not a SQLite file: back up a server database with pg_dump")
    if not url.database or not Path(url.database).is_file():
        raise DatabaseError(f"database file {url.database} does not exist")
    if to.exists():
        raise DatabaseError(f"{to} exists: back up into a new file")
    if not to.parent.is_dir():
        raise DatabaseError(f"folder {to.parent} does not exist")
    partial = to.with_name(f".{to.name}.partial")
    partial.unlink(missing_ok=True)
    started = time.monotonic()
    source_uri = f"{Path(url.database).resolve().as_uri()}?mode=ro"
    try:
        with (
            closing(sqlite3.connect(source_uri, uri=True, timeout=30)) as source,
            closing(sqlite3.connect(private_file(partial))) as copy,
        ):
            source.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")
            verdict = copy.execute("PRAGMA integrity_check").fetchone()[0]
            pages = int(copy.execute("PRAGMA page_count").fetchone()[0])
        if verdict != "ok":
            raise DatabaseError(f"the copy of {url.database} fails its integrity check: {verdict}")
        partial.replace(to)
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot back up {url.database}: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return Backup(to, pages, to.stat().st_size, time.monotonic() - started)


WAL_SWITCH_S = 10.0
"""How long a new SQLite file may take to switch to WAL while other processes open it."""


def use_wal(cursor: Any) -> None:
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
