"""`gateway users` and four-eyes `gateway freeze` through the CLI, against a real broker
and bank (mTLS, SQLite). Codes are computed with RFC 6238 in tests/staff/totp.py.

Every refusal is one `error:` line with a non-zero exit, is in the staff trail, and
sends nothing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner, Result

from gateway.cli import app
from gateway.localnet import Consortium
from nodes.journal import OutboundRow
from nodes.staff.trail import recent
from tests.actions.seed import ACCOUNT, STATED, account, seed_accounts
from tests.consortium import client, running
from tests.staff.totp import totp
from tests.waiting import wait_for

runner = CliRunner()


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Consortium]:
    c = Consortium.create(tmp_path_factory.mktemp("four-eyes-cli"))
    seed_accounts(c, "bank-a", {ACCOUNT: 1_000_000})
    with running(c, ("police-1", "bank-a")):
        yield c


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


def one_error(result: Result) -> str:
    shown = f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    assert result.exit_code == 1 and "Traceback" not in result.output, shown
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, shown
    return errors[0]


class Staff:
    """Users added through `gateway users add`, with what it printed to them."""

    def __init__(self, net: Consortium, folder: Path) -> None:
        self.config = str(net.config_path("police-1"))
        self.folder = folder
        self.secrets: dict[str, str] = {}

    def add(self, user_id: str, role: str, *extra: str) -> Result:
        result = runner.invoke(
            app, ["users", "add", user_id, "--config", self.config, "--role", role, *extra]
        )
        assert result.exit_code == 0, result.output
        password = re.search(rf"password for {user_id}: (\S+)", result.stdout)
        secret = re.search(r"TOTP secret: ([A-Z2-7]+)", result.stdout)
        assert password is not None
        (self.folder / f"{user_id}.pw").write_text(password[1] + "\n")
        if secret is not None:
            self.secrets[user_id] = secret[1]
        return result

    def login(self, user_id: str, step: int = 0) -> list[str]:
        """`--as` options with a code of the current time step (+ `step` steps)."""
        now = int(time.time() * 1000) + step * 30_000
        code = totp(self.secrets[user_id], now) if user_id in self.secrets else ""
        return [
            "--as",
            user_id,
            "--password-file",
            str(self.folder / f"{user_id}.pw"),
            "--totp",
            code,
        ]

    def freeze(self, *argv: str) -> Result:
        return runner.invoke(app, ["freeze", *argv, "--config", self.config])


@pytest.fixture(scope="module")
def staff(net: Consortium, tmp_path_factory: pytest.TempPathFactory) -> Staff:
    s = Staff(net, tmp_path_factory.mktemp("staff"))
    s.add("wang", "officer")
    s.add("chen", "approver")
    s.add("li", "approver", "--no-totp")
    s.add("sun", "auditor", "--no-totp")
    s.add("zhao", "officer", "--no-totp")
    return s


def drafted(staff: Staff, *login: str, case: str = "C-CLI") -> str:
    result = staff.freeze(
        "draft",
        ACCOUNT,
        "--to",
        "bank-a",
        "--amount",
        "10.00",
        *STATED,
        "--case",
        case,
        "--basis",
        "art. 1",
        *login,
    )
    assert result.exit_code == 0, result.output
    assert ACCOUNT not in result.output
    found = re.search(r"drafted ([0-9a-f]{32})", result.stdout)
    assert found is not None, result.output
    return found[1]


def sent(net: Consortium) -> int:
    police = client(net, "police-1")
    police.client.close()
    with Session(police.engine) as s:
        return int(s.scalar(select(func.count()).select_from(OutboundRow)) or 0)


def test_users_add_prints_credentials_once_and_list_shows_no_secret(staff: Staff) -> None:
    made = staff.add("wu", "officer", "--name", "吴警官")
    assert "otpauth://totp/" in made.stdout and "shown once" in made.stdout
    listed = runner.invoke(app, ["users", "list", "--config", staff.config, "-o", "json"])
    assert listed.exit_code == 0, listed.output
    assert "wu" in listed.stdout and staff.secrets["wu"] not in listed.stdout
    pw = (staff.folder / "wu.pw").read_text().strip()
    assert pw not in listed.stdout
    again = runner.invoke(
        app, ["users", "add", "wu", "--config", staff.config, "--role", "officer"]
    )
    assert "exists already" in one_error(again)
    bad = runner.invoke(app, ["users", "add", "x", "--config", staff.config, "--role", "chief"])
    assert one_error(bad) == (
        "error: role: one of officer, approver, auditor, admin, tipoff_reader"
    )


def test_draft_then_approve_by_another_sends_it(net: Consortium, staff: Staff) -> None:
    held = int(str(account(net, "bank-a", ACCOUNT)["held_minor"]))
    draft_id = drafted(staff, *staff.login("wang"))
    listed = staff.freeze("drafts", "--state", "drafted", "-o", "json")
    assert draft_id in listed.stdout and ACCOUNT not in listed.stdout
    approved = staff.freeze("approve", draft_id[:12], *staff.login("chen"))
    assert approved.exit_code == 0, approved.output
    assert "stored by the broker" in approved.stdout
    wait_for(lambda: account(net, "bank-a", ACCOUNT)["held_minor"] == held + 1_000)
    events = [(e.user_id, e.event, e.outcome) for e in recent(client_engine(net), 5)]
    assert events == [
        ("chen", "send", "ok"),
        ("chen", "approve", "ok"),
        ("chen", "login", "ok"),
        ("wang", "draft", "ok"),
        ("wang", "login", "ok"),
    ]


def client_engine(net: Consortium) -> Engine:
    police = client(net, "police-1")
    police.client.close()
    return police.engine


def test_refusals_are_one_line_audited_and_send_nothing(net: Consortium, staff: Staff) -> None:
    draft_id = drafted(staff, *staff.login("zhao"))
    before = sent(net)
    cases = [
        (staff.freeze("approve", draft_id, *staff.login("zhao")), "role officer may not decide"),
        (
            staff.freeze(
                "draft",
                ACCOUNT,
                "--to",
                "bank-a",
                "--amount",
                "1",
                *STATED,
                "--case",
                "C",
                "--basis",
                "b",
                *staff.login("sun"),
            ),
            "role auditor may not draft actions",
        ),
        (
            staff.freeze(
                "approve",
                draft_id,
                "--as",
                "li",
                "--totp",
                "",
                "--password-file",
                str(staff.folder / "wang.pw"),
            ),
            "login refused: wrong user, password or code",
        ),
        (
            staff.freeze("approve", draft_id, *staff.login("li"), "--sha256", "ab" * 32),
            "the draft changed after you viewed it",
        ),
        (staff.freeze("approve", "f" * 32, *staff.login("li")), "no draft ffffffff"),
    ]
    for result, expected in cases:
        assert expected in one_error(result)
    assert sent(net) == before
    refused = [e for e in recent(client_engine(net), 10) if e.outcome == "refused"]
    assert {e.user_id for e in refused} >= {"zhao", "sun", "li"}


def test_own_draft_and_replayed_code_are_refused(staff: Staff) -> None:
    chen = staff.login("chen", step=1)
    own = drafted(staff, *chen)
    mine = staff.freeze("approve", own, *chen)
    assert (
        one_error(mine) == "error: login refused: that code was used already; wait for the next one"
    )
    again = staff.freeze(
        "reject",
        own,
        "--reason",
        "typo",
        "--as",
        "li",
        "--password-file",
        str(staff.folder / "li.pw"),
        "--totp",
        "",
    )
    assert again.exit_code == 0, again.output
    other = drafted(staff, *staff.login("zhao"))
    self_approval = staff.freeze("approve", other, *staff.login("li"))
    assert self_approval.exit_code == 0, self_approval.output
    chen_own = drafted(
        staff, "--as", "li", "--password-file", str(staff.folder / "li.pw"), "--totp", ""
    )
    refused = staff.freeze("approve", chen_own, *staff.login("li"))
    assert one_error(refused) == "error: nobody may decide their own draft"


def test_request_is_kept_as_a_drafting_alias(staff: Staff) -> None:
    result = staff.freeze(
        "request",
        ACCOUNT,
        "--to",
        "bank-a",
        "--amount",
        "1",
        *STATED,
        "--case",
        "C-ALIAS",
        "--basis",
        "b",
        *staff.login("zhao"),
    )
    assert result.exit_code == 0, result.output
    assert "now drafts" in result.stderr and "drafted" in result.stdout


def test_no_password_at_the_prompt_is_one_error_line(staff: Staff) -> None:
    result = staff.freeze("drafts")
    assert result.exit_code == 0
    prompted = runner.invoke(
        app,
        ["freeze", "reject", "f" * 32, "--config", staff.config, "--reason", "r", "--as", "li"],
    )
    assert "no draft" in one_error(prompted)
    draft_id = drafted(staff, *staff.login("zhao"))
    asked = runner.invoke(
        app, ["freeze", "reject", draft_id, "--config", staff.config, "--reason", "r", "--as", "li"]
    )
    assert one_error(asked).startswith("error: no password given")
