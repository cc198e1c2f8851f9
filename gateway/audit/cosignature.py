"""C2SP tlog-cosignature v1, Ed25519 flavour (c2sp.org/tlog-cosignature, type 0x04).

A checkpoint signed only by the log cannot rule out a split view: the log could
show different trees to different agencies. Peer nodes therefore act as witnesses:
each checks a new checkpoint against the last one it cosigned and adds a
timestamped cosignature, and clients require a quorum of those.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.checkpoint import Checkpoint, CheckpointError, parse_checkpoint
from gateway.audit.merkle import EMPTY_ROOT
from gateway.audit.note import (
    Ed25519Signer,
    Ed25519Verifier,
    MalformedKeyError,
    NoteSignature,
    NoteVerifier,
    compute_key_id,
    format_vkey,
    open_note,
    verifier_from_vkey,
)
from gateway.audit.proof import verify_consistency
from gateway.crypto.signer import Ed25519Signing

__all__ = [
    "MAX_TIMESTAMP",
    "SIG_TYPE_COSIGNATURE_V1",
    "CosignatureError",
    "CosignatureV1Signer",
    "CosignatureV1Verifier",
    "cosign_checkpoint",
    "cosignature_timestamp",
    "cosigned_message",
    "parse_cosignature",
]

SIG_TYPE_COSIGNATURE_V1 = 0x04
"""Signature type byte of timestamped Ed25519 checkpoint cosignatures."""

MAX_TIMESTAMP = (1 << 63) - 1
"""Cosignature timestamps must not exceed 2**63 - 1."""

_HEADER = "cosignature/v1\n"
_TIMESTAMP_SIZE = 8
_ED25519_SIG_SIZE = 64


class CosignatureError(ValueError):
    """A witness refuses to cosign: the checkpoint does not extend what it saw before."""


def cosigned_message(checkpoint_text: str, timestamp: int) -> bytes:
    """``cosignature/v1\\ntime <t>\\n`` followed by the whole checkpoint note text."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError(f"cosignature timestamp {timestamp} is outside 0..2**63-1")
    if not checkpoint_text.endswith("\n"):
        raise ValueError("checkpoint text must end with a newline")
    return f"{_HEADER}time {timestamp}\n{checkpoint_text}".encode()


def parse_cosignature(signature: bytes) -> tuple[int, bytes]:
    """Split a ``timestamped_signature`` (key ID already removed) into (timestamp, sig)."""
    if len(signature) != _TIMESTAMP_SIZE + _ED25519_SIG_SIZE:
        raise ValueError(
            f"Ed25519 cosignature is {len(signature)} bytes, "
            f"want {_TIMESTAMP_SIZE + _ED25519_SIG_SIZE} (timestamp + signature)"
        )
    timestamp = int.from_bytes(signature[:_TIMESTAMP_SIZE], "big")
    if timestamp > MAX_TIMESTAMP:
        raise ValueError(f"cosignature timestamp {timestamp} exceeds 2**63-1")
    return timestamp, signature[_TIMESTAMP_SIZE:]


def cosignature_timestamp(signature: NoteSignature) -> int:
    """The POSIX time a (verified) cosignature line claims it was made."""
    return parse_cosignature(signature.signature)[0]


