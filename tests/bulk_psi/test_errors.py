"""Bad input to a bulk PSI session through the broker: each a clear error, none an identifier.

Requests are built by hand (gateway.bulk_psi.wire) and carried by the same transport the
querier uses, so the responder's refusal comes back as the broker recorded it.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator

import grpc
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.bulk_psi import BulkPsiError, Mode, QuerierSession
from gateway.bulk_psi.wire import ChunkRequest, Opening, encode_request, pack
from gateway.crypto import psi
from gateway.identifiers import IdentifierKind
from nodes.bulk_psi import BrokerTransport, responder_for, run_psi
from nodes.journal import OutboundRow
from nodes.runtime import NodeContext
from tests.bulk_psi.conftest import CASE, PHONE, Network

IDENTITY = bytes(32)
FIELD_PRIME = (2**255 - 19).to_bytes(32, "little")  # s = p: not a canonical field element


@pytest.fixture(autouse=True)
def no_identifier_in_logs(network: Network, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Whatever a test does, no planted identifier reaches a log line on any node."""
    caplog.set_level(logging.DEBUG)
    yield
    records = caplog.get_records("setup") + caplog.get_records("call")
    text = "\n".join(record.getMessage() for record in records)
    for value in network.planted.values():
        assert value not in text and value.lstrip("+") not in text


def masked(count: int) -> list[bytes]:
    """Well-formed H(x)^a encodings for made-up inputs."""
    key = psi.generate_key()
    inputs = [f"phone\x00+8613{i:09d}".encode() for i in range(count)]
    return psi.encode_elements(psi.exponentiate(key, psi.hash_inputs_to_group(inputs)))


def opening(
    elements: list[bytes],
    *,
    querier_size: int | None = None,
    chunk_size: int = 10,
    kind: IdentifierKind = PHONE,
    responder_set: str = "phone",
) -> bytes:
    return encode_request(
        ChunkRequest(
            session_id=b"",
            exchange=0,
            opening=Opening(
                kind=kind,
                responder_set=responder_set,
                mode=Mode.INTERSECTION,
                querier_size=querier_size if querier_size is not None else len(elements),
                chunk_size=chunk_size,
            ),
            elements=pack(elements),
        )
    )


def transport(ctx: NodeContext, peer: str = "carrier-1") -> BrokerTransport:
    return BrokerTransport(ctx, peer, purpose="test", **CASE)


def refused(call: object, *args: object) -> BulkPsiError:
    with pytest.raises(BulkPsiError) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value


def open_session(ctx: NodeContext) -> tuple[BrokerTransport, QuerierSession]:
    """A real session of 30 elements in chunks of 10, after its first exchange."""
    session = QuerierSession(
        [f"phone\x00+8613{i:09d}".encode() for i in range(30)],
        kind=PHONE,
        responder_set="phone",
        chunk_size=10,
    )
    send = transport(ctx)
    session.accept(send(*session.next_request()))
    return send, session


def later(session: QuerierSession, exchange: int, elements: bytes = b"") -> bytes:
    return encode_request(ChunkRequest(session._session_id, exchange, None, elements))


# -- sessions ----------------------------------------------------------------------------


def test_unknown_session(bank: NodeContext) -> None:
    request = encode_request(ChunkRequest(secrets.token_bytes(16), 1, None, pack(masked(10))))
    error = refused(transport(bank), request, 10)
    assert error.status == grpc.StatusCode.NOT_FOUND
    assert str(error) == "carrier-1 refused exchange 0: unknown bulk PSI session"


def test_exchange_out_of_order_ends_the_session(bank: NodeContext) -> None:
    send, session = open_session(bank)
    try:
        error = refused(send, later(session, 2), 10)
        assert error.status == grpc.StatusCode.FAILED_PRECONDITION
        assert "exchange 2 arrived out of order: expected 1" in str(error)
        payload, batch = session.next_request()
        assert "unknown bulk PSI session" in str(refused(send, payload, batch))
    finally:
        session.close()


def test_a_repeated_exchange_gets_the_same_answer(bank: NodeContext) -> None:
    send, session = open_session(bank)
    try:
        payload, batch = session.next_request()
        first = send(payload, batch)
        assert send(payload, batch) == first  # new message id, same exchange: same answer
    finally:
        session.close()


def test_expired_session(network: Network, bank: NodeContext) -> None:
    send, session = open_session(bank)
    responder = responder_for(network.nodes["carrier-1"].ctx)
    responder.clock = lambda: time.monotonic() + responder.ttl_s + 1
    try:
        payload, batch = session.next_request()
        error = refused(send, payload, batch)
    finally:
        responder.clock = time.monotonic
        session.close()
    assert error.status == grpc.StatusCode.FAILED_PRECONDITION
    assert "the session expired after 300 s without an exchange; start a new one" in str(error)


def test_another_case_cannot_continue_a_session(bank: NodeContext) -> None:
    _send, session = open_session(bank)
    try:
        payload, batch = session.next_request()
        other = BrokerTransport(
            bank, "carrier-1", case_ref="CASE-OTHER", legal_basis="x", purpose="test"
        )
        assert "unknown bulk PSI session" in str(refused(other, payload, batch))
    finally:
        session.close()


