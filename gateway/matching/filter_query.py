"""Filter-mode targeted query: blinded elements out, evaluations back, membership tested here.

Round one carries only blinded elements, padded with dummies to a size class, so the
responder learns the padded size and nothing about which identifiers were asked or
whether any matched. The police verify the batch proof under the responder's published
OPRF key, derive each tag (derive.tag_and_key), and test the responder's filter locally.
Round two names only the tags the filter matched and fetches their sealed labels: the
responder learns which of its records matched (as it would at the follow-up freeze
anyway). A filter false positive shows up here as a tag the responder does not hold or
a label that does not open, and is dropped: it never reaches a person as a match.

The label round is always sent, with no tags when nothing matched, so that its absence
does not tell the responder there was no match; its number of tags is the number of
matches (and false positives), which the issue accepts. The responder remembers the
queries it answered in memory (AnsweredQueries): after its restart a label round is
refused and the police query again, which costs quota but leaks nothing.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from threading import Lock
from typing import Final, TypeVar

from google.protobuf.message import DecodeError, Message

from gateway.crypto.blinded import GroupError, InvalidElement, OprfClient, OprfServer
from gateway.identifiers import Identifier
from gateway.matching.derive import TAG_LENGTH, LabelError, open_label, tag_and_key
from gateway.matching.errors import MatchError, Problem, QueryRefused, ResponseRejected
from gateway.matching.filter import TagFilter
from gateway.matching.padding import MIN_CLASS, dummy_inputs, padded_size
from gateway.matching.parts import each_part, finalize_parts, split_parts
from gateway.matching.querier import KeyMismatch, Match, check_batch
from gateway.matching.wire import ELEMENT_LENGTH, MAX_PARTS, PROOF_LENGTH
from gateway.v1 import filter_pb2 as fpb

__all__ = [
    "LABEL_TYPE",
    "QUERY_TYPE",
    "VERSION",
    "AnsweredQueries",
    "FilterOutcome",
    "FilterQuery",
    "LabelSource",
    "answer_filter_query",
    "answer_label_request",
]

VERSION: Final = 1
QUERY_TYPE: Final = "application/vnd.gateway.v1.FilterQuery+protobuf"
LABEL_TYPE: Final = "application/vnd.gateway.v1.LabelRequest+protobuf"
_IDENTITY: Final = bytes(ELEMENT_LENGTH)
_PART: Final = 128
"""Fewest items worth a separately proven part (one per core above that)."""

LabelSource = Callable[[Collection[bytes]], dict[bytes, list[bytes]]]
"""tag -> sealed labels of the responder's records with that tag (empty if none)."""

_M = TypeVar("_M", bound=Message)


def _decode(message: _M, payload: bytes, error: type[MatchError]) -> _M:
    name = type(message).__name__
    try:
        message.ParseFromString(payload)
    except DecodeError:
        raise error(f"the payload is not a {name}") from None
    if getattr(message, "version", None) != VERSION:
        raise error(f"{name} protocol version is not supported (want {VERSION})")
    return message


@dataclass(frozen=True)
class FilterOutcome:
    """What the label round settled: matches, and candidates the labels disproved."""

    matches: list[Match]
    false_positives: int