class CosignatureV1Signer:
    """A witness key producing Ed25519 cosignature/v1 note signatures."""

    def __init__(
        self,
        name: str,
        private_key: Ed25519Signing,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # Reuse the plain signer for key-name checks and raw key handling; the key
        # ID differs because the signature type byte differs (0x04, not 0x01).
        self._inner = Ed25519Signer(name, private_key)
        self._key_id = compute_key_id(name, SIG_TYPE_COSIGNATURE_V1, self._inner.public_key)
        self._clock = clock

    @classmethod
    def generate(cls, name: str, *, clock: Callable[[], float] = time.time) -> CosignatureV1Signer:
        return cls(name, Ed25519PrivateKey.generate(), clock=clock)

    @classmethod
    def from_seed(
        cls, name: str, seed: bytes, *, clock: Callable[[], float] = time.time
    ) -> CosignatureV1Signer:
        if len(seed) != 32:
            raise MalformedKeyError("Ed25519 seed must be 32 bytes")
        return cls(name, Ed25519PrivateKey.from_private_bytes(seed), clock=clock)

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def key_id(self) -> int:
        return self._key_id

    @property
    def public_key(self) -> bytes:
        return self._inner.public_key

    def sign(self, message: bytes) -> bytes:
        """Cosign checkpoint text at the clock's current time (whole seconds)."""
        return self.sign_at(message, int(self._clock()))

    def sign_at(self, message: bytes, timestamp: int) -> bytes:
        """``u64 timestamp || Ed25519(cosigned_message)``; refuses non-checkpoint text."""
        text = message.decode("utf-8")
        parse_checkpoint(text)  # a witness only ever vouches for checkpoints
        signature = self._inner.sign(cosigned_message(text, timestamp))
        return timestamp.to_bytes(_TIMESTAMP_SIZE, "big") + signature

    def verifier(self) -> CosignatureV1Verifier:
        return CosignatureV1Verifier(self.name, self.public_key)


@dataclass(frozen=True)
class CosignatureV1Verifier:
    """A trusted witness key for Ed25519 cosignature/v1 signatures."""

    name: str
    public_key: bytes
    key_id: int = field(init=False, repr=False, compare=False)
    _ed25519: Ed25519Verifier = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The plain verifier checks the name and key length, then does the maths.
        object.__setattr__(self, "_ed25519", Ed25519Verifier(self.name, self.public_key))
        key_id = compute_key_id(self.name, SIG_TYPE_COSIGNATURE_V1, self.public_key)
        object.__setattr__(self, "key_id", key_id)

    @property
    def vkey(self) -> str:
        return format_vkey(self.name, SIG_TYPE_COSIGNATURE_V1, self.public_key)

    @classmethod
    def from_vkey(cls, vkey: str) -> CosignatureV1Verifier:
        """Parse ``name+keyid+base64(0x04 || key)``, insisting on the spec's key ID."""
        return verifier_from_vkey(vkey, SIG_TYPE_COSIGNATURE_V1, "Ed25519 cosignature/v1", cls)

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            timestamp, sig = parse_cosignature(signature)
            signed = cosigned_message(message.decode("utf-8"), timestamp)
        except ValueError:  # includes UnicodeDecodeError
            return False
        return self._ed25519.verify(signed, sig)


def cosign_checkpoint(
    note: bytes | str,
    cosigner: CosignatureV1Signer,
    log_verifiers: Iterable[NoteVerifier],
    *,
    previous: Checkpoint | None = None,
    consistency_proof: Sequence[bytes] = (),
    timestamp: int | None = None,
) -> str:
    """Witness a signed checkpoint and return the cosignature line to append to it.

    Applies the checks of c2sp.org/tlog-witness add-checkpoint: the note must carry
    a valid signature from one of the log's keys; a size-0 checkpoint must have the
    empty-tree root; and the checkpoint must extend ``previous`` (the last one this
    witness cosigned for the origin, None if none) as shown by ``consistency_proof``.
    The caller must persist the new checkpoint atomically with this check.
    """
    text, _ = open_note(note, log_verifiers)
    checkpoint = parse_checkpoint(text)
    if previous is not None and checkpoint.origin != previous.origin:
        raise CheckpointError(f"checkpoint origin {checkpoint.origin!r} is not {previous.origin!r}")
    if checkpoint.size == 0 and checkpoint.root_hash != EMPTY_ROOT:
        raise CosignatureError("a checkpoint of size 0 must have the empty-tree root hash")
    old_size = previous.size if previous is not None else 0
    if old_size > checkpoint.size:
        raise CosignatureError(
            f"checkpoint size {checkpoint.size} is smaller than the size {old_size} "
            "already cosigned"
        )
    if previous is None or previous.size == 0:
        # The witness protocol's case, not RFC 9162's: nothing to prove from the
        # empty tree (verify_consistency refuses size 0), so the proof must be empty.
        if consistency_proof:
            raise CosignatureError("the consistency proof from size 0 must be empty")
    else:
        verify_consistency(
            previous.size,
            checkpoint.size,
            consistency_proof,
            previous.root_hash,
            checkpoint.root_hash,
        )
    if timestamp is None:
        signature = cosigner.sign(text.encode())
    else:
        signature = cosigner.sign_at(text.encode(), timestamp)
    return NoteSignature(cosigner.name, cosigner.key_id, signature).line()
