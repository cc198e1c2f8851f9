"""One broker process per SQLite database: a second one is refused at start-up.

SQLite is the one-process default (`make demo`): its outbox and deadline claims rely on
row locks it does not have, and its writers queue behind one file lock. Several brokers
serve one consortium only over PostgreSQL. The guard is an advisory lock (`flock`) on a
file beside the database, held for the broker's life, so it ends with the process,
SIGKILL included, and a restarted broker never finds a stale lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from sqlalchemy.engine import make_url

from gateway.db import database_url


class SecondBroker(RuntimeError):
    """Another broker process already serves this SQLite database."""


class SoleBroker:
    """The lock a broker holds on its SQLite database; `release` when it stops."""

    def __init__(self, fd: int | None) -> None:
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file drops the flock
            self._fd = None


def lock_path(database: str) -> Path | None:
    """The lock file of a SQLite database file; None for PostgreSQL or in-memory."""
    url = make_url(database_url(database))
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(f"{url.database}.broker-lock")


def hold_sole_broker(database: str) -> SoleBroker:
    """Take this SQLite database for this process, or raise `SecondBroker` saying why."""
    path = lock_path(database)
    if path is None:
        return SoleBroker(None)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise SecondBroker(
            f"another broker (pid {holder}) already serves the SQLite database "
            f"{path.with_suffix('')}; SQLite takes one broker process: stop that one, or "
            "run every broker on one PostgreSQL database "
            "(--database postgresql+psycopg://user@host/db)"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return SoleBroker(fd)
