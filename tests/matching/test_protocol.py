"""One query and answer without the network: what matches, and every malformed input.

The responder side is fed bytes a querier could send, and the querier side is fed
answers a responder could send; every refusal must say what is wrong without repeating
an identifier, a blinded element, a tag or a label.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path

import pytest
from sqlalchemy import Engine

from gateway.crypto.blinded import OprfServer
from gateway.db import NodeBase, make_engine
from gateway.identifiers import Identifier, IdentifierKind, normalise
from gateway.matching import (
    KeyMismatch,
    MatchError,
    PendingQuery,
    Problem,
    QueryRefused,
    ResponderLimits,
    ResponseRejected,
    answer_query,
)
from gateway.matching.index_store import fetch_buckets
from gateway.matching.wire import VERSION, mpb
from nodes.index_build import update_index
from nodes.records import upsert_records
from tests.matching import reference

BITS = 8
LIMITS = ResponderLimits(bucket_bits=BITS, max_batch=50)
HELD = [f"+86137{n:08d}" for n in range(30)]
"""Phones the responder holds; the query asks for some of these and some others."""


def phone(value: str) -> Identifier:
    return Identifier(IdentifierKind.PHONE, value)


@pytest.fixture(scope="module")
def responder(tmp_path_factory: pytest.TempPathFactory) -> tuple[OprfServer, Engine]:
    engine = make_engine(str(tmp_path_factory.mktemp("responder") / "node.db"))
    NodeBase.metadata.create_all(engine)
    upsert_records(
        engine, [(phone(v), {"status": f"S{i}", "secret": "x"}) for i, v in enumerate(HELD)]
    )
    server = OprfServer.generate()
    update_index(engine, server.private_key_bytes(), bucket_bits=BITS, label_fields=["status"])
    return server, engine


def source(engine: Engine) -> Callable[[Collection[int]], dict[int, list[tuple[bytes, bytes]]]]:
    return lambda asked: fetch_buckets(engine, asked)


def ask(
    responder: tuple[OprfServer, Engine], identifiers: list[Identifier], **overrides: object
) -> tuple[PendingQuery, bytes]:
    server, engine = responder
    query = PendingQuery(identifiers, server.public_key, bucket_bits=BITS, max_batch=50)
    payload = query.payload()
    options: dict[str, object] = {
        "declared_batch": len(query),
        "server": server,
        "buckets": source(engine),
        "limits": LIMITS,
    }
    options.update(overrides)
    answered = answer_query(payload, **options)  # type: ignore[arg-type]
    return query, answered.payload


def assert_safe(error: Exception, *secrets: str) -> None:
    text = str(error)
    for secret in secrets:
        assert secret not in text
        assert secret.lstrip("+") not in text
    assert "\\x" not in text, "no bytes in an error message"


# -- what matches -----------------------------------------------------------------------


def test_planted_identifiers_match_and_others_do_not(responder: tuple[OprfServer, Engine]) -> None:
    asked = [HELD[3], "+8613900000001", HELD[17], "+8613900000002", HELD[3]]
    query, answer = ask(responder, [phone(v) for v in asked])
    assert len(query) == 4, "a repeated identifier is asked once"
    matches = query.open(answer)
    assert [(m.position, m.fields["status"]) for m in matches] == [(0, "S3"), (2, "S17"), (4, "S3")]
    assert all(set(m.fields) == {"status", "handle"} for m in matches)


def test_a_query_in_parts_is_proven_part_by_part(responder: tuple[OprfServer, Engine]) -> None:
    server, engine = responder
    asked = [HELD[n] for n in range(0, 20, 2)] + [f"+86135{n:08d}" for n in range(5)]
    query = PendingQuery(
        [phone(v) for v in asked], server.public_key, bucket_bits=BITS, max_batch=50, parts=3
    )
    sent = mpb.MatchQuery.FromString(query.payload())
    assert list(sent.parts) == [5, 5, 5]
    answered = answer_query(
        query.payload(), declared_batch=15, server=server, buckets=source(engine), limits=LIMITS
    )
    assert len(mpb.MatchResponse.FromString(answered.payload).proofs) == 3
    assert [m.position for m in query.open(answered.payload)] == list(range(10))

    def flip_last(r: mpb.MatchResponse) -> None:
        r.proofs[2] = r.proofs[2][:40] + bytes([r.proofs[2][40] ^ 1]) + r.proofs[2][41:]

    assert isinstance(reject(query, tampered(answered.payload, flip_last)), KeyMismatch)
    assert "2 proofs for 3 parts" in str(
        reject(query, tampered(answered.payload, lambda r: r.proofs.pop()))
    )


@pytest.mark.parametrize(
    ("parts", "reason"),
    [
        ([1, 1], "parts do not add up to its 3 items"),
        ([3, 0], "parts do not add up to its 3 items"),
        ([1] * 17, "asks for 17 parts; at most 16"),
    ],
)
def test_parts_that_do_not_cover_the_items_are_refused(
    responder: tuple[OprfServer, Engine], parts: list[int], reason: str
) -> None:
    element = good_element(responder)
    payload = mpb.MatchQuery(
        version=VERSION,
        bucket_bits=BITS,
        items=[mpb.MatchItem(bucket=0, blinded=element)] * 3,
        parts=parts,
    ).SerializeToString()
    assert reason in str(refuse(responder, payload, 3))


def test_the_responder_sees_only_buckets_and_blinded_elements(
    responder: tuple[OprfServer, Engine],
) -> None:
    server, _ = responder
    identifiers = [phone(HELD[0]), phone("+8613900000009")]
    query = PendingQuery(identifiers, server.public_key, bucket_bits=BITS, max_batch=10)
    sent = mpb.MatchQuery.FromString(query.payload())
    assert sent.bucket_bits == BITS
    assert [item.bucket for item in sent.items] == [
        reference.bucket(i.canonical_input(), BITS) for i in identifiers
    ]
    raw = query.payload()
    for identifier in identifiers:
        assert identifier.value.encode() not in raw
        assert identifier.value[1:].encode() not in raw
    assert repr(query) == "PendingQuery(<2 items>)"


def test_the_answer_holds_exactly_the_asked_buckets(responder: tuple[OprfServer, Engine]) -> None:
    _, answer = ask(responder, [phone(HELD[1]), phone(HELD[2])])
    response = mpb.MatchResponse.FromString(answer)
    asked = {reference.bucket(phone(v).canonical_input(), BITS) for v in (HELD[1], HELD[2])}
    assert {b.bucket for b in response.buckets} == asked
    assert len(response.evaluated) == 2 and [len(p) for p in response.proofs] == [64]


# -- bad queries, refused by the responder -----------------------------------------------


def query_bytes(items: list[tuple[int, bytes]], bits: int = BITS, version: int = VERSION) -> bytes:
    return mpb.MatchQuery(
        version=version,
        bucket_bits=bits,
        items=[mpb.MatchItem(bucket=b, blinded=e) for b, e in items],
    ).SerializeToString()


def good_element(responder: tuple[OprfServer, Engine]) -> bytes:
    server, _ = responder
    query = PendingQuery([phone(HELD[0])], server.public_key, bucket_bits=BITS, max_batch=1)
    return mpb.MatchQuery.FromString(query.payload()).items[0].blinded


def refuse(
    responder: tuple[OprfServer, Engine], payload: bytes, declared: int, **limits: int
) -> QueryRefused:
    server, engine = responder
    bounds = ResponderLimits(**{"bucket_bits": BITS, "max_batch": 50, **limits})
    with pytest.raises(QueryRefused) as caught:
        answer_query(
            payload, declared_batch=declared, server=server, buckets=source(engine), limits=bounds
        )
    assert_safe(caught.value, *HELD)
    return caught.value


def test_an_empty_query_is_refused(responder: tuple[OprfServer, Engine]) -> None:
    assert "holds no items" in str(refuse(responder, query_bytes([]), 0))


def test_a_batch_above_the_limit_is_refused(responder: tuple[OprfServer, Engine]) -> None:
    element = good_element(responder)
    error = refuse(responder, query_bytes([(1, element)] * 6), 6, max_batch=5)
    assert error.problem is Problem.TOO_LARGE
    assert "batch of 6 items exceeds this responder's limit of 5" in str(error)


def test_a_batch_size_other_than_the_envelope_declares_is_refused(
    responder: tuple[OprfServer, Engine],
) -> None:
    error = refuse(responder, query_bytes([(1, good_element(responder))] * 3), 1)
    assert "holds 3 items but its envelope declares a batch of 1" in str(error)


def test_other_bucket_bits_are_refused_naming_both(responder: tuple[OprfServer, Engine]) -> None:
    error = refuse(responder, query_bytes([(1, good_element(responder))], bits=16), 1)
    assert "uses 16 bucket bits; this responder's index uses 8" in str(error)


def test_a_bucket_out_of_range_is_refused(responder: tuple[OprfServer, Engine]) -> None:
    error = refuse(
        responder, query_bytes([(1, good_element(responder)), (256, good_element(responder))]), 2
    )
    assert "item 1: bucket is out of range for 8 bits" in str(error)


@pytest.mark.parametrize(
    ("element", "reason"),
    [
        (bytes(32), "item 0: the blinded element is the identity"),
        (b"\x01" * 31, "item 0: a blinded element must be 32 bytes"),
        (b"\xff" * 32, "not a canonical, non-identity ristretto255 encoding"),
        # An odd field element (s's low bit set) is never a canonical ristretto255 encoding.
        (b"\x01" + bytes(31), "not a canonical, non-identity ristretto255 encoding"),
    ],
    ids=["identity", "short", "non-canonical", "negative"],
)
def test_bad_elements_are_refused(
    responder: tuple[OprfServer, Engine], element: bytes, reason: str
) -> None:
    assert reason in str(refuse(responder, query_bytes([(0, element)]), 1))


def test_a_payload_that_is_not_a_query_is_refused(responder: tuple[OprfServer, Engine]) -> None:
    assert "not a MatchQuery" in str(refuse(responder, b"\xff\xff\xff", 1))
    assert "version 3 is not supported" in str(refuse(responder, query_bytes([], version=3), 0))
    # Version 1 tags and labels (HKDF, JSON) are not what a version 2 index holds.
    assert "version 1 is not supported" in str(refuse(responder, query_bytes([], version=1), 0))


def test_an_answer_too_big_for_one_envelope_is_refused(
    responder: tuple[OprfServer, Engine],
) -> None:
    server, _ = responder
    query = PendingQuery([phone(HELD[0])], server.public_key, bucket_bits=BITS, max_batch=1)
    error = refuse(responder, query.payload(), 1, max_answer_bytes=10)
    assert error.problem is Problem.TOO_LARGE and "send fewer identifiers" in str(error)


# -- bad queries, refused by the querier before anything is sent ------------------------


def test_the_querier_refuses_empty_and_oversized_batches(
    responder: tuple[OprfServer, Engine],
) -> None:
    server, _ = responder
    with pytest.raises(MatchError, match="no identifiers"):
        PendingQuery([], server.public_key, bucket_bits=BITS, max_batch=5)
    many = [phone(f"+86136{n:08d}") for n in range(6)]
    with pytest.raises(MatchError, match="6 distinct identifiers exceed the limit of 5") as caught:
        PendingQuery(many, server.public_key, bucket_bits=BITS, max_batch=5)
    assert_safe(caught.value, *(i.value for i in many))


def test_a_malformed_identifier_is_an_error_without_its_value() -> None:
    from gateway.identifiers import InvalidIdentifier

    with pytest.raises(InvalidIdentifier) as caught:
        normalise("phone", "+86 138 0013 80")
    assert str(caught.value) == "invalid phone: not a valid number for its country"


# -- bad answers, refused by the querier ------------------------------------------------


def tampered(answer: bytes, change: Callable[[mpb.MatchResponse], None]) -> bytes:
    response = mpb.MatchResponse.FromString(answer)
    change(response)
    return response.SerializeToString()


def reject(query: PendingQuery, answer: bytes) -> ResponseRejected:
    with pytest.raises(ResponseRejected) as caught:
        query.open(answer)
    assert_safe(caught.value, *HELD)
    return caught.value


def test_an_answer_under_another_key_is_detected(
    responder: tuple[OprfServer, Engine], tmp_path: Path
) -> None:
    server, engine = responder
    impostor = OprfServer.generate()
    # The impostor answers honestly under its own key, from an index built under that key.
    query = PendingQuery([phone(HELD[4])], server.public_key, bucket_bits=BITS, max_batch=5)
    answered = answer_query(
        query.payload(), declared_batch=1, server=impostor, buckets=source(engine), limits=LIMITS
    )
    error = reject(query, answered.payload)
    assert isinstance(error, KeyMismatch)
    assert "other than the one the signed directory lists" in str(error)
    # Claiming the published key does not help: the proof fails against it.
    error = reject(
        query, tampered(answered.payload, lambda r: setattr(r, "public_key", server.public_key))
    )
    assert isinstance(error, KeyMismatch)
    assert "proof does not verify under the responder's published OPRF key" in str(error)


def test_a_failing_proof_is_detected(responder: tuple[OprfServer, Engine]) -> None:
    query, answer = ask(responder, [phone(HELD[5])])

    def flip(r: mpb.MatchResponse) -> None:
        r.proofs[0] = r.proofs[0][:40] + bytes([r.proofs[0][40] ^ 1]) + r.proofs[0][41:]

    assert "proof does not verify" in str(reject(query, tampered(answer, flip)))


def test_bucket_contents_not_asked_for_are_refused(responder: tuple[OprfServer, Engine]) -> None:
    query, answer = ask(responder, [phone(HELD[6])])
    asked = reference.bucket(phone(HELD[6]).canonical_input(), BITS)
    extra = mpb.MatchBucket(bucket=(asked + 1) % 256, tags=b"t" * 8, labels=[b"l"])
    error = reject(query, tampered(answer, lambda r: r.buckets.append(extra)))
    assert "contents of a bucket that was not asked" in str(error)


def test_missing_or_repeated_buckets_are_refused(responder: tuple[OprfServer, Engine]) -> None:
    query, answer = ask(responder, [phone(HELD[7])])
    assert "leaves out 1 of the asked buckets" in str(
        reject(query, tampered(answer, lambda r: r.ClearField("buckets")))
    )
    assert "bucket twice" in str(
        reject(query, tampered(answer, lambda r: r.buckets.append(r.buckets[0])))
    )


def test_tags_that_do_not_pair_with_labels_are_refused(
    responder: tuple[OprfServer, Engine],
) -> None:
    query, answer = ask(responder, [phone(HELD[11])])

    def chop(r: mpb.MatchResponse) -> None:
        r.buckets[0].tags = r.buckets[0].tags[:-1]

    assert "tags are not 8 bytes for each of its labels" in str(
        reject(query, tampered(answer, chop))
    )


def test_wrong_evaluation_count_and_malformed_fields_are_refused(
    responder: tuple[OprfServer, Engine],
) -> None:
    query, answer = ask(responder, [phone(HELD[8]), phone(HELD[9])])
    assert "1 evaluations for 2 items" in str(
        reject(query, tampered(answer, lambda r: r.evaluated.pop()))
    )
    assert "a proof is not 64 bytes" in str(
        reject(query, tampered(answer, lambda r: r.proofs.__setitem__(0, b"p")))
    )

    def bad_element(r: mpb.MatchResponse) -> None:
        r.evaluated[0] = b"\xff" * 32

    assert "not a valid ristretto255 element" in str(reject(query, tampered(answer, bad_element)))
    assert "not a MatchResponse" in str(reject(query, b"\xff\xff"))


def test_a_label_that_does_not_open_is_refused(responder: tuple[OprfServer, Engine]) -> None:
    query, answer = ask(responder, [phone(HELD[10])])

    def corrupt(r: mpb.MatchResponse) -> None:
        for bucket in r.buckets:
            for n, label in enumerate(bucket.labels):
                bucket.labels[n] = label[:-1] + bytes([label[-1] ^ 1])

    assert "item 0: a label with a matching tag: label does not open" in str(
        reject(query, tampered(answer, corrupt))
    )
