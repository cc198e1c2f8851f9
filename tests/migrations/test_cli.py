"""`gateway db upgrade` and `gateway db check`, by configuration file or by URL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from typer.testing import CliRunner, Result

from gateway import migrate
from gateway.cli import app
from tests.postgres import opened

runner = CliRunner()


def said(result: Result) -> str:
    """The output with Rich's line wrapping undone."""
    return " ".join(result.output.split())


def node_config(folder: Path, database: Path) -> Path:
    path = folder / "bank-a.toml"
    path.write_text(
        "\n".join(
            [
                'node_id = "bank-a"',
                'role = "bank"',
                'listen = "127.0.0.1:7201"',
                'broker_endpoint = "127.0.0.1:7100"',
                f'database = "{database}"',
                'pki_bundle = "pki/nodes/bank-a"',
            ]
        )
    )
    return path


def test_upgrade_and_check_by_url(tmp_path: Path) -> None:
    database = str(tmp_path / "broker.db")
    args = ["--database", database, "--schema", "broker"]
    first = runner.invoke(app, ["db", "upgrade", *args])
    assert first.exit_code == 0, first.output
    (head,) = migrate.heads("broker")
    assert f"from empty at {head}" in said(first)
    again = runner.invoke(app, ["db", "upgrade", *args])
    assert again.exit_code == 0 and "already at" in said(again)
    checked = runner.invoke(app, ["db", "check", *args])
    assert checked.exit_code == 0 and "matches the code" in said(checked)

    with opened(database) as engine, engine.begin() as conn:
        conn.execute(text("ALTER TABLE messages ADD COLUMN stray INTEGER"))
    drifted = runner.invoke(app, ["db", "check", *args])
    assert drifted.exit_code == 1
    assert "column messages.stray: in the database only" in said(drifted)


def test_upgrade_by_node_configuration_infers_the_schema(tmp_path: Path) -> None:
    config = node_config(tmp_path, tmp_path / "bank-a.db")
    result = runner.invoke(app, ["db", "upgrade", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert said(result).startswith("node database")
    checked = runner.invoke(app, ["db", "check", "--config", str(config)])
    assert checked.exit_code == 0, checked.output


def test_unclear_targets_are_refused(tmp_path: Path) -> None:
    config = node_config(tmp_path, tmp_path / "bank-a.db")
    for args, reason in (
        ([], "either --config"),
        (["--config", str(config), "--database", "x.db"], "either --config"),
        (["--database", str(tmp_path / "x.db")], "needs --schema"),
        (["--config", str(config), "--schema", "broker"], "is a node configuration"),
        (["--config", str(tmp_path / "missing.toml")], "does not exist"),
    ):
        result = runner.invoke(app, ["db", "upgrade", *args])
        assert result.exit_code == 1, args
        assert reason in said(result), result.output


def test_check_of_a_missing_file_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    result = runner.invoke(app, ["db", "check", "--database", str(missing), "--schema", "broker"])
    assert result.exit_code == 1
    assert f"database file {missing} does not exist" in said(result)
    assert not missing.exists()
