"""Diffie-Hellman PSI building blocks over ristretto255, for bulk matching of balanced sets.

Each party hashes its canonical inputs to the group and raises them to its own secret key; after
both keys are applied, H(x)^(ab) = H(x)^(ba), so equal inputs give equal elements and nothing
else is learned. In the cardinality-only variant the responder shuffles the doubly-masked set
before returning it, so the querier learns how many matched but not which. The gRPC streaming
that wires these steps together lives elsewhere.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from typing import Final

from gateway.crypto import group
from gateway.crypto.group import Element, InvalidElement, Scalar

__all__ = [
    "DST",
    "Element",
    "InvalidElement",
    "Scalar",
    "decode_elements",
    "encode_elements",
    "exponentiate",
    "exponentiate_and_shuffle",
    "exponentiate_parallel",
    "exponentiate_received",
    "generate_key",
    "hash_inputs_to_group",
    "intersection_cardinality",
    "intersection_indices",
]

DST: Final = b"HashToGroup-gateway-dh-psi-v1-ristretto255-SHA512"
"""Domain separation tag: PSI elements never collide with OPRF elements of the same input."""


def generate_key() -> Scalar:
    """A fresh secret exponent for one PSI session; never reuse it across sessions."""
    return group.random_scalar()


def hash_inputs_to_group(canonical_inputs: Iterable[bytes]) -> list[Element]:
    """H(x) for each canonical input (RFC 9380 hash_to_ristretto255 under `DST`)."""
    elements = group.hash_to_group_many(canonical_inputs, DST)
    if any(group.is_identity(element) for element in elements):
        raise ValueError("an input maps to the identity element")
    return elements


def exponentiate(key: Scalar, elements: Sequence[Element]) -> list[Element]:
    """E^key for each element, in order."""
    return group.scalar_mult_many(key, elements)


def exponentiate_parallel(key: Scalar, elements: Sequence[Element], workers: int) -> list[Element]:
    """`exponentiate` spread over `workers` threads, in order.

    Threads rather than processes: libsodium runs with the GIL released, so threads scale over
    cores while the key stays in this process and nothing is pickled.
    """
    return group.scalar_mult_many(key, elements, workers=workers)


def exponentiate_received(key: Scalar, encodings: Sequence[bytes], workers: int) -> list[Element]:
    """The peer's encodings, validated and raised to `key` in one step (one decode each).

    `InvalidElement` on the first malformed, non-canonical or identity encoding.
    """
    return group.scalar_mult_received(key, encodings, workers=workers)


def exponentiate_and_shuffle(
    key: Scalar, elements: Sequence[Element], *, workers: int = 1
) -> list[Element]:
    """Cardinality-only variant: E^key for each element, returned in a random order."""
    masked = group.scalar_mult_many(key, elements, workers=workers)
    secrets.SystemRandom().shuffle(masked)
    return masked


def intersection_indices(
    own_double_masked: Sequence[Element], peer_double_masked: Iterable[Element]
) -> list[int]:
    """Positions i where own_double_masked[i] occurs among the peer's doubly-masked elements."""
    peer = set(peer_double_masked)
    return [i for i, element in enumerate(own_double_masked) if element in peer]


def intersection_cardinality(
    own_shuffled_double_masked: Iterable[Element], peer_double_masked: Iterable[Element]
) -> int:
    """How many of our (shuffled) doubly-masked elements the peer's set holds.

    For the cardinality-only variant: the responder returned our elements through
    `exponentiate_and_shuffle`, so positions carry no meaning and only the count is kept.
    """
    peer = set(peer_double_masked)
    return sum(1 for element in own_shuffled_double_masked if element in peer)


def encode_elements(elements: Iterable[Element]) -> list[bytes]:
    """32-byte wire encodings."""
    return group.serialize_elements(elements)


def decode_elements(encodings: Iterable[bytes]) -> list[Element]:
    """Elements received from the peer; `InvalidElement` on any malformed or identity one."""
    return group.deserialize_elements(encodings)
