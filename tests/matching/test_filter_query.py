"""Filter-mode query without the network: matches, false positives, padding, the
responder's view, and every refusal of bad input.

The responder's tags and label keys are computed here with the independent reference
(tests/matching/reference.py) from OprfServer.evaluate, the unblinded evaluation, so
the blinded round trip under test must arrive at the same values to find a match.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Collection
from pathlib import Path

import pytest

from gateway.crypto.blinded import OprfServer
from gateway.db import NodeBase, make_engine
from gateway.identifiers import Identifier, IdentifierKind
from gateway.matching import MatchError, Problem, QueryRefused, ResponseRejected
from gateway.matching.eval_quota import EvalQuota, charge, used
from gateway.matching.filter import TagFilter, bits_for, encode_snapshot
from gateway.matching.filter_query import (
    AnsweredQueries,
    FilterQuery,
    answer_filter_query,
    answer_label_request,
)
from gateway.v1 import filter_pb2 as fpb
from tests.matching import reference

HELD = [f"+86137{n:08d}" for n in range(40)]
OTHERS = [f"+86139{n:08d}" for n in range(40)]
POLICE = "police-a"


def phone(value: str) -> Identifier:
    return Identifier(IdentifierKind.PHONE, value)


def sealed(output: bytes, fields: dict[str, str]) -> bytes:
    return reference.seal(output, fields, os.urandom(12))


class Responder:
    """A responder's index built with the reference derivation, and its filter."""

    def __init__(
        self, extra_filter_tags: Collection[bytes] = (), server: OprfServer | None = None
    ) -> None:
        self.server = server or OprfServer.generate()
        outputs = self.server.evaluate([reference.canonical("phone", v) for v in HELD])
        self.labels: dict[bytes, list[bytes]] = {}
        for value, output in zip(HELD, outputs, strict=True):
            self.labels.setdefault(reference.tag(output), []).append(
                sealed(output, {"account": f"A-{value[-4:]}"})
            )
        tags = [*self.labels, *extra_filter_tags]
        self.filter = TagFilter.decode(encode_snapshot(tags, bits_for(len(tags))))
        self.answered = AnsweredQueries()
        self.seen: list[bytes] = []
        self.charged: list[int] = []
        self.asked_tags: list[bytes] = []

    def charge(self, count: int) -> None:
        self.charged.append(count)

    def fetch(self, tags: Collection[bytes]) -> dict[bytes, list[bytes]]:
        self.asked_tags.extend(tags)
        return {t: self.labels[t] for t in tags if t in self.labels}

    def round_trip(self, query: FilterQuery, querier: str = POLICE) -> list[str]:
        payload = query.payload()
        self.seen.append(payload)
        answer, size = answer_filter_query(
            payload,
            querier=querier,
            declared_batch=query.size,
            max_batch=1024,
            server=self.server,
            answered=self.answered,
            charge=self.charge,
        )
        assert size == query.size
        query.test(answer, self.filter)
        request = query.label_request()
        labels, _ = answer_label_request(
            request, querier=querier, answered=self.answered, labels=self.fetch
        )
        outcome = query.open_labels(labels)
        self.false_positives = outcome.false_positives
        return [f"{m.position}:{m.fields['account']}" for m in outcome.matches]


@pytest.fixture(scope="module")
def responder() -> Responder:
    return Responder()


def test_matches_are_found_and_non_matches_are_not(responder: Responder) -> None:
    asked = [HELD[3], OTHERS[0], HELD[17], OTHERS[5], HELD[3]]
    query = FilterQuery([phone(v) for v in asked], responder.server.public_key, max_batch=1024)
    assert (query.real, query.size) == (4, 64)
    responder.charged.clear()
    assert responder.round_trip(query) == ["0:A-0003", "2:A-0017", "4:A-0003"]
    assert responder.false_positives == 0
    assert responder.charged == [64]  # the padded size: dummies count against the quota


def test_no_match_sends_an_empty_label_round(responder: Responder) -> None:
    responder.asked_tags.clear()
    query = FilterQuery([phone(v) for v in OTHERS], responder.server.public_key, max_batch=1024)
    assert responder.round_trip(query) == []
    assert responder.asked_tags == []


