"""A node's own checks on what is delivered to it, whatever the broker decided.

A member dialling a node's Deliver itself (skipping the broker's policy and audit) is
refused; a broker gone bad that delivers what the node's own policy forbids is
refused with no effect; and a kind the node's role does not handle is refused by name.
Broker, police and bank serve in this process over mTLS.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.broker.delivery import DeliveryError
from gateway.envelope.build import Draft
from gateway.v1 import gateway_pb2 as pb
from nodes.actions.orders import request_payload
from tests.actions.seed import account, seed_accounts
from tests.consortium import Consortium
from tests.security.net import Net, journalled, serving

ACCOUNT = "6222020200112233445"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    consortium = Consortium.create(tmp_path_factory.mktemp("inbound"))
    seed_accounts(consortium, "bank-a", {ACCOUNT: 1_000_000})
    with serving(consortium, ("police-1", "bank-a")) as network:
        yield network


def freeze(net: Net, sender: str = "police-1") -> pb.Envelope:
    """A freeze of ACCOUNT at bank-a, signed by `sender` (police-1 may send one)."""
    bank = net.consortium.pki.directory().get("bank-a")
    assert bank is not None
    return Draft(
        sender=sender,
        recipients=["bank-a"],
        kind="FREEZE",
        payload=request_payload("bank_account", ACCOUNT),
        seal_to=bank.seal_key,
        case_ref="C-2026-IN",
        legal_basis="Anti-Telecom-Fraud Law art. 11",
        terms=pb.ActionTerms(
            action="FREEZE",
            amount_minor=5_000,
            duration_hours=24,
            issuing_officer="officer-7",
            approving_officer="chief-2",
        ),
    ).sign(net.signing_key(sender))


def message_id(envelope: pb.Envelope) -> str:
    return pb.Header.FromString(envelope.header).message_id


def held(net: Net) -> object:
    return account(net.consortium, "bank-a", ACCOUNT)["held_minor"]


def test_the_broker_delivering_a_police_freeze_is_obeyed(net: Net) -> None:
    # The control case: the same freeze, delivered by the broker, holds the amount.
    before = held(net)
    reply = net.as_broker("bank-a", freeze(net))
    assert reply.accepted
    assert held(net) == before + 5_000  # type: ignore[operator]


def test_a_member_delivering_straight_to_a_node_is_refused(net: Net) -> None:
    # police-1 dials bank-a itself: its own signature holds, but the broker's policy
    # decision and audit entry would be skipped, so the bank takes deliveries only from
    # the broker's mTLS identity.
    envelope = freeze(net)
    before = held(net)
    with pytest.raises(DeliveryError) as info:
        net.as_broker("bank-a", envelope, tls=net.tls("police-1"))
    assert str(info.value) == (
        "bank-a: PERMISSION_DENIED identity: delivery must come from broker, not 'police-1'"
    )
    assert held(net) == before
    assert journalled(net.consortium, "bank-a", message_id(envelope)) == 0


def test_a_freeze_the_node_policy_forbids_has_no_effect(net: Net) -> None:
    # A broker gone bad delivers bank-b's (genuinely signed) freeze request to bank-a:
    # the bank's own policy takes freezes from police only.
    envelope = freeze(net, sender="bank-b")
    before = held(net)
    with pytest.raises(DeliveryError) as info:
        net.as_broker("bank-a", envelope)
    assert str(info.value) == (
        "bank-a: PERMISSION_DENIED node policy: "
        "denied by forbid policy bank-forbids-actions-from-non-police"
    )
    assert held(net) == before
    assert journalled(net.consortium, "bank-a", message_id(envelope)) == 0


def test_a_kind_the_role_does_not_handle_is_refused_by_name(net: Net) -> None:
    # The police node's policy admits a bank's pong, but nothing at the police handles
    # one (answers come back in the Submit reply): refused by name, not by a crash.
    pong = Draft(
        sender="bank-a",
        recipients=["police-1"],
        kind="PONG",
        payload=b"{}",
        reply_to="0" * 32,
    ).sign(net.signing_key("bank-a"))
    with pytest.raises(DeliveryError) as info:
        net.as_broker("police-1", pong)
    assert str(info.value) == ("police-1: UNIMPLEMENTED role: a police node does not handle PONG")
