"""Fenced ristretto255 primitives: the crypto package's "hazmat" layer.

All group arithmetic comes from libsodium through rbcl, and this is the only module that imports
rbcl. What can go wrong at the primitive level -- accepting a non-canonical or identity encoding,
an unreduced scalar, an error message that echoes identifying or secret bytes -- is decided here,
once. The protocol modules (oprf, psi, blinded) build on the typed `Element` and `Scalar` below;
code outside gateway.crypto uses those modules, not this one.

Hashing follows RFC 9380: expand_message_xmd with SHA-512 to 64 uniform bytes, then the
ristretto255 one-way map (libsodium's from_hash) for elements, or reduction modulo the group
order for scalars.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Final, TypeVar, final

import rbcl

ELEMENT_LENGTH: Final = 32
SCALAR_LENGTH: Final = 32
UNIFORM_LENGTH: Final = 64
ORDER: Final = 2**252 + 27742317777372353535851937790883648493
"""Order of the ristretto255 group (the prime l of RFC 9496)."""

_ZERO: Final = bytes(32)
_ONE: Final = (1).to_bytes(SCALAR_LENGTH, "little")
_SHA512_BLOCK: Final = 128
_SHA512_LENGTH: Final = 64
_Z_PAD: Final = bytes(_SHA512_BLOCK)
_MIN_CHUNK: Final = 64
"""Fewest elements worth handing to a thread of their own."""

_T = TypeVar("_T")
_R = TypeVar("_R")


class GroupError(ValueError):
    """A value is not acceptable as a group element or scalar.

    Messages are fixed strings: they never contain the offending bytes, which may be a blinded
    identifier or key material.
    """


class InvalidElement(GroupError):
    """Bytes are not the canonical encoding of a non-identity ristretto255 element."""


class InvalidScalar(GroupError):
    """Bytes are not a canonical scalar, or a scalar is unusable (zero has no inverse)."""


@final
class Element:
    """A ristretto255 group element, held as its canonical 32-byte encoding.

    There is no public constructor: an Element comes from `deserialize_element` (which
    validates) or from a group operation, so unchecked bytes never become one. The identity
    can be an intermediate result (P - P, or a sum in a proof) but never deserializes.
    """

    __slots__ = ("_encoding",)
    _encoding: bytes

    def __init__(self) -> None:
        raise TypeError("an Element comes from deserialize_element() or a group operation")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Element is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Element is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Element):
            return NotImplemented
        return hmac.compare_digest(self._encoding, other._encoding)

    def __hash__(self) -> int:
        return hash(self._encoding)

    def __repr__(self) -> str:
        return "Element(<redacted>)"


@final
class Scalar:
    """An integer modulo ORDER, held as its canonical 32-byte little-endian encoding.

    Often secret (keys, blinds, proof nonces): equality is constant-time and the repr never
    shows the value. There is no public constructor, as for `Element`.
    """

    __slots__ = ("_encoding",)
    _encoding: bytes

    def __init__(self) -> None:
        raise TypeError("a Scalar comes from deserialize_scalar() or a scalar operation")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Scalar is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Scalar is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Scalar):
            return NotImplemented
        return hmac.compare_digest(self._encoding, other._encoding)

    def __hash__(self) -> int:
        return hash(self._encoding)

    def __repr__(self) -> str:
        return "Scalar(<redacted>)"


def _element(encoding: bytes) -> Element:
    element = object.__new__(Element)
    object.__setattr__(element, "_encoding", encoding)
    return element


def _scalar(encoding: bytes) -> Scalar:
    scalar = object.__new__(Scalar)
    object.__setattr__(scalar, "_encoding", encoding)
    return scalar


_IDENTITY: Final = _element(_ZERO)
_GENERATOR: Final = _element(bytes(rbcl.crypto_scalarmult_ristretto255_base(_ONE)))


# --- hashing (RFC 9380) ---------------------------------------------------------------------


def expand_message_xmd(msg: bytes, dst: bytes, length: int) -> bytes:
    """expand_message_xmd (RFC 9380, section 5.3.1) with H = SHA-512.

    DSTs longer than 255 bytes are refused rather than hashed (section 5.3.3): the project's
    DSTs are fixed and short. The 64 bytes every hash to the group or to a scalar asks for
    are one block (ell = 1), taken without the loop: an index build hashes every record.
    """
    if not 1 <= len(dst) <= 255:
        raise ValueError("DST must be 1 to 255 bytes")
    ell = -(-length // _SHA512_LENGTH)
    if length < 1 or length > 0xFFFF or ell > 255:
        raise ValueError("expand_message_xmd output length out of range")
    dst_prime = dst + len(dst).to_bytes(1, "big")
    b_0 = hashlib.sha512(_Z_PAD + msg + length.to_bytes(2, "big") + b"\x00" + dst_prime).digest()
    b_i = hashlib.sha512(b_0 + b"\x01" + dst_prime).digest()
    if ell == 1:
        return b_i[:length]
    blocks = [b_i]
    b_0_int = int.from_bytes(b_0, "big")
    for i in range(2, ell + 1):
        mixed = (b_0_int ^ int.from_bytes(b_i, "big")).to_bytes(_SHA512_LENGTH, "big")
        b_i = hashlib.sha512(mixed + i.to_bytes(1, "big") + dst_prime).digest()
        blocks.append(b_i)
    return b"".join(blocks)[:length]


def hash_to_group(msg: bytes, dst: bytes) -> Element:
    """hash_to_ristretto255 (RFC 9380 appendix B): expand to 64 bytes, then the one-way map.

    The result is the identity only with negligible probability; protocols that must refuse
    it (RFC 9497 Blind) check `is_identity` themselves.
    """
    uniform = expand_message_xmd(msg, dst, UNIFORM_LENGTH)
    return _element(bytes(rbcl.crypto_core_ristretto255_from_hash(uniform)))


def hash_to_group_many(msgs: Iterable[bytes], dst: bytes) -> list[Element]:
    """`hash_to_group` over many messages with one DST."""
    return [hash_to_group(msg, dst) for msg in msgs]


def hash_to_scalar(msg: bytes, dst: bytes) -> Scalar:
    """64 bytes of expand_message_xmd read little-endian and reduced modulo ORDER."""
    uniform = expand_message_xmd(msg, dst, UNIFORM_LENGTH)
    return _scalar(bytes(rbcl.crypto_core_ristretto255_scalar_reduce(uniform)))


# --- scalars --------------------------------------------------------------------------------


def random_scalar() -> Scalar:
    """A uniformly random non-zero scalar from libsodium's CSPRNG."""
    while True:
        scalar = _scalar(bytes(rbcl.crypto_core_ristretto255_scalar_random()))
        if not scalar_is_zero(scalar):
            return scalar