def test_a_filter_false_positive_is_caught_in_the_label_round() -> None:
    """A non-held identifier whose tag the filter holds (as a collision would) is dropped."""
    server = OprfServer.generate()
    output = server.evaluate([reference.canonical("phone", OTHERS[7])])[0]
    # A filter that also holds the outsider's tag, but no label for it.
    fooled = Responder(extra_filter_tags=[reference.tag(output)], server=server)
    query = FilterQuery(
        [phone(OTHERS[7]), phone(HELD[1])], fooled.server.public_key, max_batch=1024
    )
    assert fooled.round_trip(query) == ["1:A-0001"]
    assert fooled.false_positives == 1
    assert reference.tag(output) in fooled.asked_tags


def test_a_tag_whose_label_does_not_open_is_not_a_match() -> None:
    victim = Responder()
    output = victim.server.evaluate([reference.canonical("phone", HELD[2])])[0]
    victim.labels[reference.tag(output)] = [sealed(os.urandom(32), {"account": "forged"})]
    query = FilterQuery([phone(HELD[2])], victim.server.public_key, max_batch=1024)
    assert victim.round_trip(query) == []
    assert victim.false_positives == 1


@pytest.mark.parametrize(("count", "size"), [(1, 64), (64, 64), (65, 128), (300, 512)])
def test_batches_pad_to_their_size_class(responder: Responder, count: int, size: int) -> None:
    values = [f"+86150{n:08d}" for n in range(count)]
    query = FilterQuery([phone(v) for v in values], responder.server.public_key, max_batch=1024)
    parsed = fpb.FilterQuery.FromString(query.payload())
    assert len(parsed.blinded) == size == query.size


def test_a_batch_padding_above_the_limit_is_refused_before_sending(responder: Responder) -> None:
    values = [f"+86150{n:08d}" for n in range(65)]
    with pytest.raises(MatchError, match="pad to a batch of 128, above the limit of 100") as err:
        FilterQuery([phone(v) for v in values], responder.server.public_key, max_batch=100)
    assert err.value.problem is Problem.TOO_LARGE


def test_the_responder_refuses_a_padded_batch_above_its_limit(responder: Responder) -> None:
    query = FilterQuery([phone(HELD[0])], responder.server.public_key, max_batch=1024)
    with pytest.raises(QueryRefused, match="padded batch of 64 exceeds this responder's limit"):
        answer_filter_query(
            query.payload(),
            querier=POLICE,
            declared_batch=64,
            max_batch=32,
            server=responder.server,
            answered=responder.answered,
            charge=responder.charge,
        )


def _view(responder: Responder, values: list[str]) -> bytes:
    query = FilterQuery([phone(v) for v in values], responder.server.public_key, max_batch=1024)
    return query.payload()


def test_the_responders_view_is_the_same_for_matching_and_non_matching_batches(
    responder: Responder,
) -> None:
    """Everything the responder receives: same size and structure, uniform-looking bytes.

    A batch of 30 held phones and one of 30 others, both padded to 64: the serialized
    queries have the same length and field layout, and the element bytes of each pass a
    chi-squared test of uniformity over byte values (ristretto255 encodings are uniform
    in their low 31 bytes; the top bit of the last byte is always clear).
    """
    matching = _view(responder, HELD[:30])
    other = _view(responder, OTHERS[:30])
    assert len(matching) == len(other)
    parsed = [fpb.FilterQuery.FromString(p) for p in (matching, other)]
    assert [len(p.blinded) for p in parsed] == [64, 64]
    assert [list(p.parts) for p in parsed] == [[], []]
    assert [p.ListFields()[i][0].name for p in parsed for i in range(2)] == [
        "version",
        "blinded",
        "version",
        "blinded",
    ]
    for p in parsed:
        body = b"".join(e[:31] for e in p.blinded)
        counts = Counter(body)
        expected = len(body) / 256
        chi2 = sum((counts.get(b, 0) - expected) ** 2 / expected for b in range(256))
        # 255 degrees of freedom: mean 255, sd ~22.6; 6 sd above the mean fails.
        assert chi2 < 255 + 6 * math.sqrt(2 * 255)


def test_a_label_request_for_more_tags_than_the_query_had_is_refused(
    responder: Responder,
) -> None:
    query = FilterQuery([phone(HELD[0])], responder.server.public_key, max_batch=1024)
    answer, _ = answer_filter_query(
        query.payload(),
        querier=POLICE,
        declared_batch=64,
        max_batch=1024,
        server=responder.server,
        answered=responder.answered,
        charge=responder.charge,
    )
    query_id = fpb.FilterAnswer.FromString(answer).query_id
    guessed = [os.urandom(8) for _ in range(65)]
    request = fpb.LabelRequest(version=1, query_id=query_id, tags=guessed).SerializeToString()
    with pytest.raises(QueryRefused, match="names 65 tags; the query had 64 elements"):
        answer_label_request(
            request, querier=POLICE, answered=responder.answered, labels=responder.fetch
        )


