"""The responder's side of a targeted query: check it, evaluate it, hand out the buckets.

The responder sees bucket numbers and blinded elements only. It evaluates the elements
under its OPRF key with one batch proof, and returns the contents of exactly the asked
buckets; which identifiers were asked, and whether any matched, it never learns.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final

from gateway.crypto.blinded import InvalidElement, OprfServer
from gateway.matching.errors import Problem, QueryRefused
from gateway.matching.wire import ELEMENT_LENGTH, MAX_PARTS, VERSION, mpb, parse_query

__all__ = ["Answered", "BucketSource", "ResponderLimits", "answer_query"]

BucketSource = Callable[[Collection[int]], dict[int, list[tuple[bytes, bytes]]]]
"""bucket -> [(tag, sealed label)] for the asked buckets (an index_store.fetch_buckets)."""

_IDENTITY: Final = bytes(ELEMENT_LENGTH)
_ENTRY_OVERHEAD: Final = 8
"""Protobuf framing per entry, for the size estimate."""


@dataclass(frozen=True)
class ResponderLimits:
    bucket_bits: int
    """The bucket size of this responder's index; a query must use the same."""
    max_batch: int
    max_answer_bytes: int = 3 * 1024 * 1024
    """An answer must fit one envelope (4 MiB at the broker), sealing included."""


@dataclass(frozen=True)
class Answered:
    payload: bytes
    items: int
    buckets: int
    entries: int


def _check_items(query: mpb.MatchQuery, declared: int, limits: ResponderLimits) -> None:
    count = len(query.items)
    if count == 0:
        raise QueryRefused("the query holds no items")
    if count != declared:
        raise QueryRefused(
            f"the query holds {count} items but its envelope declares a batch of {declared}"
        )
    if count > limits.max_batch:
        raise QueryRefused(
            f"a batch of {count} items exceeds this responder's limit of {limits.max_batch}",
            Problem.TOO_LARGE,
        )
    if query.bucket_bits != limits.bucket_bits:
        raise QueryRefused(
            f"the query uses {query.bucket_bits} bucket bits; "
            f"this responder's index uses {limits.bucket_bits}"
        )
    top = 1 << limits.bucket_bits
    for position, item in enumerate(query.items):
        if item.bucket >= top:
            raise QueryRefused(
                f"item {position}: bucket is out of range for {limits.bucket_bits} bits"
            )
        if len(item.blinded) != ELEMENT_LENGTH:
            raise QueryRefused(f"item {position}: a blinded element must be {ELEMENT_LENGTH} bytes")
        if item.blinded == _IDENTITY:
            raise QueryRefused(f"item {position}: the blinded element is the identity")


def _parts(query: mpb.MatchQuery) -> list[tuple[int, int]]:
    """(start, end) of each separately proven run of items."""
    sizes = list(query.parts) or [len(query.items)]
    if len(sizes) > MAX_PARTS:
        raise QueryRefused(
            f"the query asks for {len(sizes)} parts; at most {MAX_PARTS} are allowed"
        )
    if any(size == 0 for size in sizes) or sum(sizes) != len(query.items):
        raise QueryRefused(f"the query's parts do not add up to its {len(query.items)} items")
    bounds, start = [], 0
    for size in sizes:
        bounds.append((start, start + size))
        start += size
    return bounds


def answer_query(
    payload: bytes,
    *,
    declared_batch: int,
    server: OprfServer,
    buckets: BucketSource,
    limits: ResponderLimits,
    workers: int = 1,
) -> Answered:
    """The MatchResponse payload for a MatchQuery payload, or `QueryRefused` saying why."""
    query = parse_query(payload)
    _check_items(query, declared_batch, limits)
    bounds = _parts(query)
    # The buckets first: an answer too big to send is refused before any scalar is multiplied.
    asked = {item.bucket for item in query.items}
    found = buckets(asked)
    contents = {bucket: found.get(bucket, []) for bucket in sorted(asked)}
    entries = sum(len(rows) for rows in contents.values())
    size = sum(len(t) + len(lb) + _ENTRY_OVERHEAD for rows in contents.values() for t, lb in rows)
    if size > limits.max_answer_bytes:
        raise QueryRefused(
            f"the {len(asked)} asked buckets hold {entries} entries ({size} bytes), more than "
            f"one answer may carry ({limits.max_answer_bytes}); send fewer identifiers per query",
            Problem.TOO_LARGE,
        )
    blinded = [item.blinded for item in query.items]

    def evaluate(bound: tuple[int, int]) -> tuple[list[bytes], bytes]:
        start, end = bound
        share = max(1, workers // len(bounds))
        return server.blind_evaluate_batch(blinded[start:end], workers=share)

    try:
        if len(bounds) == 1:
            results = [evaluate(bounds[0])]
        else:
            # Threads suffice: the scalar multiplications release the GIL.
            with ThreadPoolExecutor(len(bounds), thread_name_prefix="match-eval") as pool:
                results = list(pool.map(evaluate, bounds))
    except InvalidElement:
        raise QueryRefused(
            "a blinded element is not a canonical, non-identity ristretto255 encoding"
        ) from None
    evaluated = [element for elements, _ in results for element in elements]
    response = mpb.MatchResponse(
        version=VERSION,
        evaluated=evaluated,
        proofs=[proof for _, proof in results],
        public_key=server.public_key,
        buckets=[
            mpb.MatchBucket(
                bucket=bucket, tags=b"".join(t for t, _ in rows), labels=[lb for _, lb in rows]
            )
            for bucket, rows in contents.items()
        ],
    )
    return Answered(response.SerializeToString(), len(query.items), len(asked), entries)
