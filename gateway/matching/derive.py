"""What querier and responder both derive from an identifier and its OPRF output.

Bucket, tag and label key must come out bit for bit the same on both sides, so they are
defined once, here. The bucket is an unkeyed hash (the responder sees it, and learns
only that the identifier is one of the ~1/2^B of all identifiers in that bucket); tag
and label key come from y = F_k(x), which only the key holder can compute for
arbitrary x and the querier only for identifiers it asked about.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

__all__ = [
    "DEFAULT_BUCKET_BITS",
    "MAX_BUCKET_BITS",
    "TAG_LENGTH",
    "LabelError",
    "bucket_of",
    "check_bucket_bits",
    "open_label",
    "seal_label",
    "tag_and_key",
]

DEFAULT_BUCKET_BITS: Final = 16
"""65,536 buckets: about 15 records each at a million records (10-20 from 650k to 1.3M)."""
MIN_BUCKET_BITS: Final = 1
MAX_BUCKET_BITS: Final = 24
TAG_LENGTH: Final = 8
"""A querier compares ~15 tags per identifier; 64 bits make a false match negligible."""
NONCE_LENGTH: Final = 12

_BUCKET_DST: Final = b"gateway/match/v1/bucket\x00"
_HKDF_SALT: Final = b"gateway/match/v1"
_TAG_INFO: Final = b"tag"
_LABEL_INFO: Final = b"label"
_LABEL_AAD: Final = b"gateway/match/v1/label"


class LabelError(ValueError):
    """A label does not open under the key derived from the querier's OPRF output."""


def check_bucket_bits(bits: int) -> int:
    """`bits` if it is a usable bucket size, else ValueError naming the range."""
    if not MIN_BUCKET_BITS <= bits <= MAX_BUCKET_BITS:
        raise ValueError(f"bucket bits must be {MIN_BUCKET_BITS} to {MAX_BUCKET_BITS}, not {bits}")
    return bits


def bucket_of(canonical_input: bytes, bits: int) -> int:
    """The first `bits` bits of SHA-256(domain || kind || 0x00 || value), as an integer."""
    digest = hashlib.sha256(_BUCKET_DST + canonical_input).digest()
    return int.from_bytes(digest[:4], "big") >> (32 - bits)


_ENCODER: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _hkdf_expand(prk: bytes, info: bytes) -> bytes:
    """HKDF-Expand (RFC 5869) for one 32-byte block: HMAC(PRK, info || 0x01)."""
    return hmac.digest(prk, info + b"\x01", "sha256")


def tag_and_key(oprf_output: bytes) -> tuple[bytes, bytes]:
    """(tag, label key) = (HKDF(y, "tag")[:8], HKDF(y, "label")), HKDF-SHA256, one extract."""
    prk = hmac.digest(_HKDF_SALT, oprf_output, "sha256")
    return _hkdf_expand(prk, _TAG_INFO)[:TAG_LENGTH], _hkdf_expand(prk, _LABEL_INFO)


def seal_label(key: bytes, fields: Mapping[str, str]) -> bytes:
    """nonce || ChaCha20-Poly1305(key, nonce, compact JSON of `fields`).

    The nonce is random: a record's label is re-sealed under the same key whenever its
    attributes change, so a fixed or counter nonce could repeat across rebuilds.
    """
    plain = _ENCODER.encode(dict(fields))
    nonce = os.urandom(NONCE_LENGTH)
    return nonce + ChaCha20Poly1305(key).encrypt(nonce, plain.encode(), _LABEL_AAD)


def open_label(key: bytes, sealed: bytes) -> dict[str, str]:
    """The fields of a sealed label; `LabelError` if it does not open or is not a JSON object."""
    if len(sealed) < NONCE_LENGTH + 16:
        raise LabelError("label is too short")
    try:
        plain = ChaCha20Poly1305(key).decrypt(
            sealed[:NONCE_LENGTH], sealed[NONCE_LENGTH:], _LABEL_AAD
        )
    except InvalidTag:
        raise LabelError("label does not open under the derived key") from None
    try:
        fields = json.loads(plain)
    except ValueError:
        raise LabelError("label is not JSON") from None
    if not isinstance(fields, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in fields.items()
    ):
        raise LabelError("label is not an object of strings")
    return fields
