"""Receipts that slip past one of the broker's checks unless each check holds on its own.

`test_receipts.py` tries the plain attacks; these are the ones that need a little more:
a receipt for a request the policy refused (it was never delivered), a receipt with an
outcome no action has, and, returned over a delivery, a receipt for another request the
bank also holds, an answer of another kind, a receipt signed by another bank, and a
receipt the broker refused before (sent by Submit too early), which must end the
request's redelivery rather than start it over. The module runs on SQLite and on
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.broker.outbox import OutboxWorker
from gateway.envelope.build import Draft
from gateway.v1 import gateway_pb2 as pb
from tests.broker.test_receipts import (
    ACCOUNT,
    Net,
    assert_denied_and_routed_nowhere,
    bad_bank,
    broker_row,
    closed_with,
    deliveries,
    entries_about,
    net,
    receipt,
    refusal,
    stop_payment,
    stub_as,
    tried_at_least_once,
)
from tests.consortium import request_state

__all__ = ["bad_bank", "net"]  # fixtures shared with test_receipts.py

BadBank = Callable[[Callable[[pb.Header], pb.Envelope]], None]


def test_a_receipt_for_a_request_the_policy_refused_is_denied(net: Net) -> None:
    bank_b = net.consortium.pki.directory().get("bank-b")
    assert bank_b is not None
    refused = Draft(
        sender="police-1",
        recipients=["bank-b"],
        kind="STOP_PAYMENT",
        payload=ACCOUNT.encode(),
        case_ref="C-RECEIPTS",
        purpose="telecom fraud",
        legal_basis="Anti-Telecom-Fraud Law art. 11",
        seal_to=bank_b.seal_key,
        terms=pb.ActionTerms(
            action="STOP_PAYMENT",
            amount_minor=10_000,
            duration_hours=100,
            issuing_officer="officer-7",
            approving_officer="chief-2",
        ),
    )  # a stop-payment lasts at most 48 hours: the policy refuses it, nothing is queued
    envelope = refused.sign(net.consortium.pki.bundle("police-1").keys().signing)
    assert "policy" in (refusal(net, "police-1", envelope).details() or "")
    assert deliveries(net, refused.message_id) == []
    forged = receipt(net, "bank-b", refused.message_id)
    err = refusal(net, "bank-b", forged)
    assert_denied_and_routed_nowhere(net, forged, err, "never delivered")


def test_a_receipt_with_an_outcome_no_action_has_is_denied(net: Net) -> None:
    """The asked bank cannot leave its request awaiting, or give it a made-up state."""
    request_id = stop_payment(net, "bank-b")
    tried_at_least_once(net, request_id)
    for outcome in ("DELIVERED", "RELEASED", ""):
        odd = receipt(net, "bank-b", request_id, outcome=outcome)
        err = refusal(net, "bank-b", odd)
        assert_denied_and_routed_nowhere(
            net, odd, err, "the outcome must be one of EXECUTED, PARTIAL, REJECTED"
        )
    row = broker_row(net, request_id)
    assert row is not None and row.state == "requested"
    stub_as(net, "bank-b").Submit(receipt(net, "bank-b", request_id), timeout=10)
    row = broker_row(net, request_id)
    assert row is not None and row.state == "executed"  # the real receipt still counts


def test_a_direct_receipt_for_another_request_the_bank_holds_is_refused(
    net: Net, bad_bank: BadBank
) -> None:
    held: dict[str, str] = {}

    def answer(header: pb.Header) -> pb.Envelope:
        if "other" in held:  # the receipt of the other request, returned for this one
            return receipt(net, "bank-b", held["other"])
        return receipt(net, "bank-b", header.message_id, recipients=("police-2",))

    bad_bank(answer)
    other = stop_payment(net, "bank-b")
    assert "request's sender only" in closed_with(net, other)
    row = broker_row(net, other)
    assert row is not None and row.state == "delivered"  # delivered, awaiting its receipt
    held["other"] = other
    request_id = stop_payment(net, "bank-b")
    assert "not an ACTION_RECEIPT for this request" in closed_with(net, request_id)
    for message_id in (other, request_id):
        row = broker_row(net, message_id)
        assert row is not None and row.state == "delivered"  # neither one "executed"
        assert request_state(net.police, message_id) == "requested"


def test_a_direct_answer_of_another_kind_is_refused(net: Net, bad_bank: BadBank) -> None:
    bank_b = net.consortium.pki.bundle("bank-b").keys().signing
    bad_bank(
        lambda header: Draft(
            sender="bank-b",
            recipients=["police-1"],
            kind="PONG",
            payload=b"{}",
            reply_to=header.message_id,
        ).sign(bank_b)
    )
    request_id = stop_payment(net, "bank-b")
    assert "not an ACTION_RECEIPT for this request" in closed_with(net, request_id)
    row = broker_row(net, request_id)
    assert row is not None and row.state == "delivered"


def test_a_direct_receipt_signed_by_another_bank_is_refused_by_identity(
    net: Net, bad_bank: BadBank
) -> None:
    """bank-b's connection returns a receipt bank-a signed: the mTLS identity refuses it
    before any record is read (the request's recipients would refuse it next)."""
    bad_bank(lambda header: receipt(net, "bank-a", header.message_id))
    request_id = stop_payment(net, "bank-b")
    detail = closed_with(net, request_id)
    assert "receipt refused" in detail and "does not match header sender 'bank-a'" in detail
    row = broker_row(net, request_id)
    assert row is not None and row.state == "delivered"
    assert request_state(net.police, request_id) == "requested"


def test_a_delivery_answered_with_a_receipt_refused_before_is_not_retried(
    net: Net, bad_bank: BadBank
) -> None:
    net.broker.outbox.stop()
    try:
        request_id = stop_payment(net, "bank-b")
        early = receipt(net, "bank-b", request_id)
        err = refusal(net, "bank-b", early)
        assert_denied_and_routed_nowhere(net, early, err, "never delivered")
        bad_bank(lambda header: early)  # the bank re-sends it as its answer to the delivery
    finally:
        net.broker.outbox = OutboxWorker(net.broker.broker)
        net.broker.outbox.start()
    receipt_id = pb.Header.FromString(early.header).message_id
    assert closed_with(net, request_id) == receipt_id  # closed, not redelivered for ever
    [decision] = [e for e in entries_about(net, receipt_id) if e["type"] == "decision"]
    assert decision["decision"] == "DENY"  # stored once, with its first outcome
    row = broker_row(net, request_id)
    assert row is not None and row.state == "delivered"
