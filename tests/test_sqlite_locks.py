"""Opening a SQLite database again in this process keeps the locks it holds on the file.

POSIX drops every lock a process holds on a file when any descriptor of that file is
closed. Making a database file private (0600) must not open and close it once SQLite
has it open, or a writer's lock vanishes and another process writes under it: under a
burst this showed as "database disk image is malformed".
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from gateway.db import make_engine


def other_process_can_write(path: Path) -> bool:
    probe = (
        "import sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1], timeout=0)\n"
        "try:\n"
        "    c.execute('BEGIN IMMEDIATE'); c.rollback(); print('wrote')\n"
        "except sqlite3.OperationalError as e:\n"
        "    print('locked' if 'locked' in str(e) else e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=60
    )
    return done.stdout.strip() == "wrote"


def test_a_second_engine_on_the_database_keeps_this_process_s_write_lock(
    tmp_path: Path,
) -> None:
    path = tmp_path / "node.db"
    first = make_engine(f"sqlite:///{path}")
    with first.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
    holder = sqlite3.connect(path, timeout=0, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # this process now holds the write lock
    assert not other_process_can_write(path)
    second = make_engine(f"sqlite:///{path}")
    with second.connect() as connection:  # its first connection makes the file private
        connection.execute(text("SELECT count(*) FROM t"))
    assert not other_process_can_write(path), "opening the database again dropped our lock"
    holder.rollback()
    assert other_process_can_write(path)
    holder.close()
    first.dispose()
    second.dispose()
