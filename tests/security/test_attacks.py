"""Attacks by members and by the broker itself, through the real broker and nodes.

A member cannot send as another member; a broker that alters, redirects or replays a
message is caught by the recipient (which verifies again against the signed directory);
a broker that alters an answer is caught by the requester; quotas and size limits hold.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import replace

import grpc
import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.audit.store import AuditEntryRow
from gateway.broker.delivery import DeliveryError
from gateway.broker.models import MessageRow
from gateway.envelope.build import Draft, now_ms
from gateway.envelope.sealing import seal
from gateway.transport import MAX_MESSAGE_BYTES, channel_options, secure_channel
from gateway.v1 import gateway_pb2 as pb
from gateway.v1 import gateway_pb2_grpc as rpc
from nodes.actions.orders import request_payload
from nodes.broker_client import AnswerError
from tests.actions.seed import account, seed_accounts
from tests.consortium import Consortium
from tests.postgres import opened
from tests.security.net import Net, journalled, ping, serving, submit_error

ACCOUNT = "6222020200112233445"
CASE = {"case_ref": "C-2026-ATK", "legal_basis": "Anti-Telecom-Fraud Law art. 11"}
BROKER_LIMIT = 256 * 1024


@pytest.fixture(scope="module")
def net(backend_consortium: Consortium) -> Iterator[Net]:
    """Broker and banks storing on the module's backend (SQLite, then PostgreSQL)."""
    seed_accounts(backend_consortium, "bank-a", {ACCOUNT: 1_000_000})
    with serving(
        backend_consortium, ("bank-a", "bank-b"), max_envelope_bytes=BROKER_LIMIT
    ) as network:
        yield network


def freeze(net: Net, amount_minor: int = 1_000, recipient: str = "bank-a") -> Draft:
    member = net.consortium.pki.directory().get(recipient)
    assert member is not None
    return Draft(
        sender="police-1",
        recipients=[recipient],
        kind="FREEZE",
        payload=request_payload("bank_account", ACCOUNT),
        seal_to=member.seal_key,
        terms=pb.ActionTerms(
            action="FREEZE",
            amount_minor=amount_minor,
            duration_hours=24,
            issuing_officer="officer-7",
            approving_officer="chief-2",
        ),
        **CASE,
    )


def message_id(envelope: pb.Envelope) -> str:
    return pb.Header.FromString(envelope.header).message_id


# -- a member posing as another ------------------------------------------------------------


def test_member_cannot_send_as_another_member(net: Net) -> None:
    # bank-a writes police-1 as the sender and signs with its own key, over its own mTLS.
    forged = freeze(net).sign(net.signing_key("bank-a"))
    err = submit_error(net.stub_as("bank-a"), forged)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert err.details() == (
        "identity: mTLS identity 'bank-a' does not match header sender 'police-1'"
    )
    # Even a broker that lets it through cannot make bank-b believe it: the signature is
    # checked under police-1's key from the signed directory.
    forged_to_b = freeze(net, recipient="bank-b").sign(net.signing_key("bank-a"))
    with pytest.raises(DeliveryError, match="UNAUTHENTICATED signature:"):
        net.as_broker("bank-b", forged_to_b)
    assert journalled(net.consortium, "bank-b", message_id(forged_to_b)) == 0


# -- a broker gone bad ---------------------------------------------------------------------


def _alter_payload(envelope: pb.Envelope, net: Net) -> None:
    envelope.payload = envelope.payload[:-1] + bytes([envelope.payload[-1] ^ 1])


def _alter_terms(envelope: pb.Envelope, net: Net) -> None:
    header = pb.Header.FromString(envelope.header)
    header.terms.amount_minor = 999_999  # a bigger freeze than the police signed
    envelope.header = header.SerializeToString()


def _reseal_with_matching_digest(envelope: pb.Envelope, net: Net) -> None:
    # The broker seals its own account number to the bank and fixes up the digest.
    header = pb.Header.FromString(envelope.header)
    member = net.consortium.pki.directory().get("bank-a")
    assert member is not None
    other = request_payload("bank_account", "6222020200998877665")
    envelope.payload = seal(other, header.message_id, member.seal_key)
    header.payload_sha256 = hashlib.sha256(envelope.payload).digest()
    envelope.header = header.SerializeToString()


def _swap_signature(envelope: pb.Envelope, net: Net) -> None:
    envelope.signature = freeze(net).sign(net.signing_key("police-1")).signature


ALTERATIONS: dict[str, tuple[Callable[[pb.Envelope, Net], None], str]] = {
    "payload": (_alter_payload, "INVALID_ARGUMENT digest:"),
    "terms": (_alter_terms, "UNAUTHENTICATED signature:"),
    "resealed": (_reseal_with_matching_digest, "UNAUTHENTICATED signature:"),
    "signature": (_swap_signature, "UNAUTHENTICATED signature:"),
}


