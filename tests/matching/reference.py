"""Independent computations of what the matching code derives, for expected values.

Written from the protocol description with hashlib and `cryptography`'s HKDF and AEAD,
not with gateway.matching: a test that compares the two catches a bug in either.
"""

from __future__ import annotations

import hashlib
import json

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SALT = b"gateway/match/v1"
LABEL_AAD = b"gateway/match/v1/label"


def bucket(canonical_input: bytes, bits: int) -> int:
    digest = hashlib.sha256(b"gateway/match/v1/bucket\x00" + canonical_input).digest()
    as_bits = "".join(f"{byte:08b}" for byte in digest)
    return int(as_bits[:bits], 2)


def hkdf(oprf_output: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=SALT, info=info).derive(oprf_output)


def tag(oprf_output: bytes) -> bytes:
    return hkdf(oprf_output, b"tag")[:8]


def open_label(oprf_output: bytes, sealed: bytes) -> dict[str, str]:
    key = hkdf(oprf_output, b"label")
    plain = ChaCha20Poly1305(key).decrypt(sealed[:12], sealed[12:], LABEL_AAD)
    fields: dict[str, str] = json.loads(plain)
    return fields


def canonical(kind: str, value: str) -> bytes:
    return kind.encode() + b"\x00" + value.encode()