class FilterQuery:
    """One filter-mode query to one responder, from blinding to the verified matches.

    Holds the identifiers and blinds, so its repr shows neither.
    """

    def __init__(
        self,
        identifiers: Sequence[Identifier],
        public_key: bytes,
        *,
        max_batch: int,
        min_class: int = MIN_CLASS,
        parts: int = 0,
    ) -> None:
        """Blind the identifiers, padded with dummies to the size class, for `public_key`.

        MatchError (TOO_LARGE) if the padded batch is above `max_batch`.
        """
        inputs = check_batch(identifiers, max_batch)
        try:
            size = padded_size(len(inputs), minimum=min_class, limit=max_batch)
        except ValueError as exc:
            raise MatchError(str(exc), Problem.TOO_LARGE) from None
        try:
            self._client = OprfClient(public_key)
        except GroupError:
            raise MatchError("the responder's published OPRF key is not a valid element") from None
        self._public_key = public_key
        self._positions = list(inputs.values())
        self.real = len(inputs)
        self.size = size
        # Dummies go at random positions, so neither order nor position tells them apart.
        canonical: list[bytes | None] = [*inputs, *([None] * (size - len(inputs)))]
        order = list(range(size))
        secrets.SystemRandom().shuffle(order)
        slot_of = [0] * size
        for slot, source in enumerate(order):
            slot_of[source] = slot
        self._slot_of_item = slot_of[: len(inputs)]
        fillers = iter(dummy_inputs(size - len(inputs)))
        shuffled = [canonical[i] if canonical[i] is not None else next(fillers) for i in order]
        slots: list[bytes] = [x for x in shuffled if x is not None]
        count = parts or max(1, min(os.cpu_count() or 1, size // _PART))
        self._bounds = split_parts(size, count)
        self._batches = each_part(lambda b: self._client.blind(slots[b[0] : b[1]]), self._bounds)
        self._candidates: dict[bytes, tuple[int, bytes]] = {}
        self._query_id = ""

    def __repr__(self) -> str:
        return f"FilterQuery(<{self.real} items padded to {self.size}>)"

    def payload(self) -> bytes:
        """The FilterQuery to seal to the responder: blinded elements only."""
        blinded = [e for batch in self._batches for e in batch.blinded_elements]
        parts = [end - start for start, end in self._bounds] if len(self._bounds) > 1 else []
        return fpb.FilterQuery(version=VERSION, blinded=blinded, parts=parts).SerializeToString()

    def test(self, payload: bytes, tag_filter: TagFilter) -> int:
        """Verify a FilterAnswer, test each real item's tag in the filter; the candidate count."""
        answer = _decode(fpb.FilterAnswer(), payload, ResponseRejected)
        outputs = self._finalize(answer)
        self._query_id = answer.query_id
        self._candidates = {}
        for item, slot in enumerate(self._slot_of_item):
            tag, key = tag_and_key(outputs[slot])
            if tag_filter.might_hold(tag):
                self._candidates[tag] = (item, key)
        return len(self._candidates)

    def label_request(self) -> bytes:
        """The LabelRequest naming the filter's matched tags, and nothing else."""
        return fpb.LabelRequest(
            version=VERSION, query_id=self._query_id, tags=list(self._candidates)
        ).SerializeToString()

    def open_labels(self, payload: bytes) -> FilterOutcome:
        """The matches a LabelAnswer proves; false positives (no label opens) are dropped."""
        answer = _decode(fpb.LabelAnswer(), payload, ResponseRejected)
        asked = list(self._candidates)
        if [entry.tag for entry in answer.entries] != asked:
            raise ResponseRejected("the label answer does not hold exactly the asked tags in order")
        matches: list[Match] = []
        false_positives = 0
        for entry in answer.entries:
            item, key = self._candidates[entry.tag]
            opened = []
            for label in entry.labels:
                try:
                    opened.append(open_label(key, label))
                except LabelError:
                    continue
            if not opened:
                false_positives += 1
            for fields in opened:
                matches.extend(Match(position, fields) for position in self._positions[item])
        return FilterOutcome(sorted(matches, key=lambda m: m.position), false_positives)

    def _finalize(self, answer: fpb.FilterAnswer) -> list[bytes]:
        if len(answer.evaluated) != self.size:
            raise ResponseRejected(
                f"the answer holds {len(answer.evaluated)} evaluations for {self.size} items"
            )
        if any(len(e) != ELEMENT_LENGTH for e in answer.evaluated):
            raise ResponseRejected(f"an evaluated element is not {ELEMENT_LENGTH} bytes")
        if len(answer.proofs) != len(self._bounds) or any(
            len(p) != PROOF_LENGTH for p in answer.proofs
        ):
            raise ResponseRejected(f"the answer needs one {PROOF_LENGTH}-byte proof per part")
        if answer.public_key and answer.public_key != self._public_key:
            raise KeyMismatch(
                "the responder answered under an OPRF key other than the one the signed "
                "directory lists for it"
            )
        return finalize_parts(
            self._client, self._batches, self._bounds, answer.evaluated, answer.proofs
        )


@dataclass
class _Answered:
    querier: str
    size: int
    at: float
    used: bool = False


class AnsweredQueries:
    """The responder's memory of the evaluations it gave, so a label round names one.

    A label request must name a query this responder answered for the same querier in
    the last `ttl` seconds, once, with at most as many tags as that query had elements:
    tags can only be computed from evaluations, so this bounds the label lookups by the
    evaluations the quota already counted.
    """

    def __init__(self, ttl: float = 600.0, capacity: int = 10_000) -> None:
        self._ttl = ttl
        self._capacity = capacity
        self._answered: dict[str, _Answered] = {}
        self._lock = Lock()

    def remember(self, querier: str, size: int) -> str:
        query_id = secrets.token_hex(16)
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            if len(self._answered) >= self._capacity:
                self._answered.pop(next(iter(self._answered)))
            self._answered[query_id] = _Answered(querier, size, now)
        return query_id

    def claim(self, query_id: str, querier: str, tags: int) -> None:
        """Mark the query's label round used; QueryRefused naming what is wrong otherwise."""
        with self._lock:
            self._expire(time.monotonic())
            answered = self._answered.get(query_id)
            if answered is None or answered.querier != querier:
                raise QueryRefused(
                    "the label request names no query this responder answered for you "
                    "recently; query again",
                    Problem.FORBIDDEN,
                )
            if answered.used:
                raise QueryRefused(
                    "the labels of this query were already fetched", Problem.FORBIDDEN
                )
            if tags > answered.size:
                raise QueryRefused(
                    f"the label request names {tags} tags; the query had {answered.size} elements",
                    Problem.FORBIDDEN,
                )
            answered.used = True

    def _expire(self, now: float) -> None:
        while self._answered:
            oldest = next(iter(self._answered))
            if now - self._answered[oldest].at <= self._ttl:
                break
            del self._answered[oldest]


def answer_filter_query(
    payload: bytes,
    *,
    querier: str,
    declared_batch: int,
    max_batch: int,
    server: OprfServer,
    answered: AnsweredQueries,
    charge: Callable[[int], None],
    workers: int = 1,
) -> tuple[bytes, int]:
    """(FilterAnswer payload, padded size) for a FilterQuery, or QueryRefused saying why.

    `charge(count)` counts the evaluations against the querier's quota before any is
    made (eval_quota.charge, which raises QueryRefused over the quota).
    """
    query = _decode(fpb.FilterQuery(), payload, QueryRefused)
    count = len(query.blinded)
    if count == 0:
        raise QueryRefused("the query holds no elements")
    if count != declared_batch:
        raise QueryRefused(
            f"the query holds {count} elements but its envelope declares a batch of {declared_batch}"
        )
    if count > max_batch:
        raise QueryRefused(
            f"a padded batch of {count} exceeds this responder's limit of {max_batch}",
            Problem.TOO_LARGE,
        )
    for position, element in enumerate(query.blinded):
        if len(element) != ELEMENT_LENGTH or element == _IDENTITY:
            raise QueryRefused(
                f"element {position} is not a {ELEMENT_LENGTH}-byte non-identity element"
            )
    sizes = list(query.parts) or [count]
    if len(sizes) > MAX_PARTS or any(s == 0 for s in sizes) or sum(sizes) != count:
        raise QueryRefused(f"the query's parts do not add up to its {count} elements")
    bounds, start = [], 0
    for size in sizes:
        bounds.append((start, start + size))
        start += size
    blinded = list(query.blinded)
    charge(count)

    def evaluate(bound: tuple[int, int]) -> tuple[list[bytes], bytes]:
        return server.blind_evaluate_batch(
            blinded[bound[0] : bound[1]], workers=max(1, workers // len(bounds))
        )

    try:
        results = each_part(evaluate, bounds)
    except InvalidElement:
        raise QueryRefused(
            "a blinded element is not a canonical, non-identity ristretto255 encoding"
        ) from None
    answer = fpb.FilterAnswer(
        version=VERSION,
        evaluated=[e for elements, _ in results for e in elements],
        proofs=[proof for _, proof in results],
        public_key=server.public_key,
        query_id=answered.remember(querier, count),
    )
    return answer.SerializeToString(), count


def answer_label_request(
    payload: bytes, *, querier: str, answered: AnsweredQueries, labels: LabelSource
) -> tuple[bytes, int]:
    """(LabelAnswer payload, tags asked) for a LabelRequest, or QueryRefused saying why."""
    request = _decode(fpb.LabelRequest(), payload, QueryRefused)
    tags = list(request.tags)
    if any(len(tag) != TAG_LENGTH for tag in tags):
        raise QueryRefused(f"a tag in the label request is not {TAG_LENGTH} bytes")
    if len(set(tags)) != len(tags):
        raise QueryRefused("the label request names a tag twice")
    answered.claim(request.query_id, querier, len(tags))
    found = labels(tags) if tags else {}
    answer = fpb.LabelAnswer(
        version=VERSION,
        entries=[fpb.LabelEntry(tag=tag, labels=found.get(tag, [])) for tag in tags],
    )
    return answer.SerializeToString(), len(tags)
