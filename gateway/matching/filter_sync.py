"""Signed filter snapshots and deltas, chunked, and the police's verified replica.

A responder signs a FilterStatement for every state it publishes to one police node:
a snapshot (from version 0) or a delta naming the version and digest it applies to, the
digest of the state after it, and the SHA-256 of each chunk of its body (a filter of ten
million tags is ~27 MB, more than one 4 MiB envelope). The police verify the signature
under the responder's signing key from the signed directory before anything else, take
chunks in order (each checked against the statement, so a transfer resumes from the
last verified chunk), and apply the body only if the result has the signed digest. A
delta that does not chain onto the state they hold raises ResyncNeeded: the remedy is a
full snapshot.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Final

from google.protobuf.message import DecodeError

from gateway.crypto.ed25519 import ed25519_verifies
from gateway.crypto.signer import Ed25519Signing
from gateway.envelope.build import now_ms
from gateway.matching.filter import (
    MAX_COUNT,
    FilterError,
    TagFilter,
    decode_values,
    encode_values,
    value_of,
)
from gateway.v1 import filter_pb2 as fpb

__all__ = [
    "CHUNK_BYTES",
    "FilterReplica",
    "Publication",
    "ResyncNeeded",
    "SyncError",
    "publish_delta",
    "publish_snapshot",
]

VERSION: Final = 1
CHUNK_BYTES: Final = 3 * 1024 * 1024
"""A chunk and its sealing fit one envelope (4 MiB at the broker)."""
_SIGNING_DST: Final = b"gateway/filter/v1/statement\x00"


class SyncError(ValueError):
    """A statement or chunk the police will not use; says what is wrong."""


class ResyncNeeded(SyncError):
    """The delta does not chain onto the held state (or nothing is held): fetch a snapshot."""


@dataclass(frozen=True)
class Publication:
    """One signed state for one police node: the signed statement and its body's chunks."""

    signed: bytes
    chunks: list[bytes]
    state: TagFilter
    to_version: int


def _sign(
    statement: fpb.FilterStatement, body: bytes, signer: Ed25519Signing, chunk_bytes: int
) -> tuple[bytes, list[bytes]]:
    pieces = [body[at : at + chunk_bytes] for at in range(0, len(body), chunk_bytes)] or [b""]
    statement.body_length = len(body)
    statement.chunk_digests.extend(hashlib.sha256(p).digest() for p in pieces)
    statement.created_ms = now_ms()
    raw = statement.SerializeToString()
    signed = fpb.SignedFilterStatement(
        statement=raw, signature=signer.sign(_SIGNING_DST + raw)
    ).SerializeToString()
    digest = hashlib.sha256(signed).digest()
    chunks = [
        fpb.FilterChunk(statement_digest=digest, index=i, data=p).SerializeToString()
        for i, p in enumerate(pieces)
    ]
    return signed, chunks


def publish_snapshot(
    state: TagFilter,
    *,
    version: int,
    responder: str,
    recipient: str,
    signer: Ed25519Signing,
    chunk_bytes: int = CHUNK_BYTES,
) -> Publication:
    """The signed snapshot of `state` as version `version`, for `recipient`."""
    statement = fpb.FilterStatement(
        version=VERSION,
        responder=responder,
        recipient=recipient,
        from_version=0,
        to_version=version,
        to_digest=state.digest(),
        bits=state.bits,
    )
    signed, chunks = _sign(statement, state.encode(), signer, chunk_bytes)
    return Publication(signed, chunks, state, version)


def publish_delta(
    previous: Publication,
    *,
    added_tags: list[bytes],
    removed_tags: list[bytes],
    responder: str,
    recipient: str,
    signer: Ed25519Signing,
    chunk_bytes: int = CHUNK_BYTES,
) -> Publication:
    """The signed delta from `previous` to `previous` plus `added_tags` minus `removed_tags`."""
    bits = previous.state.bits
    added = [value_of(t, bits) for t in added_tags]
    removed = [value_of(t, bits) for t in removed_tags]
    state = previous.state.apply(added, removed)
    body = fpb.FilterDeltaBody(
        added=encode_values(added, bits), removed=encode_values(removed, bits)
    ).SerializeToString()
    statement = fpb.FilterStatement(
        version=VERSION,
        responder=responder,
        recipient=recipient,
        from_version=previous.to_version,
        from_digest=previous.state.digest(),
        to_version=previous.to_version + 1,
        to_digest=state.digest(),
        bits=bits,
    )
    signed, chunks = _sign(statement, body, signer, chunk_bytes)
    return Publication(signed, chunks, state, previous.to_version + 1)


@dataclass
class _Transfer:
    statement: fpb.FilterStatement
    digest: bytes
    signed: bytes
    chunks: list[bytes] = field(default_factory=list)


