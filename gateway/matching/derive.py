"""What querier and responder both derive from an identifier and its OPRF output.

Bucket, tag and label key must come out bit for bit the same on both sides, so they are
defined once, here. The bucket is an unkeyed hash (the responder sees it, and learns
only that the identifier is one of the ~1/2^B of all identifiers in that bucket); tag
and label key come from y = F_k(x), which only the key holder can compute for
arbitrary x and the querier only for identifiers it asked about.

Format 2 (match protocol version 2) derives tag and label key with ONE SHA-512 of y and
encodes labels in a fixed binary layout, so that an index build spends its time on the
OPRF rather than on HKDF's three HMACs and JSON.
"""

from __future__ import annotations

import hashlib
import math
import os
import struct
from collections.abc import Iterable, Mapping
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

__all__ = [
    "DEFAULT_BUCKET_BITS",
    "FORMAT",
    "MAX_BUCKET_BITS",
    "NONCE_LENGTH",
    "TAG_LENGTH",
    "FieldEncoder",
    "LabelError",
    "bucket_bits_for",
    "bucket_of",
    "check_bucket_bits",
    "decode_fields",
    "encode_fields",
    "open_label",
    "seal_encoded",
    "seal_label",
    "tag_and_key",
]

FORMAT: Final = 2
"""Version of the tag, key and label derivations; an index built under another is rebuilt."""
DEFAULT_BUCKET_BITS: Final = 16
"""65,536 buckets: about 15 records each at a million records (10-20 from 650k to 1.3M)."""
MIN_BUCKET_BITS: Final = 1
MAX_BUCKET_BITS: Final = 24
TARGET_PER_BUCKET: Final = 16
"""Records per bucket `bucket_bits_for` aims at: what one asked identifier costs the answer."""
TAG_LENGTH: Final = 8
"""A querier compares ~15 tags per identifier; 64 bits make a false match negligible."""
KEY_LENGTH: Final = 32
NONCE_LENGTH: Final = 12
MAX_NAME_BYTES: Final = 0xFF
MAX_VALUE_BYTES: Final = 0xFFFF

_BUCKET_DST: Final = b"gateway/match/v1/bucket\x00"
_DERIVE_DST: Final = b"gateway/match/v2/tag-and-key\x00"
_LABEL_AAD: Final = b"gateway/match/v2/label"
_NAME = struct.Struct(">B")
_VALUE = struct.Struct(">H")


class LabelError(ValueError):
    """A label does not open under the key derived from the querier's OPRF output."""


def check_bucket_bits(bits: int) -> int:
    """`bits` if it is a usable bucket size, else ValueError naming the range."""
    if not MIN_BUCKET_BITS <= bits <= MAX_BUCKET_BITS:
        raise ValueError(f"bucket bits must be {MIN_BUCKET_BITS} to {MAX_BUCKET_BITS}, not {bits}")
    return bits


def bucket_bits_for(records: int, per_bucket: int = TARGET_PER_BUCKET) -> int:
    """round(log2(records / per_bucket)), within the allowed range.

    An answer carries every entry of each asked bucket, so buckets that grow with the
    index make the online time grow with it; sizing them from the record count keeps
    the answer at ~`per_bucket` entries per identifier (16 bits at 1M, 19 at 10M).
    """
    if records < 1 or per_bucket < 1:
        raise ValueError("records and per_bucket must be positive")
    bits = round(math.log2(max(records / per_bucket, 1.0)))
    return min(max(bits, MIN_BUCKET_BITS), MAX_BUCKET_BITS)


def bucket_of(canonical_input: bytes, bits: int) -> int:
    """The first `bits` bits of SHA-256(domain || kind || 0x00 || value), as an integer."""
    digest = hashlib.sha256(_BUCKET_DST + canonical_input).digest()
    return int.from_bytes(digest[:4], "big") >> (32 - bits)


def tag_and_key(oprf_output: bytes) -> tuple[bytes, bytes]:
    """(tag, label key) = (d[:8], d[32:64]) for d = SHA-512(domain || y).

    y is 64 uniform bytes only the key holder (or the querier, for its own identifier)
    can compute, so one hash of it is a KDF; tag and key come from disjoint halves.
    """
    digest = hashlib.sha512(_DERIVE_DST + oprf_output).digest()
    return digest[:TAG_LENGTH], digest[KEY_LENGTH:]


