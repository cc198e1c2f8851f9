"""C2SP signed notes (c2sp.org/signed-note@v1.0.0): the envelope of checkpoints.

The audit log publishes its tree heads as signed notes so that standard
transparency tooling (witnesses, monitors, other agencies) can check them. A note's
text must be ignored unless a trusted key signed it, so parsing is strict, unknown
keys are skipped exactly as the spec says, and every rejection is a typed error
that names what failed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.crypto.ed25519 import ed25519_verifies
from gateway.crypto.signer import Ed25519Signing

__all__ = [
    "MAX_SIGNATURES",
    "SIG_TYPE_ED25519",
    "AmbiguousKeyError",
    "Ed25519Signer",
    "Ed25519Verifier",
    "InvalidSignatureError",
    "MalformedKeyError",
    "MalformedNoteError",
    "Note",
    "NoteError",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "UnverifiedNoteError",
    "VerifierKey",
    "b64decode_strict",
    "compute_key_id",
    "format_vkey",
    "is_valid_key_name",
    "open_note",
    "parse_note",
    "parse_vkey",
    "sign_note",
    "signature_line",
]

SIG_TYPE_ED25519 = 0x01
"""Signature type byte of plain Ed25519 note signatures."""

MAX_SIGNATURES = 100
"""Most signature lines accepted in one note (the spec demands at least 16)."""

_SIG_PREFIX = "\u2014 "  # em dash, space
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")
_HEX8 = re.compile("[0-9a-f]{8}")


class NoteError(ValueError):
    """Base class of every signed-note failure."""


class MalformedNoteError(NoteError):
    """The note, or the text to be signed, breaks the signed-note syntax."""


class MalformedKeyError(NoteError):
    """A key name or verifier key string is not acceptable."""


class AmbiguousKeyError(NoteError):
    """Two different trusted verifiers share a key name and key ID."""


class InvalidSignatureError(NoteError):
    """A signature from a known key (name and ID both match) failed to verify."""

    def __init__(self, name: str, key_id: int) -> None:
        super().__init__(f"invalid signature for key {name}+{key_id:08x}")
        self.name = name
        self.key_id = key_id


class UnverifiedNoteError(NoteError):
    """No signature in the note is from a trusted key."""

    def __init__(self, message: str, unverified: Sequence[NoteSignature] = ()) -> None:
        super().__init__(message)
        self.unverified = tuple(unverified)


def b64decode_strict(value: str, what: str) -> bytes:
    """Standard base64 (RFC 4648 section 4), padded and canonical, else ValueError.

    Canonical means re-encoding gives the same text back, so one value has one
    spelling and signed bytes cannot be varied without changing their meaning.
    """
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise ValueError(f"{what} is not valid base64") from None
    if base64.b64encode(raw).decode("ascii") != value:
        raise ValueError(f"{what} is not canonical base64")
    return raw


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def is_valid_key_name(name: str) -> bool:
    """Key names are non-empty, without Unicode spaces, plus signs or control characters."""
    return (
        bool(name)
        and "+" not in name
        and not any(ch.isspace() for ch in name)
        and _CONTROL.search(name) is None
    )


def _check_key_name(name: str) -> None:
    if not is_valid_key_name(name):
        raise MalformedKeyError(
            f"invalid key name {name!r}: must be non-empty, without spaces or '+'"
        )


def compute_key_id(name: str, sig_type: int, public_key: bytes) -> int:
    """key ID = SHA-256(key name || 0x0A || signature type || public key)[:4], big-endian."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class VerifierKey:
    """The parts of a verifier key string ``name+hex(key ID)+base64(type || key)``."""

    name: str
    key_id: int
    sig_type: int
    public_key: bytes


def format_vkey(name: str, sig_type: int, public_key: bytes, key_id: int | None = None) -> str:
    """Encode a verifier key string; the key ID defaults to the recommended hash."""
    _check_key_name(name)
    if key_id is None:
        key_id = compute_key_id(name, sig_type, public_key)
    return f"{name}+{key_id:08x}+{_b64(bytes([sig_type]) + public_key)}"


