"""The broker accepts an ACTION_RECEIPT only for an action request it delivered to the
sender and that still awaits one; everything else is denied, audited, and routed nowhere.

The cheapest attacks on a receipt are tried both ways a receipt reaches the broker: sent
by `Submit`, and returned as a bank's direct answer to a delivery (a bank gone bad
serves bank-b's endpoint). bank-b is otherwise down, so requests to it wait in the
outbox with failed attempts: "delivered" there means "handed to the outbox and tried".
The module runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass

import grpc
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.broker.models import DeliveryRow, MessageRow
from gateway.broker.outbox import OutboxWorker
from gateway.broker.server import RunningBroker
from gateway.envelope.build import Draft, new_message_id, now_ms
from gateway.localnet import DEFAULT_NODES, Consortium
from gateway.transport import TlsFiles, secure_channel, server_credentials, server_options
from gateway.v1 import gateway_pb2 as pb
from gateway.v1 import gateway_pb2_grpc as rpc
from nodes.actions.police import issue_action
from nodes.runtime import NodeContext
from tests.actions.seed import ACCOUNT, seed_accounts, spec
from tests.consortium import client, request_state, running
from tests.postgres import Databases
from tests.security.net import ping
from tests.waiting import wait_for

NODES = (*DEFAULT_NODES, ("police-2", "police", "District Police"))


@dataclass
class Net:
    consortium: Consortium
    broker: RunningBroker
    police: NodeContext


@pytest.fixture(scope="module")
def net(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    c = Consortium.create(
        tmp_path_factory.mktemp("receipts"),
        nodes=NODES,
        database_urls=databases.for_consortium(NODES),
    )
    seed_accounts(c, "bank-a", {ACCOUNT: 1_000_000})
    with running(c, ("police-1", "bank-a")) as (broker, _nodes):
        police = client(c, "police-1")
        try:
            yield Net(c, broker, police)
        finally:
            police.client.close()


def stop_payment(net: Net, recipient: str) -> str:
    return issue_action(
        net.police,
        spec(recipient=recipient, case_ref="C-RECEIPTS", amount_minor=10_000, duration_hours=2),
    ).message_id


def receipt(
    net: Net,
    sender: str,
    reply_to: str,
    recipients: tuple[str, ...] = ("police-1",),
    *,
    outcome: str = "EXECUTED",
    message_id: str = "",
) -> pb.Envelope:
    """An ACTION_RECEIPT signed by `sender`'s own key, sealed to the police, saying EXECUTED."""
    police = net.consortium.pki.directory().get("police-1")
    assert police is not None
    held_until = now_ms() + 2 * 3_600_000
    draft = Draft(
        sender=sender,
        recipients=list(recipients),
        kind="ACTION_RECEIPT",
        payload=json.dumps({"request_id": reply_to, "outcome": "EXECUTED", "reason": ""}).encode(),
        case_ref="C-RECEIPTS",
        purpose="telecom fraud",
        reply_to=reply_to,
        outcome=outcome,
        message_id=message_id or new_message_id(),
        seal_to=police.seal_key,
        terms=pb.ActionTerms(
            action="STOP_PAYMENT", executed_amount_minor=10_000, hold_expires_at_ms=held_until
        ),
    )
    return draft.sign(net.consortium.pki.bundle(sender).keys().signing)


def stub_as(net: Net, node_id: str) -> rpc.BrokerStub:
    bundle = net.consortium.pki.bundle(node_id)
    tls = TlsFiles(bundle.tls_cert, bundle.tls_key, bundle.ca_cert)
    channel = secure_channel(f"127.0.0.1:{net.consortium.broker_port}", "broker", tls)
    return rpc.BrokerStub(channel)


def refusal(net: Net, sender: str, envelope: pb.Envelope) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        stub_as(net, sender).Submit(envelope, timeout=10)
    return info.value


def entries_about(net: Net, message_id: str) -> list[dict[str, object]]:
    audit = net.broker.broker.audit
    leaves = [json.loads(leaf) for _, leaf in audit.read(0, audit.size)]
    return [e for e in leaves if e.get("message_id") == message_id]


def broker_row(net: Net, message_id: str) -> MessageRow | None:
    with net.broker.broker.audit.session() as s:
        return s.get(MessageRow, message_id)


def deliveries(net: Net, message_id: str) -> list[tuple[str, str, int]]:
    with net.broker.broker.audit.session() as s:
        rows = s.scalars(select(DeliveryRow).where(DeliveryRow.message_id == message_id)).all()
        return [(r.recipient, r.state, r.attempts) for r in rows]


