"""The police node keeps a receipt only for its own request, from the member it asked.

The police node serves behind the real broker; it issues a freeze to bank-a, which is
not serving, so the request waits in the broker's outbox. Receipts are then delivered
to the police node as a broker gone bad would: unsolicited (for no request of ours)
and from a member nobody asked. Neither changes what the police node holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from gateway.broker.delivery import DeliveryError
from gateway.envelope.build import Draft, new_message_id
from gateway.v1 import gateway_pb2 as pb
from nodes.actions.police import issue_action
from tests.actions.test_freeze_workflow import spec
from tests.consortium import Consortium, request_state
from tests.security.net import Net, journalled, serving


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    consortium = Consortium.create(tmp_path_factory.mktemp("police-receipts"))
    with serving(consortium, ("police-1",)) as network:
        yield network


def issue_freeze(net: Net) -> str:
    """A freeze police-1 asks of bank-a; returns the request id."""
    return issue_action(net.client("police-1"), spec(action="FREEZE")).message_id


def receipt(net: Net, sender: str, request_id: str) -> pb.Envelope:
    """An EXECUTED receipt for `request_id`, sealed to police-1, signed by `sender`."""
    police = net.consortium.pki.directory().get("police-1")
    assert police is not None
    return Draft(
        sender=sender,
        recipients=["police-1"],
        kind="ACTION_RECEIPT",
        payload=json.dumps({"request_id": request_id, "outcome": "EXECUTED"}).encode(),
        reply_to=request_id,
        outcome="EXECUTED",
        case_ref="C-2026-RC",
        seal_to=police.seal_key,
        terms=pb.ActionTerms(action="FREEZE", executed_amount_minor=10_000),
    ).sign(net.signing_key(sender))


def message_id(envelope: pb.Envelope) -> str:
    return pb.Header.FromString(envelope.header).message_id


def test_the_asked_members_receipt_is_kept(net: Net) -> None:
    request_id = issue_freeze(net)
    assert request_state(net.client("police-1"), request_id) == "requested"
    net.as_broker("police-1", receipt(net, "bank-a", request_id))
    assert request_state(net.client("police-1"), request_id) == "executed"


def test_a_receipt_for_no_request_of_ours_is_refused(net: Net) -> None:
    forged = receipt(net, "bank-a", new_message_id())
    with pytest.raises(DeliveryError) as info:
        net.as_broker("police-1", forged)
    assert str(info.value) == "police-1: NOT_FOUND receipt: no request of ours has that id"
    assert journalled(net.consortium, "police-1", message_id(forged)) == 0


def test_a_receipt_from_a_member_nobody_asked_is_refused(net: Net) -> None:
    request_id = issue_freeze(net)  # asked of bank-a
    forged = receipt(net, "bank-b", request_id)
    with pytest.raises(DeliveryError) as info:
        net.as_broker("police-1", forged)
    assert str(info.value) == (
        "police-1: PERMISSION_DENIED receipt: sender is not the request's recipient"
    )
    assert request_state(net.client("police-1"), request_id) == "requested"
    assert journalled(net.consortium, "police-1", message_id(forged)) == 0
