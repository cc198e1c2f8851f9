"""What a bank or carrier ingests it can act on, and the match label says what it did.

`gateway node ingest` on a node with the built-in tables fills `accounts` or `numbers`
as well as the match records; a freeze or suspension then finds the identifier, and
the label police decrypt on their next query shows the new status. Broker, police,
bank and carrier serve in this process over mTLS, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.identifiers import IdentifierKind, normalise
from gateway.localnet import Consortium
from nodes.actions.police import ActionSpec, issue_action
from nodes.matching import query_responders
from nodes.runtime import NodeContext
from tests.actions.seed import account, number_status
from tests.actions.test_freeze_workflow import police, settled, spec
from tests.consortium import running
from tests.postgres import Databases

__all__ = ["police"]  # the police node's client, a fixture of the freeze workflow tests

runner = CliRunner()
ACCOUNT = "6222020200112233445"
PHONE = "+8613812345678"
BANK_CSV = f"kind,value,record_id,status,balance_minor\nbank_account,{ACCOUNT},A1,ACTIVE,500000\n"
CARRIER_CSV = f"kind,value,record_id,status\nphone,{PHONE},S1,ACTIVE\n"


def ingest(net: Consortium, node: str, csv: Path) -> str:
    result = runner.invoke(
        app, ["node", "ingest", str(csv), "--config", str(net.config_path(node))]
    )
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory, databases: Databases) -> Iterator[Consortium]:
    root = tmp_path_factory.mktemp("ingest-actions")
    c = Consortium.create(root, database_urls=databases.for_consortium())
    (root / "accounts.csv").write_text(BANK_CSV)
    (root / "subscribers.csv").write_text(CARRIER_CSV)
    ingest(c, "bank-a", root / "accounts.csv")
    ingest(c, "carrier-1", root / "subscribers.csv")
    with running(c, ("police-1", "bank-a", "carrier-1")):
        yield c


def freeze(**changes: object) -> ActionSpec:
    values: dict[str, object] = {
        "action": "FREEZE",
        "whole_balance": True,
        "amount_minor": 0,
        "account_name": "",
        "transaction": None,
    }
    values.update(duration_hours=72, case_ref="C-2026-017", **changes)
    return spec(**values)


def outcome(police: NodeContext, request_id: str) -> tuple[str, str]:
    row = settled(police, request_id)
    return row.state, row.reason


def label(police: NodeContext, node: str, kind: IdentifierKind, value: str) -> dict[str, str]:
    identifier = normalise(kind, value)
    [answer] = query_responders(
        police, [identifier], [node], case_ref="C-2026-017", legal_basis="art. 11"
    )
    assert answer.ok, answer.error
    [match] = answer.matches
    return match.fields


def test_an_ingested_number_can_be_suspended_and_its_label_says_so(
    net: Consortium, police: NodeContext
) -> None:
    assert label(police, "carrier-1", IdentifierKind.PHONE, PHONE)["status"] == "ACTIVE"
    request = issue_action(
        police,
        freeze(
            recipient="carrier-1",
            action="SUSPEND_NUMBER",
            identifier_kind="phone",
            identifier=PHONE,
            whole_balance=False,
        ),
    )
    assert outcome(police, request.message_id) == ("executed", "")
    assert number_status(net, "carrier-1", PHONE) == "suspended"
    assert label(police, "carrier-1", IdentifierKind.PHONE, PHONE)["status"] == "suspended"


def test_an_ingested_account_can_be_frozen_and_a_reexport_does_not_thaw_it(
    net: Consortium, police: NodeContext
) -> None:
    assert account(net, "bank-a", ACCOUNT)["balance_minor"] == 500_000
    assert label(police, "bank-a", IdentifierKind.BANK_ACCOUNT, ACCOUNT)["status"] == "ACTIVE"
    request = issue_action(police, freeze(identifier=ACCOUNT))
    assert outcome(police, request.message_id) == ("executed", "")
    assert account(net, "bank-a", ACCOUNT)["status"] == "frozen"
    assert label(police, "bank-a", IdentifierKind.BANK_ACCOUNT, ACCOUNT)["status"] == "frozen"

    # The bank loads its nightly export again, which still says ACTIVE.
    again = net.root / "accounts-2.csv"
    again.write_text(BANK_CSV.replace("500000", "480000"))
    output = ingest(net, "bank-a", again)
    assert "accounts table (actions): 0 added, 1 updated, 1 kept frozen" in " ".join(output.split())
    row = account(net, "bank-a", ACCOUNT)
    assert (row["status"], row["balance_minor"]) == ("frozen", 480_000)
    assert label(police, "bank-a", IdentifierKind.BANK_ACCOUNT, ACCOUNT)["status"] == "frozen"