def scalar_is_zero(a: Scalar) -> bool:
    """Constant-time test for the zero scalar."""
    return hmac.compare_digest(a._encoding, _ZERO)


def scalar_add(a: Scalar, b: Scalar) -> Scalar:
    return _scalar(bytes(rbcl.crypto_core_ristretto255_scalar_add(a._encoding, b._encoding)))


def scalar_sub(a: Scalar, b: Scalar) -> Scalar:
    return _scalar(bytes(rbcl.crypto_core_ristretto255_scalar_sub(a._encoding, b._encoding)))


def scalar_mul(a: Scalar, b: Scalar) -> Scalar:
    return _scalar(bytes(rbcl.crypto_core_ristretto255_scalar_mul(a._encoding, b._encoding)))


def scalar_invert(a: Scalar) -> Scalar:
    """The multiplicative inverse modulo ORDER; `InvalidScalar` for zero."""
    if scalar_is_zero(a):
        raise InvalidScalar("the zero scalar has no inverse")
    return _scalar(bytes(rbcl.crypto_core_ristretto255_scalar_invert(a._encoding)))


def serialize_scalar(a: Scalar) -> bytes:
    return a._encoding


def deserialize_scalar(data: bytes) -> Scalar:
    """Canonical 32-byte little-endian scalar; values >= ORDER are refused, zero is allowed."""
    if not isinstance(data, bytes):
        raise TypeError("a scalar encoding must be bytes")
    if len(data) != SCALAR_LENGTH:
        raise InvalidScalar("a scalar encoding must be 32 bytes")
    reduced = bytes(rbcl.crypto_core_ristretto255_scalar_reduce(data + _ZERO))
    if not hmac.compare_digest(reduced, data):
        raise InvalidScalar("scalar encoding is not canonical (not below the group order)")
    return _scalar(data)


# --- elements -------------------------------------------------------------------------------


def identity() -> Element:
    return _IDENTITY


def generator() -> Element:
    return _GENERATOR


def is_identity(a: Element) -> bool:
    return hmac.compare_digest(a._encoding, _ZERO)


def element_add(a: Element, b: Element) -> Element:
    return _element(bytes(rbcl.crypto_core_ristretto255_add(a._encoding, b._encoding)))


def element_sub(a: Element, b: Element) -> Element:
    return _element(bytes(rbcl.crypto_core_ristretto255_sub(a._encoding, b._encoding)))


def _mult(scalar: bytes, element: bytes) -> Element:
    try:
        return _element(bytes(rbcl.crypto_scalarmult_ristretto255(scalar, element)))
    except RuntimeError:
        # libsodium refuses to output the identity (zero scalar or identity element); the
        # element was validated when it became an Element, so that is the only cause.
        return _IDENTITY


def scalar_mult(scalar: Scalar, element: Element) -> Element:
    """[scalar]element; the identity if either is zero."""
    return _mult(scalar._encoding, element._encoding)


def scalar_mult_base(scalar: Scalar) -> Element:
    """[scalar]G for the standard generator; the identity for the zero scalar."""
    try:
        return _element(bytes(rbcl.crypto_scalarmult_ristretto255_base(scalar._encoding)))
    except RuntimeError:
        return _IDENTITY


