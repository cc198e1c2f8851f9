"""The broker passes on only answers that were asked for, by whom they were asked of.

bank-a is a rogue member here: a real gRPC server over bank-a's own mTLS bundle and
signing key, answering the broker's deliveries with whatever the test sets. The cheap
attacks on answers must all fail at the broker: an answer kind sent straight to Submit
(unsolicited), an answer naming another request (replayed), an answer addressed to
someone else, an answer signed by a member nobody asked, an answer the policy denies,
and a message the policy refuses to one of its recipients.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent import futures

import grpc
import pytest

from gateway.envelope.build import Draft
from gateway.transport import server_credentials, server_options
from gateway.v1 import gateway_pb2 as pb
from gateway.v1 import gateway_pb2_grpc as rpc
from tests.consortium import Consortium
from tests.security.net import Net, ping, serving, submit_error

Answer = Callable[[pb.Header], pb.Envelope | None]


class RogueNode(rpc.NodeServicer):
    """Accepts every delivery and answers with `self.answer(request header)`."""

    def __init__(self) -> None:
        self.answer: Answer = lambda _header: None
        self.delivered: list[str] = []

    def Deliver(self, request: pb.Envelope, context: grpc.ServicerContext) -> pb.DeliverReply:
        header = pb.Header.FromString(request.header)
        self.delivered.append(header.message_id)
        reply = pb.DeliverReply(message_id=header.message_id, accepted=True)
        answer = self.answer(header)
        if answer is not None:
            reply.response.CopyFrom(answer)
        return reply


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    consortium = Consortium.create(tmp_path_factory.mktemp("direct-answers"))
    with serving(consortium, ()) as network:
        yield network


@pytest.fixture(scope="module")
def rogue(net: Net) -> Iterator[RogueNode]:
    """bank-a's endpoint served by a rogue servicer under bank-a's own certificate."""
    node = RogueNode()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=server_options())
    rpc.add_NodeServicer_to_server(node, server)
    port = server.add_secure_port(
        f"127.0.0.1:{net.consortium.node_ports['bank-a']}", server_credentials(net.tls("bank-a"))
    )
    assert port
    server.start()
    try:
        yield node
    finally:
        server.stop(0).wait()


def pong(request: pb.Header, *, sender: str = "bank-a", **changes: object) -> Draft:
    """bank-a's honest answer to `request`; `changes` make it dishonest."""
    fields: dict[str, object] = {
        "sender": sender,
        "recipients": [request.sender],
        "kind": "PONG",
        "payload": b'{"node": "bank-a"}',
        "reply_to": request.message_id,
    }
    fields.update(changes)
    return Draft(**fields)  # type: ignore[arg-type]


def honest(net: Net) -> Answer:
    return lambda request: pong(request).sign(net.signing_key("bank-a"))


def submit_ping(net: Net) -> tuple[Draft, pb.SubmitReply]:
    """police-1 pings bank-a through the broker: the request and the broker's reply."""
    draft = ping("police-1", "bank-a")
    reply = net.stub_as("police-1").Submit(draft.sign(net.signing_key("police-1")), timeout=10)
    return draft, reply


def status(net: Net, message_id: str) -> pb.StatusReply:
    reply: pb.StatusReply = net.stub_as("police-1").Status(
        pb.StatusRequest(message_id=message_id), timeout=10
    )
    return reply


def refusal_of(net: Net, message_id: str) -> str:
    """The detail of the broker's bad-answer event for bank-a ('' if none)."""
    events = [e.detail for e in status(net, message_id).events if e.state == "bad-answer:bank-a"]
    return events[0] if events else ""


def sender_of(envelope: pb.Envelope) -> str:
    return pb.Header.FromString(envelope.header).sender


def sealed_answer(net: Net, request: pb.Header, kind: str) -> Draft:
    police = net.consortium.pki.directory().get("police-1")
    assert police is not None
    return pong(
        request,
        kind=kind,
        payload=b"{}",
        seal_to=police.seal_key,
        case_ref="C-1",
        legal_basis="art. 11",
    )


def test_the_honest_answer_is_passed_on(net: Net, rogue: RogueNode) -> None:
    rogue.answer = honest(net)
    draft, reply = submit_ping(net)
    assert [sender_of(a) for a in reply.responses] == ["bank-a"]
    assert [sender_of(a) for a in status(net, draft.message_id).responses] == ["bank-a"]


