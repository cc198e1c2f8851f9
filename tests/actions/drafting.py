"""Drafting and approving through the CLI, as two members of police staff."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from gateway.cli import app
from gateway.localnet import Consortium
from nodes.staff.accounts import add_user
from tests.consortium import client

PASSWORD = "a password long enough"
runner = CliRunner()


def staff(net: Consortium, folder: Path, officer: str, approver: str) -> Callable[[str], list[str]]:
    """Add an officer and an approver to police-1 (no TOTP); their login options."""
    police = client(net, "police-1")
    try:
        for user, role in ((officer, "officer"), (approver, "approver")):
            add_user(police.engine, user, role, password=PASSWORD, totp=False)
    finally:
        police.client.close()
    password = folder / "pw"
    password.write_text(PASSWORD + "\n")

    def login(user: str) -> list[str]:
        return ["--as", user, "--password-file", str(password), "--totp", ""]

    return login


def draft_and_approve(config: str, drafted: Any, login: list[str]) -> str:
    """Approve the draft that `drafted` (a CLI result) printed; the request id it sent."""
    assert drafted.exit_code == 0, drafted.output
    draft_id = drafted.output.split("drafted ")[1].split(":")[0]
    approved = runner.invoke(app, ["freeze", "approve", draft_id, "--config", config, *login])
    assert approved.exit_code == 0, approved.output
    return approved.output.split(" stored by")[0].split("request ")[-1]