def parse_vkey(vkey: str) -> VerifierKey:
    """Split a verifier key string; checks syntax only, not the key ID."""
    parts = vkey.split("+", 2)  # the base64 part may itself contain '+'
    if len(parts) != 3:
        raise MalformedKeyError("verifier key must be name+keyid+base64key")
    name, hex_id, b64_key = parts
    _check_key_name(name)
    if not _HEX8.fullmatch(hex_id):
        raise MalformedKeyError(f"verifier key ID {hex_id!r} is not 8 lowercase hex digits")
    try:
        raw = b64decode_strict(b64_key, "verifier key material")
    except ValueError as e:
        raise MalformedKeyError(str(e)) from None
    if len(raw) < 2:
        raise MalformedKeyError("verifier key material is too short")
    return VerifierKey(name, int(hex_id, 16), raw[0], raw[1:])


class NoteSigner(Protocol):
    """Anything that can add a signature line to a note."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> int: ...

    def sign(self, message: bytes) -> bytes:
        """Signature over the note text, without the 4-byte key ID."""
        ...


class NoteVerifier(Protocol):
    """A trusted key: signatures are matched to it by (name, key_id)."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> int: ...

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (without the key ID) is valid over the note text."""
        ...


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


class Ed25519Signer:
    """Plain Ed25519 note signer (signature type 0x01)."""

    def __init__(self, name: str, private_key: Ed25519Signing) -> None:
        _check_key_name(name)
        self._name = name
        self._key = private_key
        self._public = _raw_public(private_key.public_key())
        self._key_id = compute_key_id(name, SIG_TYPE_ED25519, self._public)

    @classmethod
    def generate(cls, name: str) -> Ed25519Signer:
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> Ed25519Signer:
        """From the 32-byte RFC 8032 private key (seed)."""
        if len(seed) != 32:
            raise MalformedKeyError("Ed25519 seed must be 32 bytes")
        return cls(name, Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> int:
        return self._key_id

    @property
    def public_key(self) -> bytes:
        return self._public

    @property
    def vkey(self) -> str:
        """The verifier key string to hand to whoever must check this signer's notes."""
        return format_vkey(self._name, SIG_TYPE_ED25519, self._public)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def verifier(self) -> Ed25519Verifier:
        return Ed25519Verifier(self._name, self._public)


@dataclass(frozen=True)
class Ed25519Verifier:
    """Plain Ed25519 note verifier (signature type 0x01)."""

    name: str
    public_key: bytes
    key_id: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_key_name(self.name)
        if len(self.public_key) != 32:
            raise MalformedKeyError("Ed25519 public key must be 32 bytes")
        key_id = compute_key_id(self.name, SIG_TYPE_ED25519, self.public_key)
        object.__setattr__(self, "key_id", key_id)

    @property
    def vkey(self) -> str:
        return format_vkey(self.name, SIG_TYPE_ED25519, self.public_key)

    @classmethod
    def from_vkey(cls, vkey: str) -> Ed25519Verifier:
        """Parse ``name+keyid+base64(0x01 || key)``, insisting on the spec's key ID."""
        return verifier_from_vkey(vkey, SIG_TYPE_ED25519, "Ed25519", cls)

    def verify(self, message: bytes, signature: bytes) -> bool:
        return ed25519_verifies(self.public_key, signature, message)


V = TypeVar("V", bound=NoteVerifier)


