"""What the broker and other members can learn: metadata, never an identifier.

A freeze and a blinded match query go through the real broker; then everything the
broker stores (messages, lifecycle events, the audit log) is searched for the account
and card numbers in every form that would give them away, and the sealed answers are
checked to open for their requester only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import grpc
import pytest
from sqlalchemy import MetaData, select
from sqlalchemy.orm import Session

from gateway.broker.models import MessageRow
from gateway.db import BrokerBase
from gateway.envelope.sealing import SealError, unseal
from gateway.identifiers import Identifier, IdentifierKind, normalise
from gateway.v1 import gateway_pb2 as pb
from nodes.actions.police import ActionSpec, issue_action
from nodes.matching import query_responders
from tests.actions.seed import seed_accounts
from tests.consortium import Consortium, request_state
from tests.postgres import opened
from tests.security.net import RECORDS, Net, build_index, serving
from tests.waiting import wait_for

ACCOUNT = "6222020200112233445"
CASE = {"case_ref": "C-2026-CONF", "legal_basis": "Anti-Telecom-Fraud Law art. 11"}


@pytest.fixture(scope="module")
def net(backend_consortium: Consortium) -> Iterator[Net]:
    """Broker and nodes storing on the module's backend (SQLite, then PostgreSQL)."""
    seed_accounts(backend_consortium, "bank-a", {ACCOUNT: 1_000_000})
    build_index(backend_consortium, "bank-b")
    with serving(backend_consortium, ("police-1", "bank-a", "bank-b")) as network:
        yield network


@pytest.fixture(scope="module")
def traffic(net: Net) -> dict[str, str]:
    """One freeze to bank-a and one blinded query to bank-b; their message ids."""
    police = net.client("police-1")
    freeze = issue_action(
        police,
        ActionSpec(
            recipient="bank-a",
            action="FREEZE",
            issuing_officer="officer-7",
            approving_officer="chief-2",
            identifier_kind="bank_account",
            identifier=ACCOUNT,
            amount_minor=5_000,
            duration_hours=24,
            **CASE,
        ),
    )
    wait_for(lambda: request_state(police, freeze.message_id) == "executed")
    card = normalise(RECORDS[5].kind, RECORDS[5].value)
    (outcome,) = query_responders(police, [card], ["bank-b"], **CASE)
    assert len(outcome.matches) == 1, outcome.error
    return {"freeze": freeze.message_id, "query": outcome.message_id}


def giveaways(identifier: Identifier) -> list[bytes]:
    """Forms that reveal an identifier: as typed, canonical, and its plain SHA-256."""
    canonical = identifier.canonical_input()
    digest = hashlib.sha256(canonical)
    return [identifier.value.encode(), canonical, digest.digest(), digest.hexdigest().encode()]


def broker_cells(net: Net) -> dict[str, list[bytes]]:
    """Every value in every table of the broker's database (whichever backend it is on,
    read as the database holds it, not through the broker's models), by table."""
    metadata = MetaData()
    cells: dict[str, list[bytes]] = {}
    with opened(net.consortium.broker_database) as engine, engine.connect() as connection:
        metadata.reflect(connection)
        for table in metadata.sorted_tables:
            found = cells.setdefault(table.name, [])
            for row in connection.execute(select(table)):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        found.append(bytes(value))
                    elif value is not None:
                        found.append(str(value).encode())
    return cells


def test_broker_stores_and_audits_no_identifier(net: Net, traffic: dict[str, str]) -> None:
    identifiers = [
        normalise(IdentifierKind.BANK_ACCOUNT, ACCOUNT),
        normalise(RECORDS[5].kind, RECORDS[5].value),
    ]
    tables = broker_cells(net)
    assert set(BrokerBase.metadata.tables) <= set(tables)  # every table the broker has
    for stored in ("messages", "events", "audit_entries", "checkpoints"):
        assert tables[stored], f"nothing stored in {stored}"  # the search does see
    cells = [cell for found in tables.values() for cell in found]
    assert any(traffic["freeze"].encode() in cell for cell in cells)
    for identifier in identifiers:
        for form in giveaways(identifier):
            assert not any(form in cell for cell in cells), identifier.kind


def test_answers_open_for_their_requester_only(net: Net, traffic: dict[str, str]) -> None:
    with opened(net.consortium.broker_database) as engine, Session(engine) as s:
        answers = {
            a.kind: (a.message_id, pb.Header.FromString(a.header), a.payload)
            for a in s.scalars(
                select(MessageRow).where(MessageRow.reply_to.in_(list(traffic.values())))
            )
        }
    assert sorted(answers) == ["ACTION_RECEIPT", "MATCH_RESPONSE"]
    # Both are sealed to the police: the broker follows a receipt's outcome, amount and
    # expiry from its signed header (no identifier, see above), not from the payload.
    for kind in ("ACTION_RECEIPT", "MATCH_RESPONSE"):
        message_id, header, payload = answers[kind]
        assert header.sealed, kind
        unseal(payload, message_id, net.consortium.pki.bundle("police-1").keys().sealing)
        for other in ("bank-a", "bank-b", "broker"):
            with pytest.raises(SealError):
                unseal(payload, message_id, net.consortium.pki.bundle(other).keys().sealing)


def test_only_the_parties_may_follow_a_message(net: Net, traffic: dict[str, str]) -> None:
    request = pb.StatusRequest(message_id=traffic["freeze"])
    assert net.stub_as("bank-a").Status(request, timeout=10).state == "executed"
    with pytest.raises(grpc.RpcError) as info:
        net.stub_as("bank-b").Status(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
