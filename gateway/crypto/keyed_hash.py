"""Hashed matching mode: HMAC-SHA256 of a canonical input under the consortium key.

A plain SHA-256 of a phone or ID number is reversed by enumerating the few billion possible
numbers in minutes, so this module offers keyed hashing only: without the key, a tag says
nothing about the identifier. Members holding the key can still test guesses, which is why the
blinded (OPRF) mode is the default and this mode is the fallback.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from typing import Final

KEY_LENGTH: Final = 32
"""Bytes in a generated key, and the fewest a key may have (RFC 2104: at least L)."""
TAG_LENGTH: Final = 32


def generate_key() -> bytes:
    """A fresh random consortium key."""
    return secrets.token_bytes(KEY_LENGTH)


class KeyedHasher:
    """HMAC-SHA256 under one consortium key."""

    __slots__ = ("_mac",)

    def __init__(self, key: bytes) -> None:
        if len(key) < KEY_LENGTH:
            raise ValueError("the consortium key must be at least 32 bytes")
        self._mac = hmac.new(key, digestmod=hashlib.sha256)

    def tag(self, canonical_input: bytes) -> bytes:
        """HMAC-SHA256(key, canonical_input)."""
        mac = self._mac.copy()
        mac.update(canonical_input)
        return mac.digest()

    def tag_many(self, canonical_inputs: Iterable[bytes]) -> list[bytes]:
        return [self.tag(canonical_input) for canonical_input in canonical_inputs]

    def matches(self, canonical_input: bytes, tag: bytes) -> bool:
        """Whether `tag` is this input's tag, compared in constant time."""
        return hmac.compare_digest(self.tag(canonical_input), tag)

    def __repr__(self) -> str:
        return "KeyedHasher(<redacted>)"