def verifier_from_vkey(
    vkey: str, sig_type: int, type_name: str, make: Callable[[str, bytes], V]
) -> V:
    """A verifier of one signature type from its vkey; the vkey's key ID must be the one
    the spec computes from the name and key (a mismatch is a malformed key, not a guess)."""
    key = parse_vkey(vkey)
    if key.sig_type != sig_type:
        raise MalformedKeyError(
            f"verifier key has signature type 0x{key.sig_type:02x}, "
            f"want 0x{sig_type:02x} ({type_name})"
        )
    verifier = make(key.name, key.public_key)
    if verifier.key_id != key.key_id:
        raise MalformedKeyError(
            f"verifier key ID {key.key_id:08x} does not match the key "
            f"(computed {verifier.key_id:08x})"
        )
    return verifier


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, key ID and the signature proper."""

    name: str
    key_id: int
    signature: bytes

    def line(self) -> str:
        """``— <name> base64(key ID || signature)`` with its newline."""
        blob = self.key_id.to_bytes(4, "big") + self.signature
        return f"{_SIG_PREFIX}{self.name} {_b64(blob)}\n"


@dataclass(frozen=True)
class Note:
    """A syntactically valid note; its signatures are NOT verified."""

    text: str
    signatures: tuple[NoteSignature, ...]


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise MalformedNoteError("note text must be non-empty and end with a newline")
    bad = _CONTROL.search(text)
    if bad:
        raise MalformedNoteError(
            f"note text contains control character U+{ord(bad.group()):04X} at offset {bad.start()}"
        )


def signature_line(text: str, signer: NoteSigner) -> str:
    """Sign ``text`` and return the signature line, e.g. to append to an existing note."""
    _check_text(text)
    if not is_valid_key_name(signer.name):
        raise MalformedKeyError(f"signer has an invalid key name {signer.name!r}")
    if not 0 <= signer.key_id < 1 << 32:
        raise MalformedKeyError(f"signer {signer.name!r} has a key ID outside uint32")
    sig = NoteSignature(signer.name, signer.key_id, signer.sign(text.encode()))
    return sig.line()


def sign_note(text: str, signers: Sequence[NoteSigner]) -> bytes:
    """A signed note: ``text``, a blank line, one signature line per signer."""
    if not signers:
        raise ValueError("a signed note needs at least one signer")
    lines = [signature_line(text, s) for s in signers]
    return (text + "\n" + "".join(lines)).encode()


def _parse_signature_line(line: str, number: int) -> NoteSignature:
    if not line.startswith(_SIG_PREFIX):
        raise MalformedNoteError(
            f"signature line {number} does not start with an em dash and a space"
        )
    name, space, b64_sig = line[len(_SIG_PREFIX) :].partition(" ")
    if not space:
        raise MalformedNoteError(f"signature line {number} has no space after the key name")
    if not is_valid_key_name(name):
        raise MalformedNoteError(f"signature line {number} has an invalid key name {name!r}")
    try:
        blob = b64decode_strict(b64_sig, f"signature line {number}")
    except ValueError as e:
        raise MalformedNoteError(str(e)) from None
    if len(blob) < 5:
        raise MalformedNoteError(f"signature line {number} is shorter than key ID + signature")
    return NoteSignature(name, int.from_bytes(blob[:4], "big"), blob[4:])


def parse_note(note: bytes | str) -> Note:
    """Split a note into text and signature lines, checking syntax only."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as e:
            raise MalformedNoteError(f"note is not valid UTF-8 (byte {e.start})") from None
    bad = _CONTROL.search(note)
    if bad:
        raise MalformedNoteError(
            f"note contains control character U+{ord(bad.group()):04X} at offset {bad.start()}"
        )
    if not note.endswith("\n"):
        raise MalformedNoteError("note does not end with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError("note has no blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block:
        raise MalformedNoteError("note has no signature lines after its last blank line")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNoteError(f"note has {len(lines)} signatures, limit {MAX_SIGNATURES}")
    sigs = tuple(_parse_signature_line(line, i) for i, line in enumerate(lines, 1))
    return Note(text, sigs)


def open_note(
    note: bytes | str, verifiers: Iterable[NoteVerifier]
) -> tuple[str, list[NoteSignature]]:
    """Verify a note against trusted keys; returns its text and the verified signatures.

    Per the spec: signatures whose (name, key ID) match no trusted key are ignored;
    a signature that matches a trusted key must verify or the whole note is
    rejected (`InvalidSignatureError`); and at least one must verify
    (`UnverifiedNoteError`). Each trusted key appears at most once in the result.
    """
    parsed = parse_note(note)
    known: dict[tuple[str, int], NoteVerifier] = {}
    ambiguous: set[tuple[str, int]] = set()
    for v in verifiers:
        key = (v.name, v.key_id)
        if key in known and known[key] != v:
            ambiguous.add(key)
        known.setdefault(key, v)
    message = parsed.text.encode()
    verified: list[NoteSignature] = []
    seen: set[tuple[str, int]] = set()
    unverified: list[NoteSignature] = []
    for sig in parsed.signatures:
        key = (sig.name, sig.key_id)
        if key in ambiguous:
            raise AmbiguousKeyError(f"more than one trusted key is {sig.name}+{sig.key_id:08x}")
        verifier = known.get(key)
        if verifier is None:
            unverified.append(sig)
            continue
        if not verifier.verify(message, sig.signature):
            raise InvalidSignatureError(sig.name, sig.key_id)
        if key not in seen:
            seen.add(key)
            verified.append(sig)
    if not verified:
        names = ", ".join(f"{s.name}+{s.key_id:08x}" for s in unverified)
        raise UnverifiedNoteError(
            f"note has no signature from a trusted key (found only: {names})", unverified
        )
    return parsed.text, verified
