"""The session protocol without a broker: plan, wire checks, both state machines.

The two state machines are wired directly (a transport that calls the responder), so
these tests reach corners a real querier never produces: a responder that lies about its
set, invalid elements from the responder, sessions bound to their peer.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.bulk_psi import (
    BulkPsiError,
    Mode,
    Offer,
    Peer,
    QuerierSession,
    Responder,
    SessionPlan,
    run_querier,
)
from gateway.bulk_psi.wire import (
    ChunkRequest,
    ChunkResponse,
    Opening,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    mask_received,
    pack,
    split_elements,
)
from gateway.crypto import psi
from gateway.identifiers import IdentifierKind
from gateway.v1 import psi_pb2

PHONE = IdentifierKind.PHONE
BANK = Peer("bank-a", "bank", "CASE-1")


def inputs(numbers: Sequence[int]) -> list[bytes]:
    return [f"phone\x00+86138{n:08d}".encode() for n in numbers]


def responder_with(
    own: Sequence[bytes], *, cardinality_only: bool = False, **options: object
) -> Responder:
    offer = Offer("phone", PHONE, {"flag": "flagged"}, cardinality_only=cardinality_only)
    return Responder(
        offers=lambda name: offer if name == "phone" else None,
        load_set=lambda _offer: own,
        workers=2,
        **options,  # type: ignore[arg-type]
    )


def direct(responder: Responder, peer: Peer = BANK) -> Callable[[bytes, int], bytes]:
    return lambda payload, batch: responder.handle(peer, payload, batch)[0]


def run(
    mine: Sequence[bytes], theirs: Sequence[bytes], mode: Mode, chunk_size: int
) -> tuple[int, tuple[int, ...] | None]:
    session = QuerierSession(
        mine, kind=PHONE, responder_set="phone", mode=mode, chunk_size=chunk_size, workers=2
    )
    result = run_querier(direct(responder_with(theirs)), session)
    return result.cardinality, result.matches


# -- plan --------------------------------------------------------------------------------


def test_intersection_schedule() -> None:
    plan = SessionPlan(Mode.INTERSECTION, querier_size=25, chunk_size=10)
    assert plan.querier_exchanges == 3
    assert [len(plan.querier_span(i)) for i in range(4)] == [10, 10, 5, 0]
    assert [len(plan.double_masked_span(i)) for i in range(4)] == [10, 10, 5, 0]
    assert [plan.batch_size(i) for i in range(5)] == [10, 10, 5, 10, 10]
    assert not plan.complete(3, None, 0)  # the responder has not told its size
    assert not plan.complete(3, 31, 3)  # 31 elements are 4 chunks
    assert plan.complete(3, 31, 4) and plan.complete(3, 0, 0)
    assert not plan.complete(2, 0, 0)


def test_cardinality_schedule_returns_the_shuffled_set_from_the_last_upload() -> None:
    plan = SessionPlan(Mode.CARDINALITY, querier_size=25, chunk_size=10)
    assert plan.querier_exchanges == 5
    assert [len(plan.querier_span(i)) for i in range(5)] == [10, 10, 5, 0, 0]
    assert [len(plan.double_masked_span(i)) for i in range(6)] == [0, 0, 10, 10, 5, 0]


@pytest.mark.parametrize(("size", "chunk"), [(0, 10), (5, 0), (5, 10_001)])
def test_plan_refuses_empty_sets_and_bad_chunks(size: int, chunk: int) -> None:
    with pytest.raises(ValueError):
        SessionPlan(Mode.INTERSECTION, size, chunk)


# -- results -----------------------------------------------------------------------------


@settings(max_examples=12, deadline=None)
@given(
    mine=st.sets(st.integers(0, 120), min_size=1, max_size=60),
    theirs=st.sets(st.integers(0, 120), max_size=60),
    chunk=st.integers(1, 25),
    mode=st.sampled_from(list(Mode)),
)
def test_result_is_the_set_intersection(
    mine: set[int], theirs: set[int], chunk: int, mode: Mode
) -> None:
    ordered = sorted(mine)
    count, matches = run(inputs(ordered), inputs(sorted(theirs)), mode, chunk)
    assert count == len(mine & theirs)
    if mode is Mode.INTERSECTION:
        assert matches is not None
        assert {ordered[i] for i in matches} == mine & theirs
    else:
        assert matches is None


def test_duplicates_count_once_and_positions_refer_to_the_input() -> None:
    mine = inputs([5, 1, 5, 9, 1, 7])
    count, matches = run(mine, inputs([1, 7, 8]), Mode.INTERSECTION, 2)
    assert count == 2 and matches == (1, 5)


def test_cardinality_answers_carry_no_position() -> None:
    """Acting as the querier by hand: the 20 matches are the first 20 of 300 elements sent,
    in chunk 0; the shuffled answers put them all over the set, across chunks."""
    key = psi.generate_key()
    mine = inputs(range(300))
    theirs = inputs(range(20)) + inputs(range(1000, 1100))
    responder = responder_with(theirs)
    masked = psi.encode_elements(psi.exponentiate(key, psi.hash_inputs_to_group(mine)))
    plan = SessionPlan(Mode.CARDINALITY, 300, 50)
    opening = Opening(PHONE, "phone", Mode.CARDINALITY, 300, 50)
    session_id, returned, peer = b"", [], []
    for exchange in range(plan.querier_exchanges + 10):
        span = plan.querier_span(exchange)
        request = ChunkRequest(
            session_id,
            exchange,
            opening if exchange == 0 else None,
            pack(masked[span.start : span.stop]),
        )
        payload, _ = responder.handle(BANK, encode_request(request), plan.batch_size(exchange))
        response = decode_response(payload)
        session_id = response.session_id
        returned += split_elements(response.double_masked, "x")
        peer += split_elements(response.responder_elements, "y")
        if plan.complete(
            exchange + 1, response.responder_size, len(peer) // 50 + (len(peer) % 50 > 0)
        ):
            break
    assert responder.open_sessions == 0  # closed after its last exchange
    unmasked = {e for e in psi.encode_elements(psi.exponentiate(key, psi.decode_elements(peer)))}
    positions = [i for i, element in enumerate(returned) if element in unmasked]
    assert len(returned) == 300 and len(positions) == 20
    assert positions != list(range(20))
    assert len({p // 50 for p in positions}) > 1  # shuffled over the whole set, not per chunk


# -- the responder -----------------------------------------------------------------------


def opening_request(count: int = 10, chunk: int = 10, mode: Mode = Mode.INTERSECTION) -> bytes:
    key = psi.generate_key()
    elements = psi.encode_elements(
        psi.exponentiate(key, psi.hash_inputs_to_group(inputs(range(count))))
    )
    return encode_request(
        ChunkRequest(b"", 0, Opening(PHONE, "phone", mode, count, chunk), pack(elements[:chunk]))
    )


def test_sessions_are_bound_to_their_peer() -> None:
    responder = responder_with(inputs(range(30)))
    answer, _ = responder.handle(BANK, opening_request(20), 10)
    session_id = decode_response(answer).session_id
    follow_up = encode_request(ChunkRequest(session_id, 1, None, pack([bytes(32)] * 10)))
    for stranger in (Peer("bank-b", "bank", "CASE-1"), Peer("bank-a", "bank", "CASE-2")):
        with pytest.raises(BulkPsiError, match="unknown bulk PSI session") as caught:
            responder.handle(stranger, follow_up, 10)
        assert caught.value.status == grpc.StatusCode.NOT_FOUND
    assert responder.open_sessions == 1
    responder.close()


def test_open_sessions_are_limited() -> None:
    responder = responder_with(inputs(range(30)), max_sessions=2)
    responder.handle(BANK, opening_request(20), 10)
    responder.handle(BANK, opening_request(20), 10)
    with pytest.raises(BulkPsiError, match="2 bulk PSI sessions open") as caught:
        responder.handle(BANK, opening_request(20), 10)
    assert caught.value.status == grpc.StatusCode.RESOURCE_EXHAUSTED
    responder.close()


def test_idle_sessions_expire_and_free_their_place() -> None:
    now = [1000.0]
    responder = responder_with(inputs(range(30)), max_sessions=1, ttl_s=60, clock=lambda: now[0])
    answer, _ = responder.handle(BANK, opening_request(20), 10)
    now[0] += 61
    responder.sweep()
    assert responder.open_sessions == 0
    responder.handle(BANK, opening_request(20), 10)  # the place is free again
    follow_up = encode_request(
        ChunkRequest(decode_response(answer).session_id, 1, None, pack([bytes(32)] * 10))
    )
    with pytest.raises(BulkPsiError, match="expired after 60 s"):
        responder.handle(BANK, follow_up, 10)
    responder.close()


def test_cardinality_only_offer_refuses_element_answers() -> None:
    responder = responder_with(inputs(range(5)), cardinality_only=True)
    with pytest.raises(BulkPsiError, match="cardinality-only") as caught:
        responder.handle(BANK, opening_request(), 10)
    assert caught.value.status == grpc.StatusCode.PERMISSION_DENIED
    responder.handle(BANK, opening_request(mode=Mode.CARDINALITY), 10)
    responder.close()


# -- wire --------------------------------------------------------------------------------


def raw_request(**fields: object) -> bytes:
    message = psi_pb2.PsiChunkRequest(version=1, **fields)  # type: ignore[arg-type]
    return message.SerializeToString()


def good_open(**changes: object) -> psi_pb2.PsiOpen:
    fields: dict[str, object] = {
        "identifier_kind": "phone",
        "responder_set": "phone",
        "mode": psi_pb2.PSI_MODE_INTERSECTION,
        "querier_size": 3,
        "chunk_size": 3,
    }
    fields.update(changes)
    return psi_pb2.PsiOpen(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\x08\x02", "version 2 is not supported"),
        (raw_request(exchange=0), "exchange 0, and only exchange 0, opens a session"),
        (raw_request(exchange=1, open=good_open()), "exchange 0, and only exchange 0"),
        (
            raw_request(exchange=0, open=good_open(), session_id=b"x" * 16),
            "must not name a session",
        ),
        (raw_request(exchange=1, session_id=b"short"), "a session id is 16 bytes"),
        (
            raw_request(exchange=0, open=good_open(identifier_kind="email")),
            "no known identifier kind",
        ),
        (raw_request(exchange=0, open=good_open(mode=0)), "names no PSI mode"),
        (raw_request(exchange=0, open=good_open(querier_size=0)), "the querier's set is empty"),
        (
            raw_request(exchange=0, open=good_open(chunk_size=10_001)),
            "chunk size must be 1 to 10000",
        ),
        (
            raw_request(exchange=0, open=good_open(responder_set="+8613800138000 x")),
            "a set name is",
        ),
        (
            raw_request(exchange=0, open=good_open(querier_selection={"flag": "a\nb"})),
            "not a short printable word",
        ),
        (raw_request(exchange=1, session_id=b"s" * 16, elements=b"x" * 33), "not a whole number"),
    ],
)
def test_malformed_requests_are_refused(payload: bytes, reason: str) -> None:
    with pytest.raises(BulkPsiError, match=reason) as caught:
        decode_request(payload)
    assert caught.value.status == grpc.StatusCode.INVALID_ARGUMENT
    assert "8613800138000" not in str(caught.value)


# -- the querier against a lying responder ------------------------------------------------


class Tamper:
    """A responder whose answers are edited before the querier sees them."""

    def __init__(self, edit: Callable[[ChunkResponse], ChunkResponse]) -> None:
        self.responder = responder_with(inputs(range(40)))
        self.edit = edit

    def __call__(self, payload: bytes, batch_size: int) -> bytes:
        answer, _ = self.responder.handle(BANK, payload, batch_size)
        return encode_response(self.edit(decode_response(answer)))


def querier(size: int = 30, **options: object) -> QuerierSession:
    return QuerierSession(
        inputs(range(size)),
        kind=PHONE,
        responder_set="phone",
        chunk_size=10,
        **options,  # type: ignore[arg-type]
    )


def replace(response: ChunkResponse, **changes: object) -> ChunkResponse:
    fields = dict(response.__dict__)
    fields.update(changes)
    return ChunkResponse(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda r: replace(r, exchange=r.exchange + 1), "the answer is for exchange 1, not 0"),
        (lambda r: replace(r, double_masked=r.double_masked[32:]), "returned 9 doubly-masked"),
        (
            lambda r: (
                replace(r, responder_size=(r.responder_size or 0) + 1) if r.exchange == 1 else r
            ),
            "set size changed in exchange 1",
        ),
        (
            lambda r: (
                replace(r, responder_elements=bytes(32) + r.responder_elements[32:])
                if r.responder_elements
                else r
            ),
            "responder elements: element 0 is refused \\(the identity element is not accepted\\)",
        ),
        (
            lambda r: replace(r, session_id=secrets.token_bytes(16)) if r.exchange == 1 else r,
            "names another session",
        ),
        (lambda r: replace(r, responder_size=10**9), "the responder's set of 1000000000 elements"),
    ],
    ids=["exchange", "count", "size-change", "identity", "session", "too-big"],
)
def test_querier_refuses_a_lying_responder(
    edit: Callable[[ChunkResponse], ChunkResponse], reason: str
) -> None:
    with pytest.raises(BulkPsiError, match=reason) as caught:
        run_querier(Tamper(edit), querier())
    assert "8613" not in str(caught.value)


def test_querier_gives_up_on_a_responder_that_sends_nothing() -> None:
    def silent(payload: bytes, _batch_size: int) -> bytes:
        request = decode_request(payload)
        return encode_response(
            ChunkResponse(b"s" * 16, request.exchange, None, request.elements, 0, b"")
        )

    with pytest.raises(BulkPsiError, match="sent nothing in 31 exchanges in a row"):
        run_querier(silent, querier(10))


def test_querier_refuses_empty_and_oversized_sets_before_sending() -> None:
    with pytest.raises(BulkPsiError, match="the querier's set is empty"):
        querier(0)
    with pytest.raises(BulkPsiError, match="set of 30 elements exceeds the limit of 20"):
        querier(30, max_set_size=20)


def test_a_repeated_opening_finds_its_session() -> None:
    """A querier that lost the first answer sends the same opening again (a new message)."""
    responder = responder_with(inputs(range(30)))
    request = opening_request(20)
    first, _ = responder.handle(BANK, request, 10)
    again, _ = responder.handle(BANK, request, 10)
    assert again == first and responder.open_sessions == 1
    responder.close()


def test_parallel_masking_names_the_bad_element() -> None:
    key, other = psi.generate_key(), psi.generate_key()
    hashed = psi.hash_inputs_to_group(inputs(range(600)))
    encodings = psi.encode_elements(psi.exponentiate(key, hashed))
    masked = mask_received(pack(encodings), "x", other, workers=2)
    # Independent computation of the same H(x)^(key*other), through the decoding path.
    expected = psi.exponentiate(other, psi.decode_elements(encodings))
    assert masked == expected
    for position, bad in ((555, bytes(32)), (17, b"\xff" * 32), (599, b"\x01" + bytes(31))):
        tampered = list(encodings)
        tampered[position] = bad
        with pytest.raises(BulkPsiError, match=f"x: element {position} is refused") as info:
            mask_received(pack(tampered), "x", other, workers=2)
        assert bad.hex() not in str(info.value)