def tried_at_least_once(net: Net, request_id: str) -> None:
    """Wait until the outbox has tried (and failed) to deliver to the down bank."""
    wait_for(lambda: any(n > 0 for _, _, n in deliveries(net, request_id)), timeout=20)


def assert_denied_and_routed_nowhere(
    net: Net, envelope: pb.Envelope, err: grpc.RpcError, reason: str
) -> None:
    header = pb.Header.FromString(envelope.header)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reason in (err.details() or "")
    [decision] = [e for e in entries_about(net, header.message_id) if e["type"] == "decision"]
    assert decision["decision"] == "DENY"
    assert reason in str(decision["reason"])
    stored = broker_row(net, header.message_id)
    assert stored is not None and stored.state == "denied" and stored.payload == b""
    assert deliveries(net, header.message_id) == []  # never routed to the police


# -- receipts sent by Submit ----------------------------------------------------------------


def test_receipt_for_a_made_up_request_is_denied(net: Net) -> None:
    forged = receipt(net, "bank-a", new_message_id())
    err = refusal(net, "bank-a", forged)
    assert_denied_and_routed_nowhere(net, forged, err, "reply_to names no request")


def test_receipt_for_a_message_that_is_not_an_action_is_denied(net: Net) -> None:
    draft = ping(recipient="bank-a")
    net.police.client.submit(draft)
    forged = receipt(net, "bank-a", draft.message_id)
    err = refusal(net, "bank-a", forged)
    assert_denied_and_routed_nowhere(net, forged, err, "not an action request")


def test_receipt_for_a_request_that_went_to_another_bank_is_denied(net: Net) -> None:
    request_id = stop_payment(net, "bank-b")
    tried_at_least_once(net, request_id)
    forged = receipt(net, "bank-a", request_id)
    err = refusal(net, "bank-a", forged)
    assert_denied_and_routed_nowhere(net, forged, err, "not addressed to the receipt's sender")
    row = broker_row(net, request_id)
    assert row is not None and row.state == "requested"
    assert request_state(net.police, request_id) == "requested"


def test_receipt_addressed_to_another_police_node_is_denied(net: Net) -> None:
    request_id = stop_payment(net, "bank-b")
    tried_at_least_once(net, request_id)
    misrouted = receipt(net, "bank-b", request_id, recipients=("police-2",))
    err = refusal(net, "bank-b", misrouted)
    assert_denied_and_routed_nowhere(net, misrouted, err, "addressed to the request's sender only")


def test_receipt_for_a_request_never_delivered_is_denied(net: Net) -> None:
    """With the outbox stopped, a request waits untried: nothing was delivered yet."""
    net.broker.outbox.stop()
    try:
        request_id = stop_payment(net, "bank-b")
        assert deliveries(net, request_id) == [("bank-b", "pending", 0)]
        premature = receipt(net, "bank-b", request_id)
        err = refusal(net, "bank-b", premature)
    finally:
        net.broker.outbox = OutboxWorker(net.broker.broker)
        net.broker.outbox.start()
    assert_denied_and_routed_nowhere(net, premature, err, "never delivered")


def test_the_asked_bank_answers_once_and_a_resend_gets_the_first_outcome(net: Net) -> None:
    request_id = stop_payment(net, "bank-b")
    tried_at_least_once(net, request_id)
    genuine = receipt(net, "bank-b", request_id)
    stub = stub_as(net, "bank-b")
    first = stub.Submit(genuine, timeout=10)
    assert first.decision == "ALLOW"
    wait_for(lambda: request_state(net.police, request_id) == "executed", timeout=20)
    row = broker_row(net, request_id)
    assert row is not None and row.state == "executed" and row.hold_expires_at_ms > 0
    [(_, state, _)] = deliveries(net, request_id)
    assert state == "delivered"  # closed by the receipt: no more redelivery

    size = net.broker.broker.audit.size
    again = stub.Submit(genuine, timeout=10)  # the bank re-sends after losing the reply
    assert (again.decision, again.receipt.leaf_index) == ("ALLOW", first.receipt.leaf_index)
    assert net.broker.broker.audit.size == size  # nothing new happened

    second = receipt(net, "bank-b", request_id)
    err = refusal(net, "bank-b", second)
    assert_denied_and_routed_nowhere(net, second, err, "awaits no receipt")


def test_a_resend_of_a_denied_receipt_is_denied_again(net: Net) -> None:
    forged = receipt(net, "bank-a", new_message_id())
    stub = stub_as(net, "bank-a")
    first = refusal(net, "bank-a", forged)
    size = net.broker.broker.audit.size
    with pytest.raises(grpc.RpcError) as again:
        stub.Submit(forged, timeout=10)
    assert again.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert again.value.details() == first.details()
    assert net.broker.broker.audit.size == size


