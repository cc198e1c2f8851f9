"""An action request that expires in the outbox is closed as expired, never delivered late.

bank-a is down, so the broker's outbox keeps retrying the freeze; once the request's
own expiry passes, the broker stops and records it as expired rather than delivering
a stale order whenever the bank comes back.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.envelope.build import Draft
from gateway.v1 import gateway_pb2 as pb
from nodes.actions.orders import request_payload
from tests.consortium import Consortium
from tests.security.net import Net, serving
from tests.waiting import wait_for


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    consortium = Consortium.create(tmp_path_factory.mktemp("outbox-expiry"))
    with serving(consortium, ()) as network:  # no node serves: bank-a is down
        yield network


def test_a_request_expiring_in_the_outbox_is_closed_as_expired(net: Net) -> None:
    bank = net.consortium.pki.directory().get("bank-a")
    assert bank is not None
    draft = Draft(
        sender="police-1",
        recipients=["bank-a"],
        kind="FREEZE",
        payload=request_payload("bank_account", "6222020200112233445"),
        seal_to=bank.seal_key,
        case_ref="C-2026-EX",
        legal_basis="Anti-Telecom-Fraud Law art. 11",
        terms=pb.ActionTerms(
            action="FREEZE",
            amount_minor=1_000,
            duration_hours=24,
            issuing_officer="officer-7",
            approving_officer="chief-2",
        ),
        lifetime_ms=1_500,
    )
    stub = net.stub_as("police-1")
    assert stub.Submit(draft.sign(net.signing_key("police-1")), timeout=10).decision == "ALLOW"

    def status() -> pb.StatusReply:
        reply: pb.StatusReply = stub.Status(
            pb.StatusRequest(message_id=draft.message_id), timeout=10
        )
        return reply

    wait_for(lambda: status().state != "requested", timeout=20)
    reply = status()
    assert reply.state == "expired"
    assert [(e.state, e.detail) for e in reply.events if e.state.endswith(":bank-a")] == [
        ("expired:bank-a", "expired before delivery")
    ]
