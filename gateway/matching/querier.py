"""The querier's side of a targeted query: blind, then verify and read the answer.

Nothing in an answer is used before the batch proof verifies under the responder's OPRF
key from the signed directory, so a responder that evaluates under another key (to make
matches appear or vanish) is caught. The answer must also hold exactly the asked
buckets: one that adds or drops buckets is breaking the protocol and is refused whole.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from gateway.crypto.blinded import MAX_BATCH, GroupError, OprfClient
from gateway.identifiers import Identifier
from gateway.matching.derive import (
    TAG_LENGTH,
    LabelError,
    bucket_of,
    check_bucket_bits,
    open_label,
    tag_and_key,
)
from gateway.matching.errors import KeyMismatch, MatchError, Problem, ResponseRejected
from gateway.matching.parts import each_part, finalize_parts, split_parts
from gateway.matching.wire import (
    ELEMENT_LENGTH,
    PROOF_LENGTH,
    VERSION,
    mpb,
    parse_response,
)

__all__ = ["MIN_PART", "KeyMismatch", "Match", "PendingQuery", "check_batch"]

MIN_PART: Final = 128
"""Fewest items worth a part (and a proof) of their own."""


@dataclass(frozen=True)
class Match:
    """One identifier the responder holds: its position in the caller's list, and its label."""

    position: int
    fields: dict[str, str]

    def __repr__(self) -> str:
        return f"Match(position={self.position}, fields=<{len(self.fields)} fields>)"


def check_batch(identifiers: Sequence[Identifier], max_batch: int) -> dict[bytes, list[int]]:
    """Canonical input -> positions, once the batch is known not to be empty or too big."""
    inputs: dict[bytes, list[int]] = {}
    for position, identifier in enumerate(identifiers):
        inputs.setdefault(identifier.canonical_input(), []).append(position)
    if not inputs:
        raise MatchError("there are no identifiers to query")
    limit = min(max_batch, MAX_BATCH)
    if len(inputs) > limit:
        raise MatchError(
            f"{len(inputs)} distinct identifiers exceed the limit of {limit} per query; "
            "split them over several queries",
            Problem.TOO_LARGE,
        )
    return inputs


class PendingQuery:
    """One query to one responder, from blinding to the verified matches.

    Holds the identifiers and blinds, so its repr shows neither.
    """

    def __init__(
        self,
        identifiers: Sequence[Identifier],
        public_key: bytes,
        *,
        bucket_bits: int,
        max_batch: int,
        parts: int = 0,
    ) -> None:
        """Blind the identifiers (each distinct one once) for the responder with `public_key`.

        `parts` runs of items are blinded, proven and verified separately, in parallel;
        0 picks one per core for batches of at least MIN_PART items per part.
        """
        check_bucket_bits(bucket_bits)
        inputs = check_batch(identifiers, max_batch)
        self._public_key = public_key
        try:
            client = OprfClient(public_key)
        except GroupError:
            raise MatchError("the responder's published OPRF key is not a valid element") from None
        self._client = client
        self._positions = list(inputs.values())
        self._bucket_bits = bucket_bits
        self._buckets = [bucket_of(x, bucket_bits) for x in inputs]
        canonical = list(inputs)
        self._bounds = split_parts(len(canonical), parts or _default_parts(len(canonical)))
        self._batches = each_part(lambda b: client.blind(canonical[b[0] : b[1]]), self._bounds)

    def __len__(self) -> int:
        return len(self._buckets)

    def __repr__(self) -> str:
        return f"PendingQuery(<{len(self)} items>)"

    def payload(self) -> bytes:
        """The MatchQuery to seal to the responder."""
        blinded = [element for batch in self._batches for element in batch.blinded_elements]
        items = [
            mpb.MatchItem(bucket=bucket, blinded=element)
            for bucket, element in zip(self._buckets, blinded, strict=True)
        ]
        parts = [end - start for start, end in self._bounds] if len(self._bounds) > 1 else []
        return mpb.MatchQuery(
            version=VERSION, bucket_bits=self._bucket_bits, items=items, parts=parts
        ).SerializeToString()

    def open(self, payload: bytes) -> list[Match]:
        """The matches in a MatchResponse, once it verifies; `ResponseRejected` otherwise."""
        response = parse_response(payload)
        contents = self._contents(response)
        outputs = self._finalize(response)
        matches: list[Match] = []
        for item, (bucket, y) in enumerate(zip(self._buckets, outputs, strict=True)):
            tag, key = tag_and_key(y)
            tags, labels = contents[bucket]
            for at in range(0, len(tags), TAG_LENGTH):
                if tags[at : at + TAG_LENGTH] != tag:
                    continue
                label = labels[at // TAG_LENGTH]
                try:
                    fields = open_label(key, label)
                except LabelError as exc:
                    raise ResponseRejected(
                        f"item {item}: a label with a matching tag: {exc}"
                    ) from None
                matches.extend(Match(position, fields) for position in self._positions[item])
        return sorted(matches, key=lambda m: m.position)

    def _contents(self, response: mpb.MatchResponse) -> dict[int, tuple[bytes, list[bytes]]]:
        """bucket -> (packed tags, labels), if they are exactly the asked buckets, each once.

        Tags are public values compared with the querier's own, so a plain comparison is
        fine; what must stay secret (the OPRF outputs, the label keys) never leaves here.
        """
        asked = set(self._buckets)
        contents: dict[int, tuple[bytes, list[bytes]]] = {}
        for bucket in response.buckets:
            if bucket.bucket not in asked:
                raise ResponseRejected(
                    "the answer holds the contents of a bucket that was not asked"
                )
            if bucket.bucket in contents:
                raise ResponseRejected("the answer holds the contents of a bucket twice")
            labels = list(bucket.labels)
            if len(bucket.tags) != TAG_LENGTH * len(labels):
                raise ResponseRejected(
                    f"a bucket's tags are not {TAG_LENGTH} bytes for each of its labels"
                )
            contents[bucket.bucket] = (bucket.tags, labels)
        missing = len(asked - contents.keys())
        if missing:
            raise ResponseRejected(f"the answer leaves out {missing} of the asked buckets")
        return contents

    def _finalize(self, response: mpb.MatchResponse) -> list[bytes]:
        if len(response.evaluated) != len(self._buckets):
            raise ResponseRejected(
                f"the answer holds {len(response.evaluated)} evaluations for {len(self._buckets)} items"
            )
        if any(len(e) != ELEMENT_LENGTH for e in response.evaluated):
            raise ResponseRejected(f"an evaluated element is not {ELEMENT_LENGTH} bytes")
        if len(response.proofs) != len(self._bounds):
            raise ResponseRejected(
                f"the answer holds {len(response.proofs)} proofs for {len(self._bounds)} parts"
            )
        if any(len(proof) != PROOF_LENGTH for proof in response.proofs):
            raise ResponseRejected(f"a proof is not {PROOF_LENGTH} bytes")
        if response.public_key and response.public_key != self._public_key:
            raise KeyMismatch(
                "the responder answered under an OPRF key other than the one the signed "
                "directory lists for it"
            )
        return finalize_parts(
            self._client, self._batches, self._bounds, response.evaluated, response.proofs
        )


def _default_parts(count: int) -> int:
    return max(1, min(os.cpu_count() or 1, count // MIN_PART))
