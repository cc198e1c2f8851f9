"""`gateway alert` as people type it: a bank raises an alert, the police list it with the
reporter sealed, a tip-off reader opens it, an officer drafts a stop-payment from it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from gateway.cli import app
from gateway.localnet import Consortium
from nodes.staff.accounts import add_user
from tests.actions.seed import ACCOUNT, HOLDER, STATED, seed_accounts
from tests.consortium import client, running
from tests.waiting import wait_for

runner = CliRunner()
PASSWORD = "a password long enough"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Consortium, Path]]:
    root = tmp_path_factory.mktemp("alert-cli")
    c = Consortium.create(root, (("police-1", "police", "P"), ("bank-a", "bank", "A")))
    seed_accounts(c, "bank-a", {ACCOUNT: 1_000_000})
    police = client(c, "police-1")
    try:
        for user, role in (("officer-7", "officer"), ("reader-1", "tipoff_reader")):
            add_user(police.engine, user, role, password=PASSWORD, totp=False)
    finally:
        police.client.close()
    (root / "pw").write_text(PASSWORD + "\n")
    with running(c):
        yield c, root / "pw"


def login(user: str, password: Path) -> list[str]:
    return ["--as", user, "--password-file", str(password), "--totp", ""]


def test_raise_list_open_and_draft_from_the_command_line(
    net: tuple[Consortium, Path],
) -> None:
    c, password = net
    bank, police = str(c.config_path("bank-a")), str(c.config_path("police-1"))
    holder, txn = ["--holder", HOLDER], ["--txn-time", STATED[3], "--txn-amount", STATED[5]]
    raised = runner.invoke(
        app,
        [
            "alert", "raise", "--config", bank, "--region", "310101", "--kind", "bank_account",
            "--identifier", ACCOUNT, "--category", "unusual_withdrawal",
            "--seen", "cash withdrawal on a caller's instructions", "--branch", "Huangpu",
            "--raised-by", "teller-app", *holder, *txn,
            "--reporter-role", "teller", "--reporter-name", "陈静",
        ],
    )  # fmt: skip
    assert raised.exit_code == 0, raised.output
    assert "to police-1 (region 310101), stored by the broker" in raised.output
    alert_id = raised.output.split("alert ")[1].split()[0]

    nobody = runner.invoke(
        app,
        [
            "alert", "raise", "--config", bank, "--region", "440300", "--kind", "bank_account",
            "--identifier", ACCOUNT, "--category", "other", "--seen", "x", "--branch", "B",
            "--raised-by", "t",
        ],
    )  # fmt: skip
    assert nobody.exit_code == 1
    assert nobody.stderr.startswith("error: region 440300: no police node's jurisdiction")
    assert ACCOUNT not in nobody.output

    # "Stored by the broker" is the acknowledgement; the delivery to police-1 follows
    # from the broker's outbox, so the police list is read once it has arrived.
    def police_list() -> Result:
        return runner.invoke(app, ["alert", "list", "--config", police, "--output", "json"])

    wait_for(lambda: alert_id in police_list().output, timeout=20)
    listed = police_list()
    assert listed.exit_code == 0, listed.output
    assert alert_id in listed.output and '"reporter": "sealed"' in listed.output
    assert "陈静" not in listed.output

    refused = runner.invoke(
        app, ["alert", "reporter", alert_id[:10], "--config", police, *login("officer-7", password)]
    )
    assert refused.exit_code == 1
    assert "only the tipoff_reader role" in refused.stderr
    opened = runner.invoke(
        app, ["alert", "reporter", alert_id[:10], "--config", police, *login("reader-1", password)]
    )
    assert opened.exit_code == 0, opened.output
    assert "陈静" in opened.stdout and "staff trail" in opened.stderr

    drafted = runner.invoke(
        app,
        [
            "alert", "draft-stop", alert_id[:10], "--config", police, "--case", "C-9",
            "--basis", "Anti-Telecom-Fraud Law art. 11", *login("officer-7", password),
        ],
    )  # fmt: skip
    assert drafted.exit_code == 0, drafted.output
    assert "drafted " in drafted.output and "gateway freeze approve" in drafted.output
