"""Inquiries (查询) through the real broker, bank and carrier.

The bank answers an account's holder details and its transactions in the window, the
carrier a number's subscriber status, each sealed to the police; the broker holds the
answer only sealed (its audit log sees the digest), refuses a window longer than its
policy allows, and a bank's configuration limits which fields the police may see.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from gateway.audit.store import AuditEntryRow
from gateway.broker.models import MessageRow
from gateway.localnet import Consortium
from nodes.actions.fund import Officers, inquire, inquiry_answer
from nodes.actions.ledger import TRANSACTIONS
from nodes.actions.police import ActionRequestRow
from nodes.runtime import NodeContext
from tests.actions.seed import HOLDER, PAID_AT_MS, PAID_MINOR, VICTIM, seed_accounts, seed_numbers
from tests.consortium import client, request_state, running
from tests.postgres import Databases, opened
from tests.waiting import wait_for

ACCOUNT = "6222020200112233445"
PHONE = "+8613812345678"
DAY = 24 * 3_600_000
OFFICERS = Officers("officer-7", "chief-2")
CASE = "C-2026-INQ"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory, databases: Databases) -> Iterator[Consortium]:
    c = Consortium.create(tmp_path_factory.mktemp("inq"), database_urls=databases.for_consortium())
    seed_accounts(c, "bank-a", {ACCOUNT: 1_000_000})
    seed_accounts(c, "bank-b", {ACCOUNT: 50_000})
    with opened(c.node_config("bank-a").database) as engine, engine.begin() as conn:
        conn.execute(
            insert(TRANSACTIONS),
            [  # one debit a day after the seeded credit, one outside the window
                {
                    "txn_id": "t-out",
                    "account_no": ACCOUNT,
                    "at_ms": PAID_AT_MS + DAY,
                    "amount_minor": -450_000,
                    "counterparty_account": "6222020200998877665",
                },
                {
                    "txn_id": "t-old",
                    "account_no": ACCOUNT,
                    "at_ms": PAID_AT_MS - 40 * DAY,
                    "amount_minor": 1,
                    "counterparty_account": "",
                },
            ],
        )
    seed_numbers(c, "carrier-1", [PHONE])
    with c.config_path("bank-b").open("a") as toml:
        toml.write('\n[inquiry_fields]\npolice = "status"\n')
    with running(c, ("police-1", "bank-a", "bank-b", "carrier-1")):
        yield c


@pytest.fixture
def police(net: Consortium) -> Iterator[NodeContext]:
    ctx = client(net, "police-1")
    yield ctx
    ctx.client.close()


def ask(police: NodeContext, to: str, kind: str, value: str, days: int = 30) -> str:
    window = (PAID_AT_MS - DAY, PAID_AT_MS - DAY + days * DAY)
    request_id = inquire(police, to, kind, value, window, CASE, "art. 11", OFFICERS).message_id
    wait_for(lambda: request_state(police, request_id) not in ("", "requested"))
    return request_id


def test_a_bank_answers_holder_and_the_windows_transactions_sealed_to_the_police(
    net: Consortium, police: NodeContext
) -> None:
    request_id = ask(police, "bank-a", "bank_account", ACCOUNT)
    answer = inquiry_answer(police, request_id)
    assert answer is not None
    assert answer["fields"] == {
        "holder_name": HOLDER,
        "status": "active",
        "balance_minor": 1_000_000,
        "held_minor": 0,
    }
    assert answer["transactions"] == [
        {
            "txn_id": f"seed-{ACCOUNT}",
            "at_ms": PAID_AT_MS,
            "amount_minor": PAID_MINOR,
            "counterparty_account": VICTIM,
        },
        {
            "txn_id": "t-out",
            "at_ms": PAID_AT_MS + DAY,
            "amount_minor": -450_000,
            "counterparty_account": "6222020200998877665",
        },
    ]
    assert answer["more_transactions"] is False
    # The broker holds the request and the answer only sealed: no name, no account.
    with opened(net.broker_database) as engine, Session(engine) as s:
        payloads = [m.payload for m in s.scalars(select(MessageRow)).all()]
        leaves = list(s.scalars(select(AuditEntryRow.leaf)).all())
    stored = b"".join([*payloads, *leaves])
    assert HOLDER.encode() not in stored and ACCOUNT.encode() not in stored
    assert b"INQUIRY" in stored


def test_a_carrier_answers_a_numbers_subscriber_status(
    net: Consortium, police: NodeContext
) -> None:
    answer = inquiry_answer(police, ask(police, "carrier-1", "phone", PHONE))
    assert answer is not None and answer["fields"] == {"status": "active"}
    assert "transactions" not in answer


def test_a_bank_answers_only_the_fields_its_configuration_allows(
    net: Consortium, police: NodeContext
) -> None:
    answer = inquiry_answer(police, ask(police, "bank-b", "bank_account", ACCOUNT))
    assert answer == {
        "fields": {"status": "active"},
        "window": {"from_ms": PAID_AT_MS - DAY, "until_ms": PAID_AT_MS + 29 * DAY},
    }


def test_an_inquiry_window_longer_than_the_policy_allows_is_refused_at_the_broker(
    net: Consortium, police: NodeContext
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        ask(police, "bank-a", "bank_account", ACCOUNT, days=367)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "no policy allows" in (info.value.details() or "")


def test_an_unknown_account_is_a_rejected_receipt(police: NodeContext) -> None:
    request_id = ask(police, "bank-a", "bank_account", "6222020200000000000")
    with Session(police.engine) as s:
        row = s.get(ActionRequestRow, request_id)
        assert row is not None and (row.state, row.reason) == ("rejected", "unknown account")
    assert inquiry_answer(police, request_id) is None


def test_the_cli_drafts_an_inquiry_and_shows_its_answer(
    net: Consortium, police: NodeContext, tmp_path: Path
) -> None:
    import json

    from gateway.cli import app
    from tests.actions.drafting import draft_and_approve, runner, staff

    config = str(net.config_path("police-1"))
    login = staff(net, tmp_path, "li", "zhao")
    asked = ["--config", config, "--to", "bank-a", "--case", CASE, "--basis", "art. 11"]
    drafted = runner.invoke(
        app,
        ["freeze", "inquire", ACCOUNT, *asked, *login("li"),
         "--from", "2026-05-20T00:00+08:00", "--until", "2026-06-10T00:00+08:00"],
    )  # fmt: skip
    assert ACCOUNT not in drafted.output
    request_id = draft_and_approve(config, drafted, login("zhao"))
    wait_for(lambda: request_state(police, request_id) == "executed")
    shown = runner.invoke(app, ["freeze", "answer", request_id, "--config", config])
    assert shown.exit_code == 0, shown.output
    assert HOLDER in shown.stdout and "5000.00" in shown.stdout and "-4500.00" in shown.stdout
    as_json = runner.invoke(
        app, ["freeze", "answer", request_id, "--config", config, "--output", "json"]
    )
    assert json.loads(as_json.stdout)["fields"]["holder_name"] == HOLDER
    backwards = runner.invoke(
        app,
        ["freeze", "inquire", ACCOUNT, *asked, *login("li"),
         "--from", "2026-06-10T00:00+08:00", "--until", "2026-05-20T00:00+08:00"],
    )  # fmt: skip
    assert backwards.exit_code == 1
    assert backwards.stderr == "error: --until: must come after --from\n"