# -- elements ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (IDENTITY, "element 3 is refused (the identity element is not accepted)"),
        (FIELD_PRIME, "element 3 is refused (not a canonical ristretto255 element encoding)"),
        (
            bytes([*masked(1)[0][:31], masked(1)[0][31] | 0x80]),
            "element 3 is refused (not a canonical ristretto255 element encoding)",
        ),
    ],
    ids=["identity", "non-canonical", "top-bit"],
)
def test_invalid_elements(bank: NodeContext, bad: bytes, reason: str) -> None:
    elements = masked(10)
    elements[3] = bad
    error = refused(transport(bank), opening(elements), 10)
    assert error.status == grpc.StatusCode.INVALID_ARGUMENT
    assert str(error) == f"carrier-1 refused exchange 0: exchange 0's elements: {reason}"


def test_malformed_requests(bank: NodeContext) -> None:
    send = transport(bank)
    torn = opening(masked(10))[:-1]  # the last element loses a byte
    assert "does not parse" in str(refused(send, b"\xff\xff\xff", 1))
    assert "not a whole number of 32-byte encodings" in str(refused(send, torn, 10)) or (
        "does not parse" in str(refused(send, torn, 10))
    )
    blob = opening([*masked(9), masked(1)[0][:31]])
    assert "not a whole number of 32-byte encodings" in str(refused(send, blob, 10))
    assert "carries 9 elements, expected 10" in str(
        refused(send, opening(masked(9), querier_size=10), 10)
    )
    assert "does not match exchange 0 (10)" in str(refused(send, opening(masked(10)), 7))


def test_wrong_payload_type_is_refused(bank: NodeContext) -> None:
    from gateway.envelope.build import Draft

    member = bank.client.directory().get("carrier-1")
    assert member is not None
    submitted = bank.client.submit(
        Draft(
            sender="bank-a",
            recipients=["carrier-1"],
            kind="PSI_REQUEST",
            payload=opening(masked(3)),
            batch_size=3,
            seal_to=member.seal_key,
            **CASE,
        )
    )
    assert submitted.answers == [] and submitted.undelivered == ["carrier-1"]


# -- sets --------------------------------------------------------------------------------


def test_empty_set(bank: NodeContext) -> None:
    error = refused(
        lambda: run_psi(bank, peer="carrier-1", kind="phone", where={"flag": "none"}, **CASE)
    )
    assert str(error) == "the querier's set is empty: no records match the selection"
    remote = refused(transport(bank), opening([], querier_size=0), 10)
    assert "the querier's set is empty" in str(remote)


def test_querier_set_above_the_responders_limit(bank: NodeContext) -> None:
    error = refused(
        lambda: run_psi(
            bank,
            peer="carrier-1",
            kind="phone",
            where={"flag": "mule"},
            responder_set="small",
            **CASE,
        )
    )
    assert error.status == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert str(error) == (
        "carrier-1 refused exchange 0: the querier's set of 250 elements exceeds this "
        "node's limit of 50"
    )


def test_querier_set_above_its_own_limit_sends_nothing(bank: NodeContext) -> None:
    def sent() -> int:
        with Session(bank.engine) as session:
            return int(session.scalar(select(func.count()).select_from(OutboundRow)) or 0)

    before = sent()
    error = refused(
        lambda: run_psi(
            bank, peer="carrier-1", kind="phone", where={"flag": "mule"}, max_set_size=100, **CASE
        )
    )
    assert str(error) == "the querier's set of 250 elements exceeds the limit of 100"
    assert sent() == before


def test_responder_set_above_its_limit(police: NodeContext) -> None:
    error = refused(
        lambda: run_psi(
            police, peer="carrier-1", kind="phone", where={}, responder_set="all-ok", **CASE
        )
    )
    assert error.status == grpc.StatusCode.FAILED_PRECONDITION
    assert "this node's own set exceeds the limit configured for it" in str(error)


def test_sets_not_offered(bank: NodeContext, carrier: NodeContext) -> None:
    unknown = refused(
        lambda: run_psi(
            bank, peer="carrier-1", kind="phone", where={}, responder_set="nope", **CASE
        )
    )
    assert unknown.status == grpc.StatusCode.NOT_FOUND
    assert "the requested set is not offered by this node" in str(unknown)
    wrong_kind = refused(transport(bank), opening(masked(2), kind=IdentifierKind.ID_CARD), 2)
    assert "the requested set holds another kind of identifier" in str(wrong_kind)
    role = refused(lambda: run_psi(carrier, peer="bank-a", kind="phone", where={}, **CASE))
    assert role.status == grpc.StatusCode.PERMISSION_DENIED
    assert "the requested set is not offered to the carrier role" in str(role)
    cardinality = refused(
        lambda: run_psi(
            bank, peer="carrier-1", kind="phone", where={}, responder_set="flagged-count", **CASE
        )
    )
    assert "offered for cardinality-only PSI" in str(cardinality)


# -- policy ------------------------------------------------------------------------------


def test_broker_policy_allows_only_the_named_pairs(bank: NodeContext) -> None:
    for peer in ("bank-b", "police-1"):
        error = refused(lambda peer=peer: run_psi(bank, peer=peer, kind="phone", where={}, **CASE))
        assert error.status == grpc.StatusCode.PERMISSION_DENIED
        assert str(error).startswith("the broker refused exchange 0: PERMISSION_DENIED: policy")


def test_no_case_no_psi(bank: NodeContext) -> None:
    error = refused(
        lambda: run_psi(
            bank, peer="carrier-1", kind="phone", where={}, case_ref="", legal_basis="x"
        )
    )
    assert error.status == grpc.StatusCode.PERMISSION_DENIED
