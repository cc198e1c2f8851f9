"""`ed25519_verifies` (libsodium) against RFC 8032's first test vector and against
signatures made by an independent implementation (`cryptography`/OpenSSL)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.crypto.ed25519 import ed25519_verifies

# RFC 8032, section 7.1, TEST 1 (empty message).
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def test_rfc8032_test_1_verifies() -> None:
    assert ed25519_verifies(RFC8032_PUBLIC, RFC8032_SIGNATURE, b"")


def test_rfc8032_test_1_fails_for_another_message_or_a_flipped_bit() -> None:
    assert not ed25519_verifies(RFC8032_PUBLIC, RFC8032_SIGNATURE, b"\x00")
    for position in (0, 31, 32, 63):
        bad = bytearray(RFC8032_SIGNATURE)
        bad[position] ^= 0x01
        assert not ed25519_verifies(RFC8032_PUBLIC, bytes(bad), b"")


def test_signatures_from_openssl_verify_and_other_keys_do_not() -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    message = b"header bytes" * 40
    signature = key.sign(message)
    assert ed25519_verifies(key.public_key().public_bytes_raw(), signature, message)
    assert not ed25519_verifies(other.public_key().public_bytes_raw(), signature, message)


@pytest.mark.parametrize(
    ("public", "signature"),
    [
        (RFC8032_PUBLIC[:31], RFC8032_SIGNATURE),
        (RFC8032_PUBLIC + b"\x00", RFC8032_SIGNATURE),
        (RFC8032_PUBLIC, RFC8032_SIGNATURE[:63]),
        (RFC8032_PUBLIC, RFC8032_SIGNATURE + b"\x00"),
        (RFC8032_PUBLIC, b""),
    ],
)
def test_wrong_lengths_are_signatures_that_do_not_verify(public: bytes, signature: bytes) -> None:
    assert not ed25519_verifies(public, signature, b"")
