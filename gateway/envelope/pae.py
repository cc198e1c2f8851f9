"""DSSE pre-authentication encoding: what an envelope signature covers.

PAE binds the payload type to the header bytes, so a signature cannot be replayed
over the same header with a payload interpreted as another type. The header carries
the payload's SHA-256, so the signature covers the payload too.
"""

from __future__ import annotations


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSEv1 PAE: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body."""
    type_bytes = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(type_bytes), type_bytes, len(body), body)
