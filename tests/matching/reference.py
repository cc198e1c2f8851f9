"""Independent computations of what the matching code derives, for expected values.

Written from the protocol description with hashlib and `cryptography`'s AEAD, not with
gateway.matching: a test that compares the two catches a bug in either. Format 2: tag and
label key are the first 8 and last 32 bytes of SHA-512("gateway/match/v2/tag-and-key" 0x00
|| y); a label's plaintext is, per field by name, a one-byte name length, the name, a
two-byte big-endian value length and the value.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

DERIVE_DOMAIN = b"gateway/match/v2/tag-and-key\x00"
LABEL_AAD = b"gateway/match/v2/label"


def bucket(canonical_input: bytes, bits: int) -> int:
    digest = hashlib.sha256(b"gateway/match/v1/bucket\x00" + canonical_input).digest()
    as_bits = "".join(f"{byte:08b}" for byte in digest)
    return int(as_bits[:bits], 2)


def tag(oprf_output: bytes) -> bytes:
    return hashlib.sha512(DERIVE_DOMAIN + oprf_output).digest()[:8]


def label_key(oprf_output: bytes) -> bytes:
    return hashlib.sha512(DERIVE_DOMAIN + oprf_output).digest()[32:]


def encode(fields: dict[str, str]) -> bytes:
    out = bytearray()
    for name in sorted(fields):
        raw_name, raw_value = name.encode("utf-8"), fields[name].encode("utf-8")
        out += bytes([len(raw_name)]) + raw_name
        out += len(raw_value).to_bytes(2, "big") + raw_value
    return bytes(out)


def decode(plain: bytes) -> dict[str, str]:
    fields, at = {}, 0
    while at < len(plain):
        size = plain[at]
        name = plain[at + 1 : at + 1 + size].decode("utf-8")
        at += 1 + size
        size = int.from_bytes(plain[at : at + 2], "big")
        fields[name] = plain[at + 2 : at + 2 + size].decode("utf-8")
        at += 2 + size
    return fields


def seal(oprf_output: bytes, fields: dict[str, str], nonce: bytes) -> bytes:
    aead = ChaCha20Poly1305(label_key(oprf_output))
    return nonce + aead.encrypt(nonce, encode(fields), LABEL_AAD)


def open_label(oprf_output: bytes, sealed: bytes) -> dict[str, str]:
    plain = ChaCha20Poly1305(label_key(oprf_output)).decrypt(sealed[:12], sealed[12:], LABEL_AAD)
    return decode(plain)


def canonical(kind: str, value: str) -> bytes:
    return kind.encode() + b"\x00" + value.encode()