def test_same_id_with_other_content_is_a_replay(net: Net) -> None:
    request_id = stop_payment(net, "bank-b")
    tried_at_least_once(net, request_id)
    genuine = receipt(net, "bank-b", request_id)
    stub_as(net, "bank-b").Submit(genuine, timeout=10)
    first_id = pb.Header.FromString(genuine.header).message_id
    altered = receipt(net, "bank-b", request_id, outcome="REJECTED", message_id=first_id)
    err = refusal(net, "bank-b", altered)
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS


# -- receipts returned as a bank's direct answer --------------------------------------------


class BadBank(rpc.NodeServicer):
    """Serves bank-b's endpoint and answers every delivery with what `answer` makes."""

    def __init__(self, answer: Callable[[pb.Header], pb.Envelope]) -> None:
        self.answer = answer

    def Deliver(self, request: pb.Envelope, context: grpc.ServicerContext) -> pb.DeliverReply:
        header = pb.Header.FromString(request.header)
        return pb.DeliverReply(accepted=True, response=self.answer(header))


@pytest.fixture
def bad_bank(net: Net) -> Iterator[Callable[[Callable[[pb.Header], pb.Envelope]], None]]:
    servers: list[grpc.Server] = []

    def start(answer: Callable[[pb.Header], pb.Envelope]) -> None:
        config = net.consortium.node_config("bank-b")
        bundle = net.consortium.pki.bundle("bank-b")
        tls = TlsFiles(bundle.tls_cert, bundle.tls_key, bundle.ca_cert)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=server_options())
        rpc.add_NodeServicer_to_server(BadBank(answer), server)
        assert server.add_secure_port(config.listen, server_credentials(tls)) != 0
        server.start()
        servers.append(server)

    yield start
    for server in servers:
        server.stop(0).wait()


def closed_with(net: Net, request_id: str) -> str:
    """Wait until the request's outbox row to bank-b is closed; its last event's detail."""
    wait_for(lambda: deliveries(net, request_id)[0][1] != "pending", timeout=30)
    [(_, state, _)] = deliveries(net, request_id)
    assert state == "delivered"
    [event] = [
        e
        for e in entries_about(net, request_id)
        if e["type"] == "delivery" and e["recipient"] == "bank-b"
    ]
    return str(event["detail"])


def test_direct_receipt_naming_another_request_is_refused(
    net: Net, bad_bank: Callable[[Callable[[pb.Header], pb.Envelope]], None]
) -> None:
    other = stop_payment(net, "bank-a")
    wait_for(lambda: request_state(net.police, other) == "executed", timeout=20)
    bad_bank(lambda header: receipt(net, "bank-b", other))
    request_id = stop_payment(net, "bank-b")
    assert "receipt refused" in closed_with(net, request_id)
    row = broker_row(net, request_id)
    assert row is not None and row.state == "delivered"  # never "executed"
    assert request_state(net.police, request_id) == "requested"


def test_direct_receipt_addressed_to_another_police_node_is_refused(
    net: Net, bad_bank: Callable[[Callable[[pb.Header], pb.Envelope]], None]
) -> None:
    bad_bank(lambda header: receipt(net, "bank-b", header.message_id, recipients=("police-2",)))
    request_id = stop_payment(net, "bank-b")
    detail = closed_with(net, request_id)
    assert "receipt refused" in detail and "request's sender only" in detail
    row = broker_row(net, request_id)
    assert row is not None and row.state == "delivered"
    with Session(net.broker.broker.audit.engine) as s:
        forwarded = s.scalars(
            select(DeliveryRow.recipient)
            .join(MessageRow, MessageRow.message_id == DeliveryRow.message_id)
            .where(MessageRow.reply_to == request_id)
        ).all()
    assert forwarded == []  # police-2 got nothing


def test_direct_receipt_is_recorded_with_the_request_state_and_forwarded(
    net: Net, bad_bank: Callable[[Callable[[pb.Header], pb.Envelope]], None]
) -> None:
    """The same bad-bank harness answering correctly: the refusals above are the checks'."""
    bad_bank(lambda header: receipt(net, "bank-b", header.message_id))
    request_id = stop_payment(net, "bank-b")
    receipt_id = closed_with(net, request_id)
    wait_for(lambda: request_state(net.police, request_id) == "executed", timeout=20)
    receipt_row = broker_row(net, receipt_id)
    assert receipt_row is not None and receipt_row.reply_to == request_id
    row = broker_row(net, request_id)
    assert row is not None and row.state == "executed"
