"""TOTP codes computed here from RFC 6238 and RFC 4226, independently of pyotp."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct

STEP_S = 30


def hotp(secret_b32: str, counter: int, digits: int = 6) -> str:
    """RFC 4226 section 5.3: HMAC-SHA-1, dynamic truncation, modulo 10^digits."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def totp(secret_b32: str, at_ms: int) -> str:
    """RFC 6238: the HOTP of the 30-second step that holds `at_ms`."""
    return hotp(secret_b32, at_ms // 1000 // STEP_S)