@pytest.mark.parametrize("kind", ["PONG", "MATCH_RESPONSE", "PSI_RESPONSE"])
def test_an_answer_sent_to_submit_unsolicited_is_refused(
    net: Net, rogue: RogueNode, kind: str
) -> None:
    rogue.answer = honest(net)
    draft, _ = submit_ping(net)
    request = pb.Header(message_id=draft.message_id, sender="police-1")
    unsolicited = (pong(request) if kind == "PONG" else sealed_answer(net, request, kind)).sign(
        net.signing_key("bank-a")
    )

    err = submit_error(net.stub_as("bank-a"), unsolicited)

    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == f"routing: {kind} travels only as a direct answer, not by Submit"
    assert [sender_of(a) for a in status(net, draft.message_id).responses] == ["bank-a"]


def test_an_answer_naming_another_request_is_not_passed_on(net: Net, rogue: RogueNode) -> None:
    rogue.answer = honest(net)
    first, _ = submit_ping(net)
    rogue.answer = lambda request: pong(request, reply_to=first.message_id).sign(
        net.signing_key("bank-a")
    )

    second, reply = submit_ping(net)

    assert list(reply.responses) == []
    assert list(reply.undelivered) == ["bank-a"]
    assert refusal_of(net, second.message_id) == "answer: reply_to does not name the request"
    assert len(status(net, first.message_id).responses) == 1  # only its own answer


@pytest.mark.parametrize("kind", ["PING", "MATCH_RESPONSE"])
def test_an_answer_of_the_wrong_kind_is_not_passed_on(
    net: Net, rogue: RogueNode, kind: str
) -> None:
    """A PING is answered by a PONG only: not by another PING, nor by a match response."""
    rogue.answer = lambda request: (
        pong(request, kind=kind) if kind == "PING" else sealed_answer(net, request, kind)
    ).sign(net.signing_key("bank-a"))

    draft, reply = submit_ping(net)

    assert list(reply.responses) == []
    assert refusal_of(net, draft.message_id) == f"answer: a PING is answered by PONG, not {kind}"
    assert list(status(net, draft.message_id).responses) == []


@pytest.mark.parametrize("recipients", [["bank-b"], ["police-1", "bank-b"]])
def test_an_answer_addressed_to_anyone_but_the_requester_is_not_passed_on(
    net: Net, rogue: RogueNode, recipients: list[str]
) -> None:
    rogue.answer = lambda request: pong(request, recipients=recipients).sign(
        net.signing_key("bank-a")
    )

    draft, reply = submit_ping(net)

    assert list(reply.responses) == []
    assert refusal_of(net, draft.message_id) == "answer: must be addressed to the requester only"


def test_an_answer_signed_by_a_member_nobody_asked_is_not_passed_on(
    net: Net, rogue: RogueNode
) -> None:
    # bank-a hands back bank-b's signed answer to the very request: bank-b was not asked.
    rogue.answer = lambda request: pong(request, sender="bank-b").sign(net.signing_key("bank-b"))

    draft, reply = submit_ping(net)

    assert list(reply.responses) == []
    assert refusal_of(net, draft.message_id) == (
        "identity: mTLS identity 'bank-a' does not match header sender 'bank-b'"
    )


def test_an_answer_the_policy_denies_is_neither_passed_on_nor_shown(
    net: Net, rogue: RogueNode
) -> None:
    # A PONG of the right kind for the right request, but larger than any pong may be
    # (256 bytes): the policy denies it, and Status does not hand the denied answer out.
    padded = b'{"node": "bank-a", "pad": "' + b"x" * 256 + b'"}'
    rogue.answer = lambda request: pong(request, payload=padded).sign(net.signing_key("bank-a"))

    draft, reply = submit_ping(net)

    assert list(reply.responses) == []
    assert list(reply.undelivered) == ["bank-a"]
    assert list(status(net, draft.message_id).responses) == []


def test_a_message_the_policy_refuses_to_one_recipient_reaches_none(
    net: Net, rogue: RogueNode
) -> None:
    # The regulator receives nothing but answers to its pings: a ping to bank-a and the
    # regulator together is denied as a whole, and bank-a never sees it.
    rogue.answer = honest(net)
    draft = ping("police-1", "bank-a")
    draft.recipients = ["bank-a", "regulator-1"]

    err = submit_error(net.stub_as("police-1"), draft.sign(net.signing_key("police-1")))

    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "forbid-regulator-receives-other-than-pong" in err.details()
    assert draft.message_id not in rogue.delivered
