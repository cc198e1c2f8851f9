"""Deadlines at the broker, expiry at the bank, and redelivery with no second effect."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from gateway.broker.delivery import NodeDialer
from gateway.broker.lifecycle import check_deadlines
from gateway.broker.models import EventRow, MessageRow
from gateway.broker.server import RunningBroker
from gateway.localnet import Consortium
from gateway.pki.store import NodeBundle
from gateway.transport import TlsFiles
from gateway.v1 import gateway_pb2 as pb
from nodes.actions.police import issue_action
from nodes.actions.responder import HoldSweeper
from nodes.runtime import RunningNode
from tests.actions.seed import ACCOUNT, account, seed_accounts, spec
from tests.consortium import client, request_state, running

HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def net(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Consortium, RunningBroker, dict[str, RunningNode]]]:
    c = Consortium.create(tmp_path_factory.mktemp("deadlines"))
    seed_accounts(c, "bank-a", {ACCOUNT: 1_000_000})
    with running(c, ("police-1", "bank-a")) as (broker, nodes):
        yield c, broker, nodes


def stop_payment(c: Consortium, hours: int = 2, recipient: str = "bank-a") -> str:
    ctx = client(c, "police-1")
    try:
        return issue_action(
            ctx,
            spec(recipient=recipient, case_ref="C-9", amount_minor=10_000, duration_hours=hours),
        ).message_id
    finally:
        ctx.client.close()


def wait_state(c: Consortium, request_id: str, state: str) -> None:
    police = client(c, "police-1")
    try:
        for _ in range(150):
            if request_state(police, request_id) == state:
                return
            time.sleep(0.1)
    finally:
        police.client.close()
    raise AssertionError(f"request never reached {state}")


def test_redelivery_returns_the_first_receipt_and_holds_nothing_more(
    net: tuple[Consortium, RunningBroker, dict[str, RunningNode]],
) -> None:
    c, broker, _ = net
    request_id = stop_payment(c)
    wait_state(c, request_id, "executed")
    held = account(c, "bank-a", ACCOUNT)["held_minor"]
    with broker.broker.audit.session() as s:
        stored = s.get(MessageRow, request_id)
        assert stored is not None
        envelope = pb.Envelope(
            header=stored.header, payload=stored.payload, signature=stored.signature
        )
    bundle = NodeBundle(c.pki.bundle("broker").folder)
    dialer = NodeDialer(TlsFiles(bundle.tls_cert, bundle.tls_key, bundle.ca_cert), timeout_s=10)
    bank = c.pki.directory().get("bank-a")
    assert bank is not None
    try:
        first = dialer.deliver(bank, envelope)
        second = dialer.deliver(bank, envelope)
    finally:
        dialer.close()
    assert first.accepted and second.accepted
    assert first.response == second.response  # the same signed receipt, not a new one
    assert account(c, "bank-a", ACCOUNT)["held_minor"] == held


def test_unanswered_request_is_flagged_overdue_once(
    net: tuple[Consortium, RunningBroker, dict[str, RunningNode]],
) -> None:
    c, broker, _ = net
    request_id = stop_payment(c, recipient="bank-b")  # bank-b is not running
    audit = broker.broker.audit
    with audit.session() as s:
        due = s.get(MessageRow, request_id).answer_due_at_ms  # type: ignore[union-attr]
    size = audit.size
    assert check_deadlines(audit, due - 1) == (0, 0)
    overdue, _ = check_deadlines(audit, due + 1)
    assert overdue >= 1
    assert check_deadlines(audit, due + 2)[0] == 0  # flagged once only
    with audit.session() as s:
        row = s.get(MessageRow, request_id)
        assert row is not None and row.overdue == 1 and row.state == "requested"
        states = s.scalars(select(EventRow.state).where(EventRow.message_id == request_id))
        assert "overdue" in states.all()
    entries = [leaf for _, leaf in audit.read(size, 100)]
    assert any(b'"state":"overdue"' in leaf and request_id.encode() in leaf for leaf in entries)


def test_expired_hold_is_released_by_the_bank_and_marked_by_the_broker(
    net: tuple[Consortium, RunningBroker, dict[str, RunningNode]],
) -> None:
    c, broker, nodes = net
    request_id = stop_payment(c, hours=1)
    wait_state(c, request_id, "executed")
    held = int(str(account(c, "bank-a", ACCOUNT)["held_minor"]))
    later = int(time.time() * 1000) + 2 * HOUR_MS
    released = HoldSweeper(nodes["bank-a"].ctx).sweep(now=later)
    assert released >= 1
    assert int(str(account(c, "bank-a", ACCOUNT)["held_minor"])) == held - 10_000 * released
    _, expired = check_deadlines(broker.broker.audit, later)
    assert expired >= 1
    with broker.broker.audit.session() as s:
        row = s.get(MessageRow, request_id)
        assert row is not None and row.state == "expired"
