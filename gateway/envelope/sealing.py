"""Payloads sealed to their recipient (X25519 sealed box), bound to their message id.

A sealed box is anonymous, so the plaintext starts with the message id: a member who
copies someone else's sealed payload into a message of its own is caught on opening.
"""

from __future__ import annotations

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

_SEPARATOR = b"\n"


class SealError(Exception):
    """A sealed payload cannot be opened by this recipient or is not bound to its message."""


def seal(payload: bytes, message_id: str, recipient_seal_key: bytes) -> bytes:
    box = SealedBox(PublicKey(recipient_seal_key))
    return bytes(box.encrypt(message_id.encode() + _SEPARATOR + payload))


def unseal(sealed: bytes, message_id: str, private_key: PrivateKey) -> bytes:
    try:
        plain = SealedBox(private_key).decrypt(sealed)
    except CryptoError as exc:
        raise SealError("sealed payload does not open with this node's sealing key") from exc
    bound_id, sep, payload = plain.partition(_SEPARATOR)
    if not sep or bound_id != message_id.encode():
        raise SealError("sealed payload is bound to another message id")
    return payload