def encode_fields(fields: Mapping[str, str]) -> bytes:
    """Fields by name: for each, u8 name length, name, u16 value length, value (UTF-8)."""
    parts: list[bytes] = []
    for name in sorted(fields):
        raw_name, raw_value = name.encode(), fields[name].encode()
        if not 0 < len(raw_name) <= MAX_NAME_BYTES or len(raw_value) > MAX_VALUE_BYTES:
            raise ValueError(
                f"label field {name!r}: names are 1 to {MAX_NAME_BYTES} bytes and values "
                f"at most {MAX_VALUE_BYTES}"
            )
        parts += (_NAME.pack(len(raw_name)), raw_name, _VALUE.pack(len(raw_value)), raw_value)
    return b"".join(parts)


class FieldEncoder:
    """`encode_fields` for labels drawn from one fixed set of field names.

    An index build seals a label per record, all with the same names: each name's length
    prefix is packed once here rather than per record, and fields outside the set are
    left out (as `label_fields_of` leaves them out). The bytes are `encode_fields`'s.
    """

    def __init__(self, names: Iterable[str]) -> None:
        packed: list[tuple[str, bytes]] = []
        for name in sorted(set(names)):
            raw = name.encode()
            if not 0 < len(raw) <= MAX_NAME_BYTES:
                raise ValueError(f"label field {name!r}: names are 1 to {MAX_NAME_BYTES} bytes")
            packed.append((name, _NAME.pack(len(raw)) + raw))
        self._names = tuple(packed)

    def encode(self, fields: Mapping[str, str]) -> bytes:
        """The set's fields present in `fields`, encoded; ValueError for a too long value."""
        parts: list[bytes] = []
        for name, prefix in self._names:
            value = fields.get(name)
            if value is None:
                continue
            raw = value.encode()
            if len(raw) > MAX_VALUE_BYTES:
                raise ValueError(
                    f"label field {name!r}: values are at most {MAX_VALUE_BYTES} bytes"
                )
            parts += (prefix, _VALUE.pack(len(raw)), raw)
        return b"".join(parts)


def decode_fields(plain: bytes) -> dict[str, str]:
    """The inverse of `encode_fields`; `LabelError` unless it is exactly that layout."""
    fields: dict[str, str] = {}
    at, end, previous = 0, len(plain), ""
    try:
        while at < end:
            (size,) = _NAME.unpack_from(plain, at)
            name = plain[at + 1 : at + 1 + size].decode()
            at += 1 + size
            (size,) = _VALUE.unpack_from(plain, at)
            value = plain[at + 2 : at + 2 + size]
            at += 2 + size
            if at > end or not name or name <= previous:
                raise LabelError("label fields are truncated, empty, repeated or out of order")
            fields[name] = value.decode()
            previous = name
    except (struct.error, UnicodeDecodeError):
        raise LabelError("label fields are not well formed") from None
    return fields


def seal_label(key: bytes, fields: Mapping[str, str]) -> bytes:
    """nonce || ChaCha20-Poly1305(key, nonce, binary-encoded `fields`).

    The nonce is random: a record's label is re-sealed under the same key whenever its
    attributes change, so a fixed or counter nonce could repeat across rebuilds. A key
    seals only its own record's labels, a handful in its life, so 96 random bits do not
    collide. ValueError if a field name or value is too long to encode.
    """
    return seal_encoded(key, encode_fields(fields), os.urandom(NONCE_LENGTH))


def seal_encoded(key: bytes, plain: bytes, nonce: bytes) -> bytes:
    """nonce || ChaCha20-Poly1305(key, nonce, `plain`): `seal_label` for fields already
    encoded, under a random nonce the caller drew (a build draws a chunk's at once)."""
    if len(nonce) != NONCE_LENGTH:
        raise ValueError(f"a label nonce is {NONCE_LENGTH} bytes")
    return nonce + ChaCha20Poly1305(key).encrypt(nonce, plain, _LABEL_AAD)


def open_label(key: bytes, sealed: bytes) -> dict[str, str]:
    """The fields of a sealed label; `LabelError` if it does not open or is malformed."""
    if len(sealed) < NONCE_LENGTH + 16:
        raise LabelError("label is too short")
    try:
        plain = ChaCha20Poly1305(key).decrypt(
            sealed[:NONCE_LENGTH], sealed[NONCE_LENGTH:], _LABEL_AAD
        )
    except InvalidTag:
        raise LabelError("label does not open under the derived key") from None
    return decode_fields(plain)
