"""The signer interface: what signs envelopes, audit checkpoints and the directory.

Code that signs needs only the two operations below, so the private key may be a
`cryptography` key in memory (an encrypted PKCS#8 file, `gateway.pki.key_files`) or a
handle to a key that never leaves a hardware security module
(`gateway.pki.pkcs11_signer`). `Ed25519PrivateKey` itself satisfies the protocol, and
the verifiers need nothing but the public key, so they do not change.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


@runtime_checkable
class Ed25519Signing(Protocol):
    """An Ed25519 private key whose signatures are RFC 8032 (pure Ed25519, 64 bytes)."""

    def sign(self, data: bytes) -> bytes: ...

    def public_key(self) -> Ed25519PublicKey: ...
