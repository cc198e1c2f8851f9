"""Stop-payments, freezes, extensions, releases and suspensions through the real broker.

Broker, bank and carrier serve in this process over mTLS; the police node submits
through its broker client and the receipts come back through the broker's outbox. The
module runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from sqlalchemy.orm import Session

from gateway.broker.models import MessageRow
from gateway.localnet import Consortium
from nodes.actions.police import ActionRequestRow, issue_action
from nodes.runtime import NodeContext
from tests.actions.seed import ACCOUNT, account, number_status, seed_accounts, seed_numbers, spec
from tests.consortium import client, request_state, running
from tests.postgres import Databases, opened
from tests.waiting import wait_for

POOR = "6222020200998877665"
FROZEN = "6222020200555544443"
PHONE = "+8613812345678"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory, databases: Databases) -> Iterator[Consortium]:
    c = Consortium.create(
        tmp_path_factory.mktemp("freeze"), database_urls=databases.for_consortium()
    )
    seed_accounts(
        c, "bank-a", {ACCOUNT: 1_000_000, POOR: 30_000, FROZEN: 5_000}, frozenset({FROZEN})
    )
    seed_numbers(c, "carrier-1", [PHONE])
    with running(c, ("police-1", "bank-a", "carrier-1")):
        yield c


@pytest.fixture
def police(net: Consortium) -> Iterator[NodeContext]:
    ctx = client(net, "police-1")
    yield ctx
    ctx.client.close()


def settled(ctx: NodeContext, request_id: str) -> ActionRequestRow:
    wait_for(lambda: request_state(ctx, request_id) not in ("", "requested"))
    with Session(ctx.engine) as s:
        row = s.get(ActionRequestRow, request_id)
        assert row is not None
        return row


def broker_state(net: Consortium, request_id: str) -> str:
    with opened(net.broker_database) as broker, Session(broker) as s:
        row = s.get(MessageRow, request_id)
        return row.state if row is not None else ""


def test_stop_payment_executes_and_the_receipt_reaches_the_police(
    net: Consortium, police: NodeContext
) -> None:
    before = account(net, "bank-a", ACCOUNT)
    result = issue_action(police, spec())
    assert result.decision == "ALLOW" and result.leaf_index >= 0
    row = settled(police, result.message_id)
    assert row.state == "executed"
    assert row.executed_amount_minor == 200_000
    assert row.hold_expires_at_ms - row.effective_at_ms == 24 * 3_600_000
    after = account(net, "bank-a", ACCOUNT)
    assert after["held_minor"] == int(str(before["held_minor"])) + 200_000
    assert after["status"] == "active"  # a stop-payment holds an amount, no freeze
    wait_for(lambda: broker_state(net, result.message_id) == "executed")


def test_partial_hold_when_the_balance_is_short(net: Consortium, police: NodeContext) -> None:
    result = issue_action(police, spec(identifier=POOR, amount_minor=50_000))
    row = settled(police, result.message_id)
    assert (row.state, row.executed_amount_minor) == ("partial", 30_000)
    assert "insufficient balance" in row.reason
    assert account(net, "bank-a", POOR)["held_minor"] == 30_000


def test_business_rejections_are_receipts_and_change_nothing(
    net: Consortium, police: NodeContext
) -> None:
    before = {n: account(net, "bank-a", n) for n in (ACCOUNT, POOR, FROZEN)}
    cases = {
        "unknown account": spec(identifier="6222020200000000000"),
        "already frozen": spec(identifier=FROZEN, action="FREEZE", duration_hours=72),
        "nothing available": spec(identifier=POOR),  # fully held by the previous test
        "no active hold": spec(
            action="RELEASE",
            identifier="",
            amount_minor=0,
            target_request_id="f" * 32,
            duration_hours=0,
        ),
    }
    for expected, request in cases.items():
        result = issue_action(police, request)
        row = settled(police, result.message_id)
        assert row.state == "rejected", expected
        assert expected in row.reason
        wait_for(lambda r=result: broker_state(net, r.message_id) == "rejected")
    assert {n: account(net, "bank-a", n) for n in before} == before


def test_policy_refusals_never_reach_the_bank(net: Consortium, police: NodeContext) -> None:
    before = account(net, "bank-a", ACCOUNT)
    for request, why in (
        (spec(duration_hours=49), "stop-payment over 48 h"),
        (spec(legal_basis=""), "missing legal basis"),
    ):
        with pytest.raises(grpc.RpcError) as info:
            issue_action(police, request)
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED, why
    assert account(net, "bank-a", ACCOUNT) == before


def test_request_from_a_bank_is_refused(net: Consortium) -> None:
    bank = client(net, "bank-a")
    try:
        with pytest.raises(grpc.RpcError) as info:
            issue_action(bank, spec(recipient="bank-a"))
    finally:
        bank.client.close()
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_freeze_extend_release(net: Consortium, police: NodeContext) -> None:
    frozen = issue_action(
        police, spec(action="FREEZE", whole_balance=True, amount_minor=0, duration_hours=72)
    )
    row = settled(police, frozen.message_id)
    assert row.state == "executed"
    assert account(net, "bank-a", ACCOUNT)["status"] == "frozen"
    first_expiry = row.hold_expires_at_ms

    extended = issue_action(
        police,
        spec(
            action="EXTEND",
            identifier="",
            amount_minor=0,
            duration_hours=24,
            target_request_id=frozen.message_id,
        ),
    )
    assert settled(police, extended.message_id).state == "executed"
    with Session(police.engine) as s:
        original = s.get(ActionRequestRow, frozen.message_id)
        assert original is not None
        assert original.state == "extended"
        assert original.hold_expires_at_ms == first_expiry + 24 * 3_600_000
    wait_for(lambda: broker_state(net, frozen.message_id) == "extended")

    held_before = int(str(account(net, "bank-a", ACCOUNT)["held_minor"]))
    released = issue_action(
        police,
        spec(
            action="RELEASE",
            identifier="",
            amount_minor=0,
            duration_hours=0,
            target_request_id=frozen.message_id,
        ),
    )
    assert settled(police, released.message_id).state == "executed"
    after = account(net, "bank-a", ACCOUNT)
    assert after["status"] == "active"
    assert int(str(after["held_minor"])) == held_before - row.executed_amount_minor
    wait_for(lambda: broker_state(net, frozen.message_id) == "released")


def test_suspend_and_restore_a_number(net: Consortium, police: NodeContext) -> None:
    suspend = issue_action(
        police,
        spec(
            recipient="carrier-1",
            action="SUSPEND_NUMBER",
            identifier_kind="phone",
            identifier="138 1234 5678",
            amount_minor=0,
            duration_hours=72,
        ),
    )
    assert settled(police, suspend.message_id).state == "executed"
    assert number_status(net, "carrier-1", PHONE) == "suspended"
    restore = issue_action(
        police,
        spec(
            recipient="carrier-1",
            action="RESTORE_NUMBER",
            identifier="",
            amount_minor=0,
            duration_hours=0,
            target_request_id=suspend.message_id,
        ),
    )
    assert settled(police, restore.message_id).state == "executed"
    assert number_status(net, "carrier-1", PHONE) == "active"


def test_freeze_cli_draft_approve_list_and_status(net: Consortium, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from gateway.cli import app
    from nodes.staff.accounts import add_user

    runner = CliRunner()
    config = str(net.config_path("police-1"))
    common = ["--config", config, "--case", "C-CLI-1", "--basis", "art. 11"]
    police = client(net, "police-1")
    password = tmp_path / "pw"
    password.write_text("a password long enough\n")
    for user, role in (("o-1", "officer"), ("o-2", "approver")):
        add_user(police.engine, user, role, password="a password long enough", totp=False)
    police.client.close()

    def login(user: str) -> list[str]:
        return ["--as", user, "--password-file", str(password), "--totp", ""]

    drafted = runner.invoke(
        app,
        [
            "freeze",
            "draft",
            ACCOUNT,
            "--bank",
            "bank-a",
            "--amount",
            "12.34",
            "--hours",
            "6",
            *common,
            *login("o-1"),
        ],
    )
    assert drafted.exit_code == 0, drafted.output
    assert ACCOUNT not in drafted.output
    draft_id = drafted.output.split("drafted ")[1].split(":")[0]
    result = runner.invoke(app, ["freeze", "approve", draft_id, "--config", config, *login("o-2")])
    assert result.exit_code == 0, result.output
    request_id = result.output.split("request ")[1].split()[0]
    police = client(net, "police-1")
    try:
        settled(police, request_id)
    finally:
        police.client.close()
    listed = runner.invoke(app, ["freeze", "list", "--config", config, "--case", "C-CLI-1"])
    assert listed.exit_code == 0, listed.output
    assert "executed" in listed.output and "12.34" in listed.output
    status = runner.invoke(app, ["freeze", "status", request_id, "--config", config])
    assert status.exit_code == 0, status.output
    assert "executed" in status.output and "delivered:bank-a" in status.output

    bad = runner.invoke(
        app,
        [
            "freeze",
            "draft",
            "not-an-account",
            "--bank",
            "bank-a",
            "--amount",
            "1",
            *common,
            *login("o-1"),
        ],
    )
    assert bad.exit_code == 1
    assert "bank_account" in bad.output and "not-an-account" not in bad.output
