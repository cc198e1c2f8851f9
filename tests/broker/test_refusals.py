"""Every bad envelope is refused with a specific status and a reason naming the check.

Each case also checks that nothing was stored as delivered: no message row at the
broker and nothing in the bank's journal. The module runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.broker.models import DeliveryRow, MessageRow
from gateway.envelope.build import Draft, now_ms
from gateway.pki.ca import create_ca, issue_node_certificate
from gateway.transport import TlsFiles, secure_channel
from gateway.v1 import gateway_pb2 as pb
from gateway.v1 import gateway_pb2_grpc as rpc
from nodes.journal import InboundRow
from tests.consortium import CONSORTIUM, Consortium, running
from tests.postgres import opened


@pytest.fixture(scope="module")
def net(backend_consortium: Consortium) -> Iterator[Consortium]:
    with running(backend_consortium, ("police-1", "bank-a"), max_envelope_bytes=64 * 1024):
        yield backend_consortium


def stub_as(c: Consortium, node_id: str) -> rpc.BrokerStub:
    bundle = c.pki.bundle(node_id)
    tls = TlsFiles(bundle.tls_cert, bundle.tls_key, bundle.ca_cert)
    return rpc.BrokerStub(secure_channel(f"127.0.0.1:{c.broker_port}", "broker", tls))


def ping(c: Consortium, **changes: object) -> Draft:
    draft = Draft(
        sender="police-1", recipients=["bank-a"], kind="PING", payload=b"{}", purpose="test"
    )
    return replace(draft, **changes)


def police_key(c: Consortium):  # type: ignore[no-untyped-def]
    return c.pki.bundle("police-1").keys().signing


def stored(c: Consortium, message_id: str) -> tuple[int, int, int]:
    with opened(c.broker_database) as broker, Session(broker) as s:
        messages = s.scalar(
            select(func.count()).select_from(MessageRow).where(MessageRow.message_id == message_id)
        )
        deliveries = s.scalar(
            select(func.count())
            .select_from(DeliveryRow)
            .where(DeliveryRow.message_id == message_id)
        )
    with opened(c.node_config("bank-a").database) as bank, Session(bank) as s:
        inbound = s.scalar(
            select(func.count()).select_from(InboundRow).where(InboundRow.message_id == message_id)
        )
    return int(messages or 0), int(deliveries or 0), int(inbound or 0)


def refused(stub: rpc.BrokerStub, envelope: pb.Envelope) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        stub.Submit(envelope, timeout=10)
    return info.value


def test_good_ping_is_answered(net: Consortium) -> None:
    draft = ping(net)
    reply = stub_as(net, "police-1").Submit(draft.sign(police_key(net)), timeout=10)
    assert reply.decision == "ALLOW"
    assert [pb.Header.FromString(r.header).sender for r in reply.responses] == ["bank-a"]
    assert stored(net, draft.message_id) == (1, 0, 1)


def test_unknown_sender(net: Consortium) -> None:
    draft = ping(net, sender="ghost-9")
    err = refused(stub_as(net, "police-1"), draft.sign(police_key(net)))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert err.details().startswith("sender:")
    assert stored(net, draft.message_id) == (0, 0, 0)


def test_certificate_not_issued_by_consortium_ca(net: Consortium, tmp_path: Path) -> None:
    rogue_ca = create_ca(CONSORTIUM)
    rogue = issue_node_certificate(rogue_ca, CONSORTIUM, "police-1")
    (tmp_path / "c.crt").write_bytes(rogue.cert_pem)
    (tmp_path / "c.key").write_bytes(rogue.key_pem)
    tls = TlsFiles(tmp_path / "c.crt", tmp_path / "c.key", net.pki.bundle("police-1").ca_cert)
    stub = rpc.BrokerStub(secure_channel(f"127.0.0.1:{net.broker_port}", "broker", tls))
    draft = ping(net)
    err = refused(stub, draft.sign(police_key(net)))
    assert err.code() == grpc.StatusCode.UNAVAILABLE  # the TLS handshake itself fails
    assert stored(net, draft.message_id) == (0, 0, 0)


def test_mtls_identity_differs_from_header_sender(net: Consortium) -> None:
    draft = ping(net)
    err = refused(stub_as(net, "bank-a"), draft.sign(police_key(net)))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert err.details().startswith("identity:")
    assert stored(net, draft.message_id) == (0, 0, 0)


def test_bad_signature(net: Consortium) -> None:
    draft = ping(net)
    envelope = draft.sign(net.pki.bundle("bank-a").keys().signing)  # the wrong key
    err = refused(stub_as(net, "police-1"), envelope)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert err.details().startswith("signature:")
    assert stored(net, draft.message_id) == (0, 0, 0)


def test_modified_payload(net: Consortium) -> None:
    draft = ping(net)
    envelope = draft.sign(police_key(net))
    envelope.payload = b'{"x":1}'
    err = refused(stub_as(net, "police-1"), envelope)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith("digest:")
    assert stored(net, draft.message_id) == (0, 0, 0)


def test_replayed_envelope(net: Consortium) -> None:
    draft = ping(net)
    envelope = draft.sign(police_key(net))
    stub = stub_as(net, "police-1")
    stub.Submit(envelope, timeout=10)
    err = refused(stub, envelope)
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert err.details().startswith("replay:")
    assert stored(net, draft.message_id) == (1, 0, 1)  # the first delivery only


def test_expired_envelope(net: Consortium) -> None:
    draft = ping(net, created_at_ms=now_ms() - 60_000, lifetime_ms=30_000)
    err = refused(stub_as(net, "police-1"), draft.sign(police_key(net)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.details().startswith("expiry:")
    assert stored(net, draft.message_id) == (0, 0, 0)


def test_stale_timestamp(net: Consortium) -> None:
    draft = ping(net, created_at_ms=now_ms() - 3_600_000, lifetime_ms=7_200_000)
    err = refused(stub_as(net, "police-1"), draft.sign(police_key(net)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.details().startswith("timestamp:")
    assert stored(net, draft.message_id) == (0, 0, 0)


def test_unknown_recipient(net: Consortium) -> None:
    draft = ping(net, recipients=["bank-zz"])
    err = refused(stub_as(net, "police-1"), draft.sign(police_key(net)))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert err.details().startswith("recipient:")
    assert stored(net, draft.message_id) == (0, 0, 0)


def test_oversized_envelope(net: Consortium) -> None:
    draft = ping(net, payload=b"x" * (65 * 1024))
    err = refused(stub_as(net, "police-1"), draft.sign(police_key(net)))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert err.details().startswith("size:")
    assert stored(net, draft.message_id) == (0, 0, 0)


def test_malformed_header(net: Consortium) -> None:
    envelope = pb.Envelope(header=b"\xff\xff\xff", payload=b"", signature=b"")
    err = refused(stub_as(net, "police-1"), envelope)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith("header:")


def test_policy_denial_is_audited_and_not_delivered(net: Consortium) -> None:
    # A bank may not send a stop-payment: denied by policy, recorded, never delivered.
    bank_key = net.pki.bundle("bank-a").keys().signing
    police_seal = net.pki.directory().get("police-1").seal_key  # type: ignore[union-attr]
    draft = Draft(
        sender="bank-a",
        recipients=["police-1"],
        kind="STOP_PAYMENT",
        payload=b"{}",
        case_ref="C-1",
        legal_basis="art. 1",
        seal_to=police_seal,
        terms=pb.ActionTerms(
            action="STOP_PAYMENT",
            amount_minor=100,
            duration_hours=24,
            issuing_officer="officer-7",
            approving_officer="chief-2",
        ),
    )
    err = refused(stub_as(net, "bank-a"), draft.sign(bank_key))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert err.details().startswith("policy:")
    messages, deliveries, _ = stored(net, draft.message_id)
    assert (messages, deliveries) == (1, 0)  # recorded as denied, nothing in the outbox