class FilterReplica:
    """The police's copy of one responder's filter, and the transfer under way, if any."""

    def __init__(
        self,
        *,
        responder: str,
        recipient: str,
        responder_key: bytes,
        max_tags: int = MAX_COUNT,
    ) -> None:
        """`responder_key`: the responder's Ed25519 signing key from the signed directory;
        `max_tags`: most values a filter or delta may claim (bounds what is allocated)."""
        self.max_tags = max_tags
        self.responder = responder
        self.recipient = recipient
        self._key = responder_key
        self.state: TagFilter | None = None
        self.version = 0
        self._transfer: _Transfer | None = None

    def __repr__(self) -> str:
        return f"FilterReplica({self.responder}, version {self.version})"

    def begin(self, signed: bytes) -> None:
        """Start taking the state a signed statement describes, once it verifies and chains."""
        try:
            envelope = fpb.SignedFilterStatement.FromString(signed)
            statement = fpb.FilterStatement.FromString(envelope.statement)
        except DecodeError:
            raise SyncError("the filter statement does not parse") from None
        if not ed25519_verifies(self._key, envelope.signature, _SIGNING_DST + envelope.statement):
            raise SyncError(
                f"the filter statement is not signed by {self.responder}'s key in the directory"
            )
        if statement.version != VERSION:
            raise SyncError(f"filter statement version {statement.version} is not supported")
        if statement.responder != self.responder or statement.recipient != self.recipient:
            raise SyncError("the filter statement names another responder or recipient")
        if statement.to_version <= self.version and statement.from_version == 0:
            raise SyncError(
                f"the snapshot's version {statement.to_version} is not newer than the held "
                f"version {self.version}"
            )
        if statement.from_version:
            if self.state is None or statement.from_version != self.version:
                raise ResyncNeeded(
                    f"the delta applies to version {statement.from_version}; the held filter "
                    f"is version {self.version}: fetch a full snapshot"
                )
            if statement.from_digest != self.state.digest() or statement.bits != self.state.bits:
                raise ResyncNeeded(
                    "the delta applies to a filter other than the one held: fetch a full snapshot"
                )
            if statement.to_version != statement.from_version + 1:
                raise SyncError("a delta must advance the version by one")
        if not statement.chunk_digests:
            raise SyncError("the filter statement lists no chunks")
        self._transfer = _Transfer(statement, hashlib.sha256(signed).digest(), signed)

    def restore(self, state: TagFilter, version: int) -> None:
        """Take a state verified earlier (the node's database) as the held one."""
        self.state, self.version, self._transfer = state, version, None

    def abandon(self) -> None:
        """Drop the transfer under way; the held state stays."""
        self._transfer = None

    @property
    def signed_statement(self) -> bytes | None:
        """The signed statement of the transfer under way, to store beside its chunks."""
        return None if self._transfer is None else self._transfer.signed

    @property
    def next_chunk(self) -> int | None:
        """The index of the chunk to fetch next (resume point), None if no transfer is open."""
        return None if self._transfer is None else len(self._transfer.chunks)

    def progress(self) -> tuple[int, int]:
        """(chunks verified, chunks in all) of the transfer under way; (0, 0) if none."""
        if self._transfer is None:
            return 0, 0
        return len(self._transfer.chunks), len(self._transfer.statement.chunk_digests)

    def add_chunk(self, chunk: bytes) -> bool:
        """Verify and keep the next chunk; True once the last one is in and applied."""
        transfer = self._transfer
        if transfer is None:
            raise SyncError("a filter chunk arrived with no statement begun")
        try:
            parsed = fpb.FilterChunk.FromString(chunk)
        except DecodeError:
            raise SyncError("the filter chunk does not parse") from None
        if parsed.statement_digest != transfer.digest:
            raise SyncError("the filter chunk belongs to another statement")
        expected = len(transfer.chunks)
        if parsed.index != expected:
            raise SyncError(f"filter chunk {parsed.index} arrived; chunk {expected} is next")
        if hashlib.sha256(parsed.data).digest() != transfer.statement.chunk_digests[expected]:
            raise SyncError(f"filter chunk {expected} does not match its signed digest")
        transfer.chunks.append(parsed.data)
        if len(transfer.chunks) < len(transfer.statement.chunk_digests):
            return False
        self._apply(transfer)
        return True

    def _apply(self, transfer: _Transfer) -> None:
        statement = transfer.statement
        body = b"".join(transfer.chunks)
        self._transfer = None
        if len(body) != statement.body_length:
            raise SyncError("the filter body's length is not the signed length")
        try:
            if statement.from_version == 0:
                bits, values = decode_values(body, self.max_tags)
                state = TagFilter(bits, values)
            else:
                if self.state is None:
                    raise ResyncNeeded("a delta arrived with no filter held")
                delta = fpb.FilterDeltaBody.FromString(body)
                added_bits, added = decode_values(delta.added, self.max_tags)
                removed_bits, removed = decode_values(delta.removed, self.max_tags)
                if {added_bits, removed_bits} != {self.state.bits}:
                    raise SyncError("the delta's values have another width than the filter")
                state = self.state.apply(list(added), list(removed))
        except (FilterError, DecodeError) as exc:
            if statement.from_version:
                raise ResyncNeeded(
                    f"the delta does not apply ({exc}): fetch a full snapshot"
                ) from None
            raise SyncError(f"the snapshot's body is not a filter: {exc}") from None
        if state.bits != statement.bits or state.digest() != statement.to_digest:
            error = ResyncNeeded if statement.from_version else SyncError
            raise error("the filter after applying does not have the signed digest")
        self.state = state
        self.version = statement.to_version
