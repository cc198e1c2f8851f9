"""What the gateway creates is its owner's alone whatever the umask: keys, databases with
their -wal and -shm files, exports (0600) and folders (0700)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.db import make_engine


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_a_new_sqlite_database_and_its_side_files_are_0600(
    tmp_path: Path, loose_umask: None
) -> None:
    path = tmp_path / "var" / "node" / "bank-a.db"
    engine = make_engine(str(path))
    with engine.connect() as connection:
        connection.execute(text("CREATE TABLE accounts (handle TEXT)"))
        connection.execute(text("INSERT INTO accounts VALUES ('acct')"))
        connection.commit()
        sides = [path.with_name(path.name + s) for s in ("-wal", "-shm")]
        assert all(side.exists() for side in sides)  # WAL mode: the rows are in -wal now
        assert {p.name: mode(p) for p in (path, *sides)} == {
            "bank-a.db": 0o600,
            "bank-a.db-wal": 0o600,
            "bank-a.db-shm": 0o600,
        }
    engine.dispose()
    assert mode(path.parent) == 0o700 and mode(path.parent.parent) == 0o700


def test_a_database_left_world_readable_is_narrowed_when_opened(
    tmp_path: Path, loose_umask: None
) -> None:
    path = tmp_path / "old.db"
    engine = make_engine(str(path))
    with engine.connect() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
        connection.commit()
    engine.dispose()
    path.chmod(0o644)
    engine = make_engine(str(path))
    assert mode(path) == 0o644  # nothing happens before the first connection
    with engine.connect():
        pass
    engine.dispose()
    assert mode(path) == 0o600


def run_gateway(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        umask=0o022,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout


def test_cli_writes_pki_exports_and_databases_0600_in_0700_folders_under_umask_022(
    tmp_path: Path,
) -> None:
    pki, out, config = tmp_path / "pki", tmp_path / "srv" / "bank-a", tmp_path / "cfg"
    run_gateway("pki", "init", "--consortium", "example.org", "--dir", str(pki))
    run_gateway("pki", "issue", "--node", "bank-a", "--role", "bank", "--dir", str(pki))
    run_gateway("pki", "export", "--node", "bank-a", "--out", str(out), "--dir", str(pki))
    run_gateway(
        "node", "init", "--node", "bank-a", "--role", "bank", "--bundle", str(out),
        "--out", str(config / "bank-a.toml"), "--database", str(tmp_path / "db" / "bank-a.db"),
    )  # fmt: skip
    run_gateway("db", "upgrade", "--config", str(config / "bank-a.toml"))
    created = [p for root in (pki, out, config, tmp_path / "db") for p in [root, *root.rglob("*")]]
    assert any(p.name == "bank-a.db" for p in created)
    wrong = {str(p.relative_to(tmp_path)): oct(mode(p)) for p in created}
    wrong = {
        name: m
        for name, m in wrong.items()
        if m != ("0o700" if (tmp_path / name).is_dir() else "0o600")
    }
    assert wrong == {}