def _chunks(items: Sequence[_T], workers: int) -> list[Sequence[_T]]:
    if workers < 1:
        raise ValueError("workers must be at least 1")
    if not items:
        return [items]
    count = max(1, min(workers, len(items) // _MIN_CHUNK))
    size = -(-len(items) // count)
    return [items[i : i + size] for i in range(0, len(items), size)]


def _run_chunks(work: Callable[[Sequence[_T]], _R], items: Sequence[_T], workers: int) -> list[_R]:
    """Apply `work` to contiguous chunks of `items`, in threads when there is more than one.

    rbcl calls libsodium through ctypes, which releases the GIL for the duration of each call,
    so threads run scalar multiplications in parallel without copying keys to other processes.
    """
    chunks = _chunks(items, workers)
    if len(chunks) == 1:
        return [work(chunks[0])]
    with ThreadPoolExecutor(max_workers=len(chunks), thread_name_prefix="ristretto") as pool:
        return list(pool.map(work, chunks))


def scalar_mult_many(
    scalar: Scalar, elements: Sequence[Element], *, workers: int = 1
) -> list[Element]:
    """[scalar]E for each E, in order, over up to `workers` threads."""
    key = scalar._encoding

    def work(chunk: Sequence[Element]) -> list[Element]:
        return [_mult(key, element._encoding) for element in chunk]

    return [result for part in _run_chunks(work, elements, workers) for result in part]


def _mult_received(scalar: bytes, data: bytes) -> Element:
    _check_encoding_shape(data)
    try:
        return _element(bytes(rbcl.crypto_scalarmult_ristretto255(scalar, data)))
    except RuntimeError:
        # libsodium decodes the point first and refuses a non-canonical encoding or one
        # that is not a point; with a non-zero scalar and a valid non-identity point the
        # product is never the identity, so a refusal here always means a bad encoding.
        raise InvalidElement("not a canonical ristretto255 element encoding") from None


def scalar_mult_received(
    scalar: Scalar, encodings: Sequence[bytes], *, workers: int = 1
) -> list[Element]:
    """[scalar]E for each received encoding of E, validating E in the same step.

    For encodings that are only ever raised to a key (a peer's masked PSI elements):
    `deserialize_element` then `scalar_mult` would decode each point three times (the
    validity check, the re-encoding check, the multiplication); here libsodium's own
    decoding inside the multiplication does the canonical check, after the length,
    identity and top-bit checks that `deserialize_element` also makes. Raises
    `InvalidElement` (never echoing the input) on the first bad encoding.
    """
    if scalar_is_zero(scalar):
        raise ValueError("the scalar must not be zero")
    key = scalar._encoding

    def work(chunk: Sequence[bytes]) -> list[Element]:
        return [_mult_received(key, data) for data in chunk]

    return [result for part in _run_chunks(work, encodings, workers) for result in part]


def multi_scalar_mult(
    scalars: Sequence[Scalar], elements: Sequence[Element], *, workers: int = 1
) -> Element:
    """The sum of [scalars[i]]elements[i] (the identity for empty input)."""
    pairs = list(zip(scalars, elements, strict=True))

    def work(chunk: Sequence[tuple[Scalar, Element]]) -> Element:
        total = _IDENTITY
        for scalar, element in chunk:
            total = element_add(total, scalar_mult(scalar, element))
        return total

    total = _IDENTITY
    for partial in _run_chunks(work, pairs, workers):
        total = element_add(total, partial)
    return total


def serialize_element(a: Element) -> bytes:
    return a._encoding


def _check_encoding_shape(data: bytes) -> None:
    """The checks that need no decoding: type, length, identity, top bit."""
    if not isinstance(data, bytes):
        raise TypeError("an element encoding must be bytes")
    if len(data) != ELEMENT_LENGTH:
        raise InvalidElement("an element encoding must be 32 bytes")
    if hmac.compare_digest(data, _ZERO):
        raise InvalidElement("the identity element is not accepted")
    if data[31] & 0x80:
        # s >= 2^255 > p is never canonical (RFC 9496, section 4.3.1), but the libsodium that
        # rbcl bundles (1.0.18) ignores the top bit: it would decode such bytes to the same
        # element as its canonical encoding, giving every element a second encoding.
        raise InvalidElement("not a canonical ristretto255 element encoding")


def deserialize_element(data: bytes) -> Element:
    """A validated element: canonical ristretto255 encoding, not the identity.

    Raises `InvalidElement` with a fixed message (the input is never echoed).
    """
    _check_encoding_shape(data)
    if not rbcl.crypto_core_ristretto255_is_valid_point(data):
        raise InvalidElement("not a canonical ristretto255 element encoding")
    # Defence in depth against any other lenient decoding: a canonical encoding is exactly
    # what the library encodes the decoded element back to (adding the identity re-encodes).
    if not hmac.compare_digest(bytes(rbcl.crypto_core_ristretto255_add(data, _ZERO)), data):
        raise InvalidElement("not a canonical ristretto255 element encoding")
    return _element(data)


def deserialize_elements(data: Iterable[bytes]) -> list[Element]:
    """`deserialize_element` over many encodings; the first invalid one raises."""
    return [deserialize_element(item) for item in data]


def serialize_elements(elements: Iterable[Element]) -> list[bytes]:
    return [element._encoding for element in elements]
