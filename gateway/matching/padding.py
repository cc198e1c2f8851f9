"""Batch padding: every filter-mode query goes out at a size class, not its true size.

With the batch size a responder (or the broker, from the envelope) would learn how many
suspects a case has; padded to the next power of two, at least MIN_CLASS, it learns only
the class. Dummies are random 32-byte inputs blinded exactly like identifiers, so their
blinded elements are uniform group elements like every other: nothing tells them apart.
"""

from __future__ import annotations

import os
from typing import Final

__all__ = ["DUMMY_PREFIX", "MIN_CLASS", "dummy_inputs", "padded_size"]

MIN_CLASS: Final = 64
DUMMY_PREFIX: Final = b"\xffgateway/match/dummy\x00"
"""Starts no canonical identifier input (those start with a kind name), so a dummy can
never collide with a real identifier; the responder never sees inputs, only blinds."""


def padded_size(count: int, *, minimum: int = MIN_CLASS, limit: int) -> int:
    """The size class of a batch of `count`: the next power of two, at least `minimum`.

    ValueError if the class is above `limit` (the responder's policy limit), naming both.
    """
    if count < 1:
        raise ValueError("a batch holds at least one identifier")
    if minimum < 1 or minimum & (minimum - 1):
        raise ValueError(f"the smallest size class must be a power of two, not {minimum}")
    size = max(minimum, 1 << (count - 1).bit_length())
    if size > limit:
        raise ValueError(
            f"{count} identifiers pad to a batch of {size}, above the limit of {limit}; "
            "split them over several queries"
        )
    return size


def dummy_inputs(count: int) -> list[bytes]:
    """`count` fresh random OPRF inputs that stand for no identifier."""
    return [DUMMY_PREFIX + os.urandom(32) for _ in range(count)]
