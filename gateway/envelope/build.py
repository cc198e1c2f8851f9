"""Building and signing envelopes."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.crypto.signer import Ed25519Signing
from gateway.envelope.pae import pae
from gateway.envelope.sealing import seal
from gateway.v1 import gateway_pb2 as pb

DEFAULT_LIFETIME_MS = 10 * 60 * 1000


def new_message_id() -> str:
    """128 random bits, hex: unguessable and unique without coordination."""
    return secrets.token_hex(16)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Draft:
    """What a sender fills in; `sign` turns it into an Envelope."""

    sender: str
    recipients: Sequence[str]
    kind: str
    payload: bytes
    payload_type: str = "application/json"
    case_ref: str = ""
    purpose: str = ""
    legal_basis: str = ""
    reply_to: str = ""
    batch_size: int = 0
    terms: pb.ActionTerms | None = None
    outcome: str = ""
    seal_to: bytes | None = None
    lifetime_ms: int = DEFAULT_LIFETIME_MS
    message_id: str = field(default_factory=new_message_id)
    created_at_ms: int | None = None

    def header(self, payload_bytes: bytes) -> pb.Header:
        created = self.created_at_ms if self.created_at_ms is not None else now_ms()
        header = pb.Header(
            message_id=self.message_id,
            sender=self.sender,
            recipients=list(self.recipients),
            kind=self.kind,
            case_ref=self.case_ref,
            purpose=self.purpose,
            legal_basis=self.legal_basis,
            created_at_ms=created,
            expires_at_ms=created + self.lifetime_ms,
            reply_to=self.reply_to,
            payload_type=self.payload_type,
            payload_sha256=hashlib.sha256(payload_bytes).digest(),
            sealed=self.seal_to is not None,
            batch_size=self.batch_size,
            outcome=self.outcome,
        )
        if self.terms is not None:
            header.terms.CopyFrom(self.terms)
        return header

    def sign(self, key: Ed25519Signing) -> pb.Envelope:
        payload = self.payload
        if self.seal_to is not None:
            payload = seal(payload, self.message_id, self.seal_to)
        header_bytes = self.header(payload).SerializeToString()
        signature = key.sign(pae(self.payload_type, header_bytes))
        return pb.Envelope(header=header_bytes, payload=payload, signature=signature)
