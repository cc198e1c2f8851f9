"""Envelope verification: one check after the other, the first failure names itself.

The broker and every recipient run the same verifier. The result is either a
`Verified` carrying the parsed header and the sender's directory entry, or a `Rejected`
that names the check, gives a reason in plain words and the gRPC status to answer
with. Stateful checks (replay) are done by the caller's store, inside the transaction
that records the message, so an id is never burnt by a message that was refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from google.protobuf.message import DecodeError

from gateway.crypto.ed25519 import ed25519_verifies
from gateway.envelope.build import now_ms
from gateway.envelope.pae import pae
from gateway.kinds import SEALED, parse_kind
from gateway.pki.directory import Directory, Member
from gateway.v1 import gateway_pb2 as pb

MESSAGE_ID_LENGTH = 32


@dataclass(frozen=True)
class Verified:
    header: pb.Header
    sender: Member

    def __bool__(self) -> bool:
        return True


@dataclass(frozen=True)
class Rejected:
    """Why an envelope was refused: the check's name, a reason, the gRPC status."""

    check: str
    reason: str
    status: grpc.StatusCode

    def __bool__(self) -> bool:
        return False

    def __str__(self) -> str:
        return f"{self.check}: {self.reason}"


@dataclass(frozen=True)
class VerifierLimits:
    """Bounds every verifier applies; the broker is strict on freshness, nodes on expiry."""

    max_envelope_bytes: int = 4 * 1024 * 1024
    max_clock_skew_ms: int = 5 * 60 * 1000
    max_lifetime_ms: int = 7 * 24 * 3600 * 1000
    max_age_ms: int | None = 5 * 60 * 1000
    """How old `created_at` may be on arrival; None where old messages arrive by design
    (a node receiving outbox redeliveries relies on `expires_at` instead)."""


class EnvelopeVerifier:
    """Checks an envelope against the membership directory and the clock."""

    def __init__(
        self,
        directory: Callable[[], Directory],
        *,
        limits: VerifierLimits | None = None,
        clock_ms: Callable[[], int] = now_ms,
    ) -> None:
        self._directory = directory
        self._limits = limits or VerifierLimits()
        self._clock_ms = clock_ms

    def verify(
        self,
        envelope: pb.Envelope,
        *,
        peer_node_id: str | None,
        expect_peer: str | None = None,
        recipient: str | None = None,
        relayed: bool = False,
    ) -> Verified | Rejected:
        """Run every stateless check.

        peer_node_id: the node named by the caller's mTLS certificate.
        expect_peer: if set, the mTLS peer must be this node (a node accepts deliveries
        from the broker only); otherwise the peer must be the header's sender.
        recipient: if set, this node must be among the header's recipients.
        relayed: the envelope came inside a broker reply, not over its sender's own
        connection; the sender's signature is then the only proof of origin.
        """
        limits = self._limits
        size = envelope.ByteSize()
        if size > limits.max_envelope_bytes:
            return Rejected(
                "size",
                f"envelope of {size} bytes exceeds the limit of {limits.max_envelope_bytes}",
                grpc.StatusCode.RESOURCE_EXHAUSTED,
            )
        header = pb.Header()
        try:
            header.ParseFromString(envelope.header)
        except DecodeError:
            return Rejected("header", "header bytes do not parse", grpc.StatusCode.INVALID_ARGUMENT)
        malformed = _malformed(header)
        if malformed:
            return Rejected("header", malformed, grpc.StatusCode.INVALID_ARGUMENT)

        directory = self._directory()
        sender = directory.get(header.sender)
        if sender is None:
            return Rejected(
                "sender",
                f"sender {header.sender!r} is not a member",
                grpc.StatusCode.PERMISSION_DENIED,
            )
        if not sender.active:
            return Rejected(
                "sender",
                f"sender {header.sender!r} is revoked",
                grpc.StatusCode.PERMISSION_DENIED,
            )
        if relayed:
            pass
        elif expect_peer is not None:
            if peer_node_id != expect_peer:
                return Rejected(
                    "identity",
                    f"delivery must come from {expect_peer}, not {peer_node_id!r}",
                    grpc.StatusCode.PERMISSION_DENIED,
                )
        elif peer_node_id != header.sender:
            return Rejected(
                "identity",
                f"mTLS identity {peer_node_id!r} does not match header sender {header.sender!r}",
                grpc.StatusCode.PERMISSION_DENIED,
            )

        if not ed25519_verifies(
            sender.sign_key, envelope.signature, pae(header.payload_type, envelope.header)
        ):
            return Rejected(
                "signature",
                f"signature does not verify under {header.sender}'s key",
                grpc.StatusCode.UNAUTHENTICATED,
            )
        if hashlib.sha256(envelope.payload).digest() != header.payload_sha256:
            return Rejected(
                "digest",
                "payload does not match the SHA-256 in the signed header",
                grpc.StatusCode.INVALID_ARGUMENT,
            )

        now = self._clock_ms()
        if header.created_at_ms > now + limits.max_clock_skew_ms:
            return Rejected(
                "timestamp",
                "created_at is in the future beyond the allowed clock skew",
                grpc.StatusCode.FAILED_PRECONDITION,
            )
        if limits.max_age_ms is not None and header.created_at_ms < now - limits.max_age_ms:
            return Rejected(
                "timestamp",
                f"created_at is older than {limits.max_age_ms // 1000} s",
                grpc.StatusCode.FAILED_PRECONDITION,
            )
        if header.expires_at_ms <= now:
            return Rejected("expiry", "envelope has expired", grpc.StatusCode.FAILED_PRECONDITION)
        if header.expires_at_ms - header.created_at_ms > limits.max_lifetime_ms:
            return Rejected(
                "expiry",
                "envelope lifetime exceeds the allowed maximum",
                grpc.StatusCode.INVALID_ARGUMENT,
            )

        for name in header.recipients:
            member = directory.get(name)
            if member is None or not member.active:
                return Rejected(
                    "recipient",
                    f"recipient {name!r} is not an active member",
                    grpc.StatusCode.NOT_FOUND,
                )
        if recipient is not None and recipient not in header.recipients:
            return Rejected(
                "recipient",
                f"this node ({recipient}) is not a recipient of the envelope",
                grpc.StatusCode.INVALID_ARGUMENT,
            )
        return Verified(header, sender)


def _malformed(header: pb.Header) -> str:
    """The first structural problem of a header, or '' if it is well-formed."""
    mid = header.message_id
    if len(mid) != MESSAGE_ID_LENGTH or any(c not in "0123456789abcdef" for c in mid):
        return "message_id must be 32 lowercase hex characters"
    if not header.sender:
        return "sender is empty"
    if not header.recipients:
        return "recipients are empty"
    if len(set(header.recipients)) != len(header.recipients):
        return "recipients repeat a node"
    kind = parse_kind(header.kind)
    if kind is None:
        return f"unknown message kind {header.kind[:40]!r}"
    if not header.payload_type:
        return "payload_type is empty"
    if len(header.payload_sha256) != 32:
        return "payload_sha256 must be 32 bytes"
    if kind in SEALED and not header.sealed:
        return f"{kind} payloads must be sealed to the recipient"
    if header.sealed and len(header.recipients) != 1:
        return "a sealed payload must have exactly one recipient"
    if header.expires_at_ms <= header.created_at_ms:
        return "expires_at is not after created_at"
    return ""