@pytest.mark.parametrize("alteration", sorted(ALTERATIONS))
def test_broker_altering_a_message_is_detected_by_the_recipient(net: Net, alteration: str) -> None:
    alter, refusal = ALTERATIONS[alteration]
    envelope = freeze(net).sign(net.signing_key("police-1"))
    alter(envelope, net)
    before = account(net.consortium, "bank-a", ACCOUNT)
    with pytest.raises(DeliveryError, match=refusal) as info:
        net.as_broker("bank-a", envelope)
    assert info.value.permanent  # the broker's outbox would not retry it
    assert journalled(net.consortium, "bank-a", message_id(envelope)) == 0
    assert account(net.consortium, "bank-a", ACCOUNT) == before


def test_broker_redirecting_a_message_is_refused(net: Net) -> None:
    envelope = ping("police-1", "bank-a").sign(net.signing_key("police-1"))
    with pytest.raises(DeliveryError, match="INVALID_ARGUMENT recipient: this node"):
        net.as_broker("bank-b", envelope)


def test_broker_replaying_a_delivery_has_one_effect(net: Net) -> None:
    envelope = freeze(net, amount_minor=500).sign(net.signing_key("police-1"))
    first = net.as_broker("bank-a", envelope)
    held = account(net.consortium, "bank-a", ACCOUNT)["held_minor"]
    again = net.as_broker("bank-a", envelope)
    assert again.response == first.response  # the first receipt, not a second freeze
    assert account(net.consortium, "bank-a", ACCOUNT)["held_minor"] == held
    assert journalled(net.consortium, "bank-a", message_id(envelope)) == 1
    # The same id with another (even validly signed) header is a replay, not a redelivery.
    other = replace(freeze(net, amount_minor=700), message_id=message_id(envelope))
    with pytest.raises(DeliveryError, match="ALREADY_EXISTS replay:"):
        net.as_broker("bank-a", other.sign(net.signing_key("police-1")))


def test_broker_altering_an_answer_is_detected_by_the_requester(net: Net) -> None:
    police = net.client("police-1")
    draft = ping("police-1", "bank-a")
    reply = net.stub_as("police-1").Submit(draft.sign(police.keys.signing), timeout=10)
    (answer,) = reply.responses
    police.client.open_answer(answer, draft)  # the genuine answer verifies

    altered = pb.Envelope()
    altered.CopyFrom(answer)
    altered.payload = b'{"node": "bank-a", "role": "police"}'
    with pytest.raises(AnswerError, match="digest:"):
        police.client.open_answer(altered, draft)

    # An answer the broker makes up itself, signed with its own key: not bank-a's.
    header = pb.Header.FromString(answer.header)
    made_up = Draft(
        sender="bank-a",
        recipients=["police-1"],
        kind="PONG",
        payload=answer.payload,
        reply_to=header.reply_to,
    ).sign(net.signing_key("broker"))
    with pytest.raises(AnswerError, match="signature:"):
        police.client.open_answer(made_up, draft)


# -- quotas ----------------------------------------------------------------------------------


class ManualClock:
    """Milliseconds, starting at the beginning of an hour well ahead of every count the
    module's other tests left in the broker's database."""

    def __init__(self, now_ms: int) -> None:
        self.now = now_ms

    def __call__(self) -> int:
        return self.now


_HOURS_AHEAD = [3]


