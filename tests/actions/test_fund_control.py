"""Fund control through the real broker and bank: the stop-payment checks, the limit of
two stop-payments per account, freeze renewal, and the return of frozen funds.

Broker, police and bank serve in this process over mTLS; requests go through the
broker's policy and outbox, the bank's policy and adapter, and the receipts come back.
The expected outcomes are the published rules (PBoC 2016 emergency stop-payment rules,
2013 freezing provisions), not what the code happens to do. Runs on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gateway.envelope.build import now_ms
from gateway.localnet import Consortium
from nodes.actions.fund import FundControlError, Officers, renew_freeze, return_funds
from nodes.actions.holds import HoldRow
from nodes.actions.ledger import TRANSACTIONS, StatedTransaction, TransferRow
from nodes.actions.orders import Victim
from nodes.actions.police import ActionRequestRow, issue_action
from nodes.runtime import NodeContext
from tests.actions.seed import (
    PAID,
    PAID_AT_MS,
    PAID_MINOR,
    VICTIM,
    account,
    seed_accounts,
    spec,
)
from tests.consortium import client, request_state, running
from tests.postgres import Databases, opened
from tests.waiting import wait_for

SUSPECT = "6222020200112233445"
TWICE = "6222020200998877665"
HELD = "6222020200555544443"
VICTIM_HERE = "6222020200123456789"
CLOSED = "6222020200246813579"
STOPPED = "6222020200135792468"
OFFICERS = Officers("officer-7", "chief-2")


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory, databases: Databases) -> Iterator[Consortium]:
    c = Consortium.create(tmp_path_factory.mktemp("fund"), database_urls=databases.for_consortium())
    seed_accounts(
        c,
        "bank-a",
        {
            SUSPECT: 1_000_000,
            TWICE: 1_000_000,
            HELD: 800_000,
            VICTIM_HERE: 10_000,
            CLOSED: 0,
            STOPPED: 300_000,
        },
    )
    with opened(c.node_config("bank-a").database) as engine, engine.begin() as conn:
        from nodes.actions.accounts import BUILTIN_ACCOUNTS

        conn.execute(
            update(BUILTIN_ACCOUNTS)
            .where(BUILTIN_ACCOUNTS.c.account_no == CLOSED)
            .values(status="closed")
        )
        conn.execute(
            update(BUILTIN_ACCOUNTS)
            .where(BUILTIN_ACCOUNTS.c.account_no == VICTIM_HERE)
            .values(holder_name="李娜")
        )
    with running(c, ("police-1", "bank-a")):
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


def outcome(ctx: NodeContext, request_id: str) -> tuple[str, str]:
    row = settled(ctx, request_id)
    return row.state, row.reason


def freeze(police: NodeContext, number: str, **changes: object) -> ActionRequestRow:
    values: dict[str, object] = {
        "identifier": number,
        "action": "FREEZE",
        "whole_balance": True,
        "amount_minor": 0,
        "duration_hours": 72,
        "account_name": "",
        "transaction": None,
    }
    values.update(changes)
    row = settled(police, issue_action(police, spec(**values)).message_id)
    assert row.state == "executed", row.reason
    return row


def test_stop_payment_executes_when_name_and_transaction_match_as_written_by_police(
    net: Consortium, police: NodeContext
) -> None:
    # Traditional characters, full-width and a space: the same holder as 张伟 on record.
    request = spec(identifier=SUSPECT, account_name="張　偉", transaction=PAID)
    assert outcome(police, issue_action(police, request).message_id) == ("executed", "")
    assert account(net, "bank-a", SUSPECT)["held_minor"] == 200_000


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"account_name": "李四"}, "account name: does not match the holder"),
        ({"account_name": ""}, "account name: a stop-payment must state the holder's name"),
        ({"transaction": None}, "transaction: a stop-payment must state"),
        (
            {"transaction": StatedTransaction(PAID_AT_MS, PAID_MINOR + 1, VICTIM)},
            "transaction: the amount differs",
        ),
        (
            {"transaction": StatedTransaction(PAID_AT_MS + 11 * 60_000, PAID_MINOR, VICTIM)},
            "transaction: no transaction on this account within 10 minutes",
        ),
        (
            {"transaction": StatedTransaction(PAID_AT_MS, PAID_MINOR, "6222020200112233445")},
            "transaction: the counterparty account differs",
        ),
    ],
)
def test_stop_payment_is_rejected_with_the_reason_when_its_statement_does_not_match(
    net: Consortium, police: NodeContext, changes: dict[str, object], reason: str
) -> None:
    before = account(net, "bank-a", HELD)
    request = spec(identifier=HELD, **changes)
    state, why = outcome(police, issue_action(police, request).message_id)
    assert state == "rejected" and reason in why
    assert account(net, "bank-a", HELD) == before


def test_a_third_stop_payment_on_an_account_is_refused_by_the_banks_policy(
    net: Consortium, police: NodeContext
) -> None:
    first = settled(police, issue_action(police, spec(identifier=TWICE)).message_id)
    release = spec(
        action="RELEASE",
        identifier="",
        amount_minor=0,
        duration_hours=0,
        target_request_id=first.request_id,
        account_name="",
        transaction=None,
    )
    assert outcome(police, issue_action(police, release).message_id)[0] == "executed"
    second = settled(police, issue_action(police, spec(identifier=TWICE)).message_id)
    assert (first.state, second.state) == ("executed", "executed")
    held = account(net, "bank-a", TWICE)["held_minor"]
    state, why = outcome(police, issue_action(police, spec(identifier=TWICE)).message_id)
    assert state == "rejected"
    assert "third stop-payment is refused" in why
    assert account(net, "bank-a", TWICE)["held_minor"] == held
    # A freeze is still possible: the limit is on stop-payments only.
    assert freeze(police, TWICE, whole_balance=False, amount_minor=1_000).state == "executed"


def test_a_freeze_in_force_is_renewed_again_and_again_an_expired_one_is_not(
    net: Consortium, police: NodeContext
) -> None:
    frozen = freeze(police, SUSPECT, whole_balance=False, amount_minor=300_000)
    expires = frozen.hold_expires_at_ms
    for _ in range(3):  # no limit on renewals, each up to 180 days
        renewal = renew_freeze(police, frozen.request_id, 4320, "art. 11", OFFICERS)
        assert outcome(police, renewal.message_id) == ("executed", "")
        expires += 4320 * 3_600_000
        with Session(police.engine) as s:
            row = s.get(ActionRequestRow, frozen.request_id)
            assert row is not None and row.hold_expires_at_ms == expires
    # A stop-payment is not renewed: the bank says so.
    stopped = settled(police, issue_action(police, spec(identifier=STOPPED)).message_id)
    assert stopped.state == "executed"
    extend_stop = spec(
        action="EXTEND",
        identifier="",
        amount_minor=0,
        duration_hours=24,
        target_request_id=stopped.request_id,
        account_name="",
        transaction=None,
    )
    state, why = outcome(police, issue_action(police, extend_stop).message_id)
    assert state == "rejected" and "only a freeze is renewed" in why

    # Time passes at the bank: the freeze expires; renewing it is refused there...
    with opened(net.node_config("bank-a").database) as engine, engine.begin() as conn:
        conn.execute(
            update(HoldRow)
            .where(HoldRow.request_id == frozen.request_id)
            .values(expires_at_ms=now_ms() - 1)
        )
    late = renew_freeze(police, frozen.request_id, 24, "art. 11", OFFICERS)
    state, why = outcome(police, late.message_id)
    assert state == "rejected" and "new freeze is needed" in why
    # ...and by the police node itself once its own record shows the expiry.
    with Session(police.engine) as s, s.begin():
        row = s.get(ActionRequestRow, frozen.request_id)
        assert row is not None
        row.hold_expires_at_ms = now_ms() - 1
    with pytest.raises(FundControlError, match="expired; issue a new freeze"):
        renew_freeze(police, frozen.request_id, 24, "art. 11", OFFICERS)


def police_requests(police: NodeContext) -> list[ActionRequestRow]:
    with Session(police.engine) as s:
        return list(s.scalars(select(ActionRequestRow)).all())


def test_return_of_funds_moves_money_once_and_refuses_what_it_cannot_do(
    net: Consortium, police: NodeContext
) -> None:
    frozen = freeze(police, HELD, whole_balance=False, amount_minor=500_000)
    before = account(net, "bank-a", HELD)
    victim = Victim("bank-a", VICTIM_HERE, "李 娜")

    with pytest.raises(FundControlError, match="larger than the frozen amount"):
        return_funds(police, frozen.request_id, 500_001, victim, "art. 11", OFFICERS)
    too_much = spec(  # past the police node's own check: the bank refuses it as well
        action="RETURN_FUNDS",
        identifier="",
        amount_minor=500_001,
        duration_hours=0,
        target_request_id=frozen.request_id,
        account_name="",
        transaction=None,
        victim=victim,
    )
    state, why = outcome(police, issue_action(police, too_much).message_id)
    assert state == "rejected" and "return larger than the held amount" in why
    closed = return_funds(
        police, frozen.request_id, 1_000, Victim("bank-a", CLOSED, "张伟"), "art. 11", OFFICERS
    )
    assert outcome(police, closed.message_id) == ("rejected", "victim account: is closed")
    assert account(net, "bank-a", HELD) == before

    done = return_funds(police, frozen.request_id, 120_000, victim, "art. 11", OFFICERS)
    row = settled(police, done.message_id)
    assert (row.state, row.executed_amount_minor) == ("executed", 120_000)
    assert row.due_at_ms > row.requested_at_ms
    after = account(net, "bank-a", HELD)
    assert after["balance_minor"] == int(str(before["balance_minor"])) - 120_000
    assert after["held_minor"] == int(str(before["held_minor"])) - 120_000
    assert account(net, "bank-a", VICTIM_HERE)["balance_minor"] == 10_000 + 120_000
    with opened(net.node_config("bank-a").database) as engine, Session(engine) as s:
        transfer = s.get(TransferRow, done.message_id)
        assert transfer is not None and transfer.amount_minor == 120_000
        hold = s.get(HoldRow, frozen.request_id)
        assert hold is not None and hold.amount_minor == 380_000
        postings = s.execute(
            select(TRANSACTIONS.c.account_no, TRANSACTIONS.c.amount_minor).where(
                TRANSACTIONS.c.txn_id.startswith(done.message_id)
            )
        ).all()
    assert sorted(postings) == sorted([(HELD, -120_000), (VICTIM_HERE, 120_000)])
    with Session(police.engine) as s:
        target = s.get(ActionRequestRow, frozen.request_id)
        assert target is not None and target.executed_amount_minor == 380_000

    # To another bank: the holding bank debits and records the outbound transfer.
    away = return_funds(
        police, frozen.request_id, 380_000, Victim("bank-b", VICTIM, "王芳"), "art. 11", OFFICERS
    )
    assert outcome(police, away.message_id) == ("executed", "")
    with opened(net.node_config("bank-a").database) as engine, Session(engine) as s:
        hold = s.get(HoldRow, frozen.request_id)
        assert hold is not None and (hold.state, hold.amount_minor) == ("returned", 0)
    with Session(police.engine) as s:
        target = s.get(ActionRequestRow, frozen.request_id)
        assert target is not None and target.state == "returned"


def test_every_fund_control_step_is_in_the_audit_log_under_its_case(net: Consortium) -> None:
    """As `gateway audit search --case` finds them: a decision entry per request."""
    import json

    from gateway.audit.source import EntryFilter, stored_entries

    with opened(net.broker_database) as engine:
        entries = [json.loads(e.leaf) for e in stored_entries(engine)]
    for kind in ("STOP_PAYMENT", "FREEZE", "EXTEND", "RETURN_FUNDS"):
        search = EntryFilter(case_ref="C-2026-001", kind=kind, decision="ALLOW")
        assert any(search.matches(e) for e in entries), kind
    assert not any(EntryFilter(case_ref="C-OTHER").matches(e) for e in entries)


def test_the_cli_drafts_renewals_and_returns_and_lists_the_warning(
    net: Consortium, police: NodeContext, tmp_path: Path
) -> None:
    import json

    from gateway.cli import app
    from tests.actions.drafting import draft_and_approve, runner, staff

    config = str(net.config_path("police-1"))
    login = staff(net, tmp_path, "wang", "chen")
    basis = ["--basis", "art. 11", *login("wang")]
    frozen = freeze(police, VICTIM_HERE, whole_balance=False, amount_minor=5_000)
    listed = runner.invoke(
        app, ["freeze", "list", "--config", config, "--case", "C-2026-001", "--output", "json"]
    )
    assert listed.exit_code == 0, listed.output
    row = next(r for r in json.loads(listed.stdout) if r["request_id"] == frozen.request_id)
    assert row["warning"].startswith("expires in 2 d 23 h: renew it")  # 72 h < 7 days

    renewal = runner.invoke(
        app,
        ["freeze", "renew", frozen.request_id[:10], "--config", config, "--hours", "24", *basis],
    )
    request_id = draft_and_approve(config, renewal, login("chen"))
    assert outcome(police, request_id) == ("executed", "")
    back = runner.invoke(
        app,
        ["freeze", "return", frozen.request_id, "--config", config, "--amount", "20.00",
         "--to-bank", "bank-b", "--to-account", VICTIM, "--to-name", "王芳", *basis],
    )  # fmt: skip
    request_id = draft_and_approve(config, back, login("chen"))
    assert outcome(police, request_id) == ("executed", "")
    too_much = runner.invoke(
        app,
        ["freeze", "return", frozen.request_id, "--config", config, "--amount", "31.00",
         "--to-bank", "bank-b", "--to-account", VICTIM, "--to-name", "王芳", *basis],
    )  # fmt: skip
    assert too_much.exit_code == 1
    assert too_much.stderr.startswith("error: return: larger than the frozen amount (30.00)")
