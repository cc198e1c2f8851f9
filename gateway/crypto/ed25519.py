"""Ed25519 signature checks through libsodium (PyNaCl) for the per-message hot paths.

The broker checks two signatures per round trip and every node one per message; libsodium
does it in about half the time `cryptography` takes on this hardware, and releases the
GIL while it works. Signing and key handling stay with `cryptography`: the keys and the
signature format (RFC 8032) are the same.
"""

from __future__ import annotations

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64


def ed25519_verifies(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """True if `signature` is `public_key`'s Ed25519 signature of `message`.

    A key or signature of the wrong length is simply a signature that does not verify.
    """
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        VerifyKey(public_key).verify(message, signature)
    except BadSignatureError:
        return False
    return True