@pytest.fixture
def clock(net: Net) -> Iterator[ManualClock]:
    """The broker's hourly counters, on a clock the test moves."""
    counters = net.broker.broker.rates
    original = counters.clock_ms
    hour = 3_600_000
    manual = ManualClock((now_ms() // hour + _HOURS_AHEAD[0]) * hour + 1_000)
    _HOURS_AHEAD[0] += 10
    counters.clock_ms = manual
    try:
        yield manual
    finally:
        counters.clock_ms = original


def broker_state(net: Net, message_id: str) -> str:
    with opened(net.consortium.broker_database) as engine, Session(engine) as s:
        row = s.get(MessageRow, message_id)
        return row.state if row is not None else ""


def match_query(net: Net) -> Draft:
    member = net.consortium.pki.directory().get("bank-a")
    assert member is not None
    return Draft(
        sender="police-1",
        recipients=["bank-a"],
        kind="MATCH_QUERY",
        payload=b"\x08\x01",
        seal_to=member.seal_key,
        batch_size=1,
        **CASE,
    )


@pytest.mark.parametrize(
    ("kind", "quota", "build"),
    [
        ("MATCH_QUERY", 200, match_query),
        ("FREEZE", 100, freeze),
        ("PING", 36_000, lambda _net: ping()),
    ],
)
def test_sender_over_hourly_quota_is_denied_by_policy(
    net: Net, clock: ManualClock, kind: str, quota: int, build: Callable[[Net], Draft]
) -> None:
    counters = net.broker.broker.rates
    stub = net.stub_as("police-1")
    key = net.signing_key("police-1")
    # as if police-1 had sent quota - 1 of them this hour
    counters.hit("police-1", kind, 0, messages=quota - 1)
    last = build(net)
    assert stub.Submit(last.sign(key), timeout=10).decision == "ALLOW"  # the quota-th

    over = build(net)
    err = submit_error(stub, over.sign(key))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert err.details().startswith("policy:")
    assert "over-quota" in err.details()
    assert broker_state(net, over.message_id) == "denied"  # audited, never delivered
    assert journalled(net.consortium, "bank-a", over.message_id) == 0

    clock.now += 2 * 3_600_000  # two hours later the count is empty again
    assert stub.Submit(build(net).sign(key), timeout=10).decision == "ALLOW"


# -- size --------------------------------------------------------------------------------------


def test_oversized_envelope_is_refused_by_broker(net: Net) -> None:
    draft = ping(payload=b"x" * BROKER_LIMIT)
    err = submit_error(net.stub_as("police-1"), draft.sign(net.signing_key("police-1")))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert err.details().startswith("size:")
    assert broker_state(net, draft.message_id) == ""


def test_message_above_the_transport_limit_is_refused_before_any_handler(net: Net) -> None:
    # A client that raised its own send limit: the broker's gRPC server still refuses.
    tls = net.tls("police-1")
    cert, key, ca = tls.read()
    options = [
        *channel_options("broker"),
        ("grpc.max_send_message_length", 2 * MAX_MESSAGE_BYTES),
    ]
    creds = grpc.ssl_channel_credentials(ca, key, cert)
    with grpc.secure_channel(f"127.0.0.1:{net.consortium.broker_port}", creds, options) as ch:
        draft = ping(payload=b"x" * (MAX_MESSAGE_BYTES + 1024))
        err = submit_error(rpc.BrokerStub(ch), draft.sign(net.signing_key("police-1")))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert broker_state(net, draft.message_id) == ""


def test_oversized_envelope_is_refused_by_the_recipient(net: Net) -> None:
    # A broker with a laxer limit (or none) still cannot push a huge envelope into a node.
    draft = ping(payload=b"x" * (4 * 1024 * 1024 + 1))
    with pytest.raises(DeliveryError, match="RESOURCE_EXHAUSTED size:"):
        net.as_broker("bank-a", draft.sign(net.signing_key("police-1")))
    assert journalled(net.consortium, "bank-a", draft.message_id) == 0


# -- bytes that are not an envelope -------------------------------------------------------------

UNDECODABLE = {
    "truncated-field": b"\x0a\x05ab",  # field 1 announces 5 bytes, 2 follow
    "bad-wire-type": b"\x0f",  # field 1 with wire type 7, which does not exist
    "unfinished-varint": b"\xff" * 11,
}
"""Request bytes no protobuf decoder accepts as an Envelope, each for its own reason."""


def raw_submit(net: Net, data: bytes) -> grpc.RpcError:
    """Submit `data` as the request's bytes, over police-1's mTLS connection."""
    tls = net.tls("police-1")
    channel = secure_channel(f"127.0.0.1:{net.consortium.broker_port}", "broker", tls)
    try:
        submit = channel.unary_unary(
            "/gateway.v1.Broker/Submit", response_deserializer=pb.SubmitReply.FromString
        )
        submit(data, timeout=10)
    except grpc.RpcError as exc:
        return exc
    finally:
        channel.close()
    raise AssertionError("the broker accepted bytes it had to refuse")


def rejections(net: Net) -> list[dict[str, object]]:
    """The broker's audited rejections, read from its stored log."""
    with opened(net.consortium.broker_database) as engine, Session(engine) as s:
        leaves = s.scalars(select(AuditEntryRow.leaf)).all()
    entries = [json.loads(leaf) for leaf in leaves]
    return [e for e in entries if e["type"] == "rejection"]


@pytest.mark.parametrize("name", sorted(UNDECODABLE))
def test_bytes_that_are_not_an_envelope_are_refused_by_name_and_audited(
    net: Net, name: str
) -> None:
    data = UNDECODABLE[name]
    with pytest.raises(DecodeError):  # independently: these bytes are not an Envelope
        pb.Envelope.FromString(data)
    err = raw_submit(net, data)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "envelope: request bytes do not decode as a gateway.v1.Envelope"
    digest = hashlib.sha256(data).hexdigest()
    [entry] = [e for e in rejections(net) if e["header_sha256"] == digest]
    assert entry["check"] == "envelope" and entry["peer"] == "police-1"
    assert entry["message_id"] == "" and entry["kind"] == ""


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=64))
def test_random_bytes_are_refused_with_a_named_check_never_internal(net: Net, data: bytes) -> None:
    err = raw_submit(net, data)
    assert err.code() in {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
    }, (err.code(), err.details())
    check = err.details().split(":", 1)[0]
    assert check in {"envelope", "header", "sender", "identity", "signature"}, err.details()
