"""RFC 9497 oblivious PRFs, suite ristretto255-SHA512: OPRF (mode 0), VOPRF (1), POPRF (2).

A querier learns F_k(x) for its own x only; in the verifiable modes it also checks a DLEQ proof
that the responder used the key it published. Names follow the RFC's procedures
(contextString -> context_string, DeriveKeyPair -> derive_key_pair, BlindEvaluate ->
*_blind_evaluate, ...) so the file reads side by side with the RFC. Every procedure takes a batch:
a batch of one is the RFC's single-input procedure, and a larger batch carries ONE proof, as in
the RFC's batched test vectors. Randomness (blinds, proof nonce r) can be injected, for the test
vectors only. Wire encoding and key handling for the rest of the project live in `blinded`.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from gateway.crypto import group
from gateway.crypto.group import Element, Scalar

SUITE_ID: Final = b"ristretto255-SHA512"
HASH_LENGTH: Final = 64
"""Nh: the length of an output."""
SEED_LENGTH: Final = 32
"""Ns: the length of a DeriveKeyPair seed."""
PROOF_LENGTH: Final = 2 * group.SCALAR_LENGTH
_MAX_LENGTH: Final = 0xFFFF


class Mode(IntEnum):
    OPRF = 0
    VOPRF = 1
    POPRF = 2


class OprfError(Exception):
    """Base of the RFC 9497 errors. Messages never contain inputs, elements or keys."""


class InvalidInputError(OprfError, ValueError):
    """An input cannot be evaluated (too long, maps to the identity, mismatched batch)."""


class VerifyError(OprfError):
    """The DLEQ proof does not verify: the evaluations were not made with the expected key."""


class DeriveKeyPairError(OprfError):
    """DeriveKeyPair found no non-zero key within 256 attempts."""


class InverseError(OprfError):
    """POPRF: the private key plus the info tweak is zero."""


@dataclass(frozen=True, slots=True)
class Proof:
    """A DLEQ proof (c, s), serialized as SerializeScalar(c) || SerializeScalar(s)."""

    c: Scalar
    s: Scalar

    def serialize(self) -> bytes:
        return group.serialize_scalar(self.c) + group.serialize_scalar(self.s)

    @classmethod
    def deserialize(cls, data: bytes) -> Proof:
        """Raises `group.InvalidScalar` unless both halves are canonical scalars."""
        if len(data) != PROOF_LENGTH:
            raise group.InvalidScalar("a proof must be 64 bytes")
        half = group.SCALAR_LENGTH
        return cls(group.deserialize_scalar(data[:half]), group.deserialize_scalar(data[half:]))


def _i2osp2(value: int) -> bytes:
    if not 0 <= value <= _MAX_LENGTH:
        raise InvalidInputError("a length or index does not fit in two bytes")
    return value.to_bytes(2, "big")


def _prefixed(data: bytes) -> bytes:
    """I2OSP(len(data), 2) || data."""
    return _i2osp2(len(data)) + data


@functools.cache
def context_string(mode: Mode) -> bytes:
    """contextString = "OPRFV1-" || I2OSP(mode, 1) || "-" || identifier (section 3.1)."""
    return b"OPRFV1-" + bytes([mode]) + b"-" + SUITE_ID


_HASH_TO_GROUP_DST: Final = {mode: b"HashToGroup-" + context_string(mode) for mode in Mode}
"""Per mode, built once: the evaluation of every input of an index build hashes with it."""


def hash_to_group(input_: bytes, mode: Mode) -> Element:
    """G.HashToGroup with DST "HashToGroup-" || contextString (section 4.1)."""
    return group.hash_to_group(input_, _HASH_TO_GROUP_DST[mode])


def hash_to_scalar(msg: bytes, mode: Mode, dst: bytes | None = None) -> Scalar:
    """G.HashToScalar; the DST defaults to "HashToScalar-" || contextString (section 4.1)."""
    if dst is None:
        dst = b"HashToScalar-" + context_string(mode)
    return group.hash_to_scalar(msg, dst)


def generate_key_pair() -> tuple[bytes, bytes]:
    """GenerateKeyPair() (section 3.2): a random (skS, pkS), as their 32-byte encodings.

    Bytes rather than Scalar/Element because the pair goes straight to a key store and the
    membership directory; `blinded.OprfServer` and `blinded.OprfClient` take them back.
    """
    sk = group.random_scalar()
    return group.serialize_scalar(sk), group.serialize_element(group.scalar_mult_base(sk))


def derive_key_pair(seed: bytes, info: bytes, mode: Mode) -> tuple[Scalar, Element]:
    """DeriveKeyPair(seed, info) (section 3.2.1): (skS, pkS)."""
    if len(seed) != SEED_LENGTH:
        raise InvalidInputError("the seed must be 32 bytes")
    derive_input = seed + _prefixed(info)
    dst = b"DeriveKeyPair" + context_string(mode)
    for counter in range(256):
        sk = hash_to_scalar(derive_input + bytes([counter]), mode, dst)
        if not group.scalar_is_zero(sk):
            return sk, group.scalar_mult_base(sk)
    raise DeriveKeyPairError("no usable key after 256 attempts")


# --- DLEQ proofs (section 2.2) --------------------------------------------------------------


def _composite_weights(
    B: Element, C: Sequence[Element], D: Sequence[Element], mode: Mode
) -> list[Scalar]:
    """The d_i of ComputeComposites, shared by the fast (prover) and full (verifier) forms."""
    if len(C) != len(D):
        raise InvalidInputError("a proof covers as many evaluated as blinded elements")
    if not 1 <= len(C) <= _MAX_LENGTH:
        raise InvalidInputError("a proof covers 1 to 65535 elements")
    seed_dst = b"Seed-" + context_string(mode)
    seed_transcript = _prefixed(group.serialize_element(B)) + _prefixed(seed_dst)
    seed_prefix = _prefixed(hashlib.sha512(seed_transcript).digest())
    return [
        hash_to_scalar(
            seed_prefix
            + _i2osp2(i)
            + _prefixed(group.serialize_element(c_i))
            + _prefixed(group.serialize_element(d_i))
            + b"Composite",
            mode,
        )
        for i, (c_i, d_i) in enumerate(zip(C, D, strict=True))
    ]


def compute_composites(
    B: Element, C: Sequence[Element], D: Sequence[Element], mode: Mode, *, workers: int = 1
) -> tuple[Element, Element]:
    """ComputeComposites(B, C, D): (M, Z), for a verifier who does not know k."""
    weights = _composite_weights(B, C, D, mode)
    M = group.multi_scalar_mult(weights, C, workers=workers)
    Z = group.multi_scalar_mult(weights, D, workers=workers)
    return M, Z


def compute_composites_fast(
    k: Scalar,
    B: Element,
    C: Sequence[Element],
    D: Sequence[Element],
    mode: Mode,
    *,
    workers: int = 1,
) -> tuple[Element, Element]:
    """ComputeCompositesFast(k, B, C, D): (M, Z = k*M), for the prover who knows k."""
    M = group.multi_scalar_mult(_composite_weights(B, C, D, mode), C, workers=workers)
    return M, group.scalar_mult(k, M)


def _times(scalar: Scalar, A: Element) -> Element:
    if group.generator() == A:
        return group.scalar_mult_base(scalar)
    return group.scalar_mult(scalar, A)


def _challenge(B: Element, M: Element, Z: Element, t2: Element, t3: Element, mode: Mode) -> Scalar:
    transcript = b"".join(
        _prefixed(group.serialize_element(element)) for element in (B, M, Z, t2, t3)
    )
    return hash_to_scalar(transcript + b"Challenge", mode)


def generate_proof(
    k: Scalar,
    A: Element,
    B: Element,
    C: Sequence[Element],
    D: Sequence[Element],
    mode: Mode,
    *,
    r: Scalar | None = None,
    workers: int = 1,
) -> Proof:
    """GenerateProof(k, A, B, C, D): proves B = k*A and D[i] = k*C[i] for all i at once."""
    M, Z = compute_composites_fast(k, B, C, D, mode, workers=workers)
    if r is None:
        r = group.random_scalar()
    t2 = _times(r, A)
    t3 = group.scalar_mult(r, M)
    c = _challenge(B, M, Z, t2, t3, mode)
    s = group.scalar_sub(r, group.scalar_mul(c, k))
    return Proof(c, s)


def verify_proof(
    A: Element,
    B: Element,
    C: Sequence[Element],
    D: Sequence[Element],
    proof: Proof,
    mode: Mode,
    *,
    workers: int = 1,
) -> bool:
    """VerifyProof(A, B, C, D, proof)."""
    M, Z = compute_composites(B, C, D, mode, workers=workers)
    t2 = group.element_add(_times(proof.s, A), group.scalar_mult(proof.c, B))
    t3 = group.element_add(group.scalar_mult(proof.s, M), group.scalar_mult(proof.c, Z))
    return _challenge(B, M, Z, t2, t3, mode) == proof.c


# --- shared steps ---------------------------------------------------------------------------


def _input_elements(inputs: Sequence[bytes], mode: Mode) -> list[Element]:
    elements = []
    for input_ in inputs:
        if len(input_) > _MAX_LENGTH:
            raise InvalidInputError("an input is longer than 65535 bytes")
        element = hash_to_group(input_, mode)
        if group.is_identity(element):
            raise InvalidInputError("an input maps to the identity element")
        elements.append(element)
    return elements


def _blind_elements(
    elements: Sequence[Element], blinds: Sequence[Scalar] | None
) -> tuple[list[Scalar], list[Element]]:
    if blinds is None:
        blinds = [group.random_scalar() for _ in elements]
    elif len(blinds) != len(elements):
        raise InvalidInputError("one blind per input is needed")
    elif any(group.scalar_is_zero(b) for b in blinds):
        # A zero blind would send the identity and could never be unblinded.
        raise InvalidInputError("a blind must not be zero")
    blinded = [group.scalar_mult(b, e) for b, e in zip(blinds, elements, strict=True)]
    return list(blinds), blinded


def _finalize_hash(input_: bytes, info: bytes | None, element: Element) -> bytes:
    """Hash(I2OSP(len(input), 2) || input [|| I2OSP(len(info), 2) || info]
    || I2OSP(len(element), 2) || element || "Finalize")."""
    framed_info = b"" if info is None else _prefixed(info)
    hash_input = (
        _prefixed(input_) + framed_info + _prefixed(group.serialize_element(element)) + b"Finalize"
    )
    return hashlib.sha512(hash_input).digest()


def _unblind(
    inputs: Sequence[bytes],
    blinds: Sequence[Scalar],
    evaluated_elements: Sequence[Element],
    info: bytes | None,
) -> list[bytes]:
    if not len(inputs) == len(blinds) == len(evaluated_elements):
        raise InvalidInputError("inputs, blinds and evaluations must pair up")
    return [
        _finalize_hash(input_, info, group.scalar_mult(group.scalar_invert(blind), evaluated))
        for input_, blind, evaluated in zip(inputs, blinds, evaluated_elements, strict=True)
    ]


def _check_mode(mode: Mode) -> None:
    if mode not in (Mode.OPRF, Mode.VOPRF):
        raise ValueError("this procedure is for the OPRF and VOPRF modes; see poprf_*")


# --- OPRF (mode 0) and VOPRF (mode 1), sections 3.3.1 and 3.3.2 ------------------------------


def blind(
    inputs: Sequence[bytes], mode: Mode, *, blinds: Sequence[Scalar] | None = None
) -> tuple[list[Scalar], list[Element]]:
    """Blind(input) for each input: (blinds, blindedElements)."""
    _check_mode(mode)
    return _blind_elements(_input_elements(inputs, mode), blinds)


def oprf_blind_evaluate(
    sk: Scalar, blinded_elements: Sequence[Element], *, workers: int = 1
) -> list[Element]:
    """OPRF BlindEvaluate(skS, blindedElement) for each element; no proof."""
    return group.scalar_mult_many(sk, blinded_elements, workers=workers)


def oprf_finalize(
    inputs: Sequence[bytes], blinds: Sequence[Scalar], evaluated_elements: Sequence[Element]
) -> list[bytes]:
    """OPRF Finalize(input, blind, evaluatedElement) for each input."""
    return _unblind(inputs, blinds, evaluated_elements, None)


def voprf_blind_evaluate(
    sk: Scalar,
    pk: Element,
    blinded_elements: Sequence[Element],
    *,
    r: Scalar | None = None,
    workers: int = 1,
) -> tuple[list[Element], Proof]:
    """VOPRF BlindEvaluate over a batch: the evaluated elements and ONE proof for all."""
    evaluated = group.scalar_mult_many(sk, blinded_elements, workers=workers)
    proof = generate_proof(
        sk, group.generator(), pk, blinded_elements, evaluated, Mode.VOPRF, r=r, workers=workers
    )
    return evaluated, proof


def voprf_finalize(
    inputs: Sequence[bytes],
    blinds: Sequence[Scalar],
    evaluated_elements: Sequence[Element],
    blinded_elements: Sequence[Element],
    pk: Element,
    proof: Proof,
) -> list[bytes]:
    """VOPRF Finalize over a batch; raises `VerifyError` before unblinding if the proof fails."""
    if not verify_proof(
        group.generator(), pk, blinded_elements, evaluated_elements, proof, Mode.VOPRF
    ):
        raise VerifyError("the evaluation proof does not verify against the public key")
    return _unblind(inputs, blinds, evaluated_elements, None)


def evaluate(sk: Scalar, inputs: Sequence[bytes], mode: Mode, *, workers: int = 1) -> list[bytes]:
    """Evaluate(skS, input) for each input: the server computes outputs without a client."""
    _check_mode(mode)
    elements = group.scalar_mult_many(sk, _input_elements(inputs, mode), workers=workers)
    return [_finalize_hash(x, None, e) for x, e in zip(inputs, elements, strict=True)]


# --- POPRF (mode 2), section 3.3.3 -----------------------------------------------------------


def _info_scalar(info: bytes) -> Scalar:
    return hash_to_scalar(b"Info" + _prefixed(info), Mode.POPRF)


def _tweaked_secret(sk: Scalar, info: bytes) -> Scalar:
    t = group.scalar_add(sk, _info_scalar(info))
    if group.scalar_is_zero(t):
        raise InverseError("the key tweaked by this info is zero")
    return t


def poprf_blind(
    inputs: Sequence[bytes],
    info: bytes,
    pk: Element,
    *,
    blinds: Sequence[Scalar] | None = None,
) -> tuple[list[Scalar], list[Element], Element]:
    """POPRF Blind(input, info, pkS) for each input: (blinds, blindedElements, tweakedKey)."""
    tweaked_key = group.element_add(group.scalar_mult_base(_info_scalar(info)), pk)
    if group.is_identity(tweaked_key):
        raise InvalidInputError("the public key tweaked by this info is the identity")
    blinds_, blinded = _blind_elements(_input_elements(inputs, Mode.POPRF), blinds)
    return blinds_, blinded, tweaked_key


def poprf_blind_evaluate(
    sk: Scalar,
    blinded_elements: Sequence[Element],
    info: bytes,
    *,
    r: Scalar | None = None,
    workers: int = 1,
) -> tuple[list[Element], Proof]:
    """POPRF BlindEvaluate over a batch: evaluations under 1/(skS + m) and ONE proof."""
    t = _tweaked_secret(sk, info)
    evaluated = group.scalar_mult_many(group.scalar_invert(t), blinded_elements, workers=workers)
    tweaked_key = group.scalar_mult_base(t)
    proof = generate_proof(
        t,
        group.generator(),
        tweaked_key,
        evaluated,
        blinded_elements,
        Mode.POPRF,
        r=r,
        workers=workers,
    )
    return evaluated, proof


def poprf_finalize(
    inputs: Sequence[bytes],
    blinds: Sequence[Scalar],
    evaluated_elements: Sequence[Element],
    blinded_elements: Sequence[Element],
    proof: Proof,
    info: bytes,
    tweaked_key: Element,
) -> list[bytes]:
    """POPRF Finalize over a batch; raises `VerifyError` if the proof fails."""
    if not verify_proof(
        group.generator(), tweaked_key, evaluated_elements, blinded_elements, proof, Mode.POPRF
    ):
        raise VerifyError("the evaluation proof does not verify against the tweaked key")
    return _unblind(inputs, blinds, evaluated_elements, info)


def poprf_evaluate(
    sk: Scalar, inputs: Sequence[bytes], info: bytes, *, workers: int = 1
) -> list[bytes]:
    """POPRF Evaluate(skS, input, info) for each input."""
    elements = _input_elements(inputs, Mode.POPRF)
    t_inverse = group.scalar_invert(_tweaked_secret(sk, info))
    evaluated = group.scalar_mult_many(t_inverse, elements, workers=workers)
    return [_finalize_hash(x, info, e) for x, e in zip(inputs, evaluated, strict=True)]
