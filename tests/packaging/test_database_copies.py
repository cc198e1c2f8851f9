"""Copies of a live database: `db backup` is consistent, `audit verify` only reads a copy.

The broker's SQLite file is in WAL mode: while it runs, recent commits are in the `-wal`
file, so `cp broker.db` alone copies a database without them (here: without any table).
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.envelope.build import Draft
from gateway.localnet import Consortium
from tests.consortium import client, running

runner = CliRunner()
WIDE = {"COLUMNS": "400"}


@pytest.fixture(scope="module")
def net(consortium: Consortium) -> Iterator[Consortium]:
    with running(consortium, ("police-1", "bank-a")):
        send_pings(consortium, 3)
        yield consortium


def send_pings(consortium: Consortium, count: int) -> None:
    ctx = client(consortium, "police-1")
    try:
        for n in range(count):
            ctx.client.submit(
                Draft(
                    sender="police-1",
                    recipients=["bank-a"],
                    kind="PING",
                    payload=b"{}",
                    case_ref=f"C-{n}",
                )
            )
    finally:
        ctx.client.close()


def tables_of(path: Path) -> set[str]:
    """The tables a file holds by itself, read without its -wal (immutable)."""
    with sqlite3.connect(f"{path.resolve().as_uri()}?immutable=1", uri=True) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}


def verify(c: Consortium, database: Path) -> list[str]:
    args = ["audit", "verify", "--database", str(database), "--pki", str(c.root / "pki")]
    result = runner.invoke(app, args, env=WIDE)
    return [f"exit {result.exit_code}", *result.output.strip().splitlines()]


def one_error(lines: list[str]) -> str:
    assert lines[0] == "exit 1" and len(lines) == 2, lines
    assert lines[1].startswith("error: "), lines
    return lines[1]


def test_copy_without_its_wal_is_one_error_line(net: Consortium, tmp_path: Path) -> None:
    live = Path(net.broker_database)
    assert Path(f"{live}-wal").stat().st_size > 0  # the broker runs: its commits are there
    copy = tmp_path / "copy.db"
    shutil.copy(live, copy)
    assert "checkpoints" not in tables_of(copy)
    before = copy.read_bytes()
    line = one_error(verify(net, copy))
    assert f"{copy} has no table audit_entries, checkpoints" in line
    assert "-wal" in line and "gateway db backup" in line
    assert copy.read_bytes() == before


def test_copy_with_its_wal_is_read_and_left_unchanged(net: Consortium, tmp_path: Path) -> None:
    live = Path(net.broker_database)
    copy = tmp_path / "copy.db"
    for suffix in ("", "-wal"):
        shutil.copy(f"{live}{suffix}", f"{copy}{suffix}")
    before = copy.read_bytes(), Path(f"{copy}-wal").read_bytes()
    # A process of its own: a writer's last connection, closing, would fold the -wal in.
    args = ["audit", "verify", "--database", str(copy), "--pki", str(net.root / "pki")]
    done = subprocess.run(
        [sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "log verified" in done.stdout, done.stdout + done.stderr
    assert (copy.read_bytes(), Path(f"{copy}-wal").read_bytes()) == before


def test_missing_database_is_an_error_and_is_not_created(net: Consortium, tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    line = one_error(verify(net, missing))
    assert line == f"error: database file {missing} does not exist"
    assert not missing.exists()
    result = runner.invoke(app, ["audit", "prove", "0", "--database", str(missing)], env=WIDE)
    assert result.exit_code == 1
    assert result.output.strip() == f"error: database file {missing} does not exist"
    assert not missing.exists()


def test_backup_while_the_broker_writes_is_one_file_that_verifies(
    net: Consortium, tmp_path: Path
) -> None:
    backup = tmp_path / "backup.db"
    writer = threading.Thread(target=send_pings, args=(net, 20))
    writer.start()
    try:
        args = ["db", "backup", "--database", net.broker_database, "--to", str(backup)]
        result = runner.invoke(app, args, env=WIDE)
    finally:
        writer.join()
    assert result.exit_code == 0, result.output
    assert "integrity ok" in result.output
    # One self-contained file: moved alone to another folder, it holds the whole log.
    alone = tmp_path / "elsewhere" / "broker.db"
    alone.parent.mkdir()
    shutil.move(backup, alone)
    assert {"audit_entries", "checkpoints", "messages"} <= tables_of(alone)
    with sqlite3.connect(alone) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    lines = verify(net, alone)
    assert lines[0] == "exit 0" and lines[-1].startswith("log verified"), lines


def test_backup_of_a_node_by_its_config_matches_the_code(net: Consortium, tmp_path: Path) -> None:
    backup = tmp_path / "bank-a.db"
    config = str(net.config_path("bank-a"))
    result = runner.invoke(app, ["db", "backup", "--config", config, "--to", str(backup)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("node database ")
    checked = runner.invoke(
        app, ["db", "check", "--database", str(backup), "--schema", "node"], env=WIDE
    )
    assert checked.exit_code == 0 and "matches the code" in checked.output, checked.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--database", "{tmp}/absent.db"], "error: database file {tmp}/absent.db does not exist"),
        (["--database", "{live}"], "error: {live} exists: back up into a new file"),
        (
            ["--database", "postgresql+psycopg://u:secret@db/broker"],
            "error: postgresql+psycopg://u:***@db/broker is not a SQLite file: back up a "
            "server database with pg_dump",
        ),
        ([], "error: give either --config FILE or --database PATH"),
    ],
)
def test_backup_mistakes_are_one_error_line(
    net: Consortium, tmp_path: Path, args: list[str], expected: str
) -> None:
    live = net.broker_database
    to = live if "{live}" in " ".join(args) else str(tmp_path / "out.db")
    filled = [a.format(tmp=tmp_path, live=live) for a in args]
    result = runner.invoke(app, ["db", "backup", *filled, "--to", to], env=WIDE)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [expected.format(tmp=tmp_path, live=live)]