def test_a_label_request_naming_no_answered_query_or_another_querier_is_refused(
    responder: Responder,
) -> None:
    query = FilterQuery([phone(HELD[0])], responder.server.public_key, max_batch=1024)
    answer, _ = answer_filter_query(
        query.payload(),
        querier=POLICE,
        declared_batch=64,
        max_batch=1024,
        server=responder.server,
        answered=responder.answered,
        charge=responder.charge,
    )
    query.test(answer, responder.filter)
    request = query.label_request()
    for querier in ("police-b", POLICE):
        forged = fpb.LabelRequest.FromString(request)
        if querier == POLICE:
            forged.query_id = "0" * 32
        with pytest.raises(QueryRefused, match="names no query this responder answered") as err:
            answer_label_request(
                forged.SerializeToString(),
                querier=querier,
                answered=responder.answered,
                labels=responder.fetch,
            )
        assert err.value.problem is Problem.FORBIDDEN
    answer_label_request(
        request, querier=POLICE, answered=responder.answered, labels=responder.fetch
    )
    with pytest.raises(QueryRefused, match="already fetched"):
        answer_label_request(
            request, querier=POLICE, answered=responder.answered, labels=responder.fetch
        )


def test_a_label_answer_with_a_tag_that_was_not_asked_is_rejected(responder: Responder) -> None:
    query = FilterQuery([phone(HELD[4])], responder.server.public_key, max_batch=1024)
    answer, _ = answer_filter_query(
        query.payload(),
        querier=POLICE,
        declared_batch=64,
        max_batch=1024,
        server=responder.server,
        answered=responder.answered,
        charge=responder.charge,
    )
    assert query.test(answer, responder.filter) == 1
    extra = fpb.LabelAnswer(
        version=1,
        entries=[
            fpb.LabelEntry(tag=t, labels=[b"x" * 40])
            for t in [*fpb.LabelRequest.FromString(query.label_request()).tags, os.urandom(8)]
        ],
    )
    with pytest.raises(ResponseRejected, match="exactly the asked tags"):
        query.open_labels(extra.SerializeToString())


def test_an_answer_under_another_key_is_rejected(responder: Responder) -> None:
    query = FilterQuery([phone(HELD[4])], responder.server.public_key, max_batch=1024)
    answer, _ = answer_filter_query(
        query.payload(),
        querier=POLICE,
        declared_batch=64,
        max_batch=1024,
        server=OprfServer.generate(),
        answered=responder.answered,
        charge=responder.charge,
    )
    with pytest.raises(ResponseRejected, match="OPRF key"):
        query.test(answer, responder.filter)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda q: q.blinded.__setitem__(3, bytes(32)), "element 3 is not a 32-byte"),
        (lambda q: q.blinded.__setitem__(3, b"\xff" * 32), "not a canonical"),
        (lambda q: q.parts.extend([60, 5]), "parts do not add up"),
        (lambda q: setattr(q, "version", 2), "version is not supported"),
    ],
)
def test_malformed_queries_are_refused(responder: Responder, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    query = fpb.FilterQuery.FromString(
        FilterQuery([phone(HELD[0])], responder.server.public_key, max_batch=1024).payload()
    )
    mutate(query)
    with pytest.raises(QueryRefused, match=message):
        answer_filter_query(
            query.SerializeToString(),
            querier=POLICE,
            declared_batch=64,
            max_batch=1024,
            server=responder.server,
            answered=responder.answered,
            charge=responder.charge,
        )


def test_a_query_over_the_quota_is_refused_before_any_evaluation(
    responder: Responder, tmp_path: Path
) -> None:
    engine = make_engine(str(tmp_path / "node.db"))
    NodeBase.metadata.create_all(engine)
    quota = EvalQuota(per_hour=100, per_day=1_000)
    answered = AnsweredQueries()

    def ask() -> None:
        query = FilterQuery([phone(HELD[0])], responder.server.public_key, max_batch=1024)
        answer_filter_query(
            query.payload(),
            querier=POLICE,
            declared_batch=64,
            max_batch=1024,
            server=responder.server,
            answered=answered,
            charge=lambda count: charge(engine, POLICE, count, quota),
        )

    ask()
    with pytest.raises(QueryRefused, match="exceed your quota of 100 per hour") as err:
        ask()
    assert err.value.problem is Problem.FORBIDDEN
    assert used(engine, POLICE)[0] == 64
