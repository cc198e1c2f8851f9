"""Sealed payloads open only for their recipient and only in their own message."""

from __future__ import annotations

import pytest
from nacl.public import PrivateKey, SealedBox

from gateway.envelope.sealing import SealError, seal, unseal


def test_recipient_opens_what_was_sealed_to_it() -> None:
    key = PrivateKey.generate()
    sealed = seal(b'{"account": "x"}', "m1", bytes(key.public_key))
    assert unseal(sealed, "m1", key) == b'{"account": "x"}'


def test_sealed_box_is_a_standard_libsodium_sealed_box() -> None:
    # Opened with PyNaCl directly: the plaintext is the message id, a newline, the payload.
    key = PrivateKey.generate()
    sealed = seal(b"payload", "m2", bytes(key.public_key))
    assert SealedBox(key).decrypt(sealed) == b"m2\npayload"


def test_another_key_cannot_open_it() -> None:
    sealed = seal(b"payload", "m1", bytes(PrivateKey.generate().public_key))
    with pytest.raises(SealError, match="does not open"):
        unseal(sealed, "m1", PrivateKey.generate())


def test_payload_copied_into_another_message_is_refused() -> None:
    key = PrivateKey.generate()
    sealed = seal(b"payload", "m1", bytes(key.public_key))
    with pytest.raises(SealError, match="another message id"):
        unseal(sealed, "m2", key)
