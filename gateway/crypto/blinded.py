"""Blinded matching mode: the VOPRF roles of a responder (bank, carrier) and a querier (police).

This is the API the rest of the project uses instead of `oprf` and `group`: wire values are
bytes, every received element and proof is validated before use, keys and blinds never show in
a repr, and a querier gets no output unless the batch proof verifies against the responder's
published key. It always runs RFC 9497 VOPRF (mode 1), as ARCHITECTURE.md asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from gateway.crypto import group, oprf
from gateway.crypto.group import Element, GroupError, InvalidElement, InvalidScalar, Scalar
from gateway.crypto.oprf import InvalidInputError, OprfError, VerifyError

__all__ = [
    "MAX_BATCH",
    "OUTPUT_LENGTH",
    "BlindedBatch",
    "GroupError",
    "InvalidElement",
    "InvalidInputError",
    "InvalidScalar",
    "OprfClient",
    "OprfError",
    "OprfServer",
    "VerifyError",
]

MODE: Final = oprf.Mode.VOPRF
OUTPUT_LENGTH: Final = oprf.HASH_LENGTH
"""Bytes in one OPRF output F_k(x)."""
MAX_BATCH: Final = 0xFFFF
"""Most inputs one batch (and so one proof) may carry: the RFC frames the index in two bytes."""


class OprfServer:
    """The key holder: answers batches of blinded elements with evaluations and one proof."""

    __slots__ = ("_pk", "_sk")

    def __init__(self, private_key: bytes) -> None:
        """`private_key` is a canonical non-zero 32-byte scalar (`private_key_bytes()`)."""
        sk = group.deserialize_scalar(private_key)
        if group.scalar_is_zero(sk):
            raise InvalidScalar("a private key must not be zero")
        self._sk = sk
        self._pk = group.scalar_mult_base(sk)

    @classmethod
    def generate(cls) -> OprfServer:
        """A server with a fresh random key."""
        private_key, _ = oprf.generate_key_pair()
        return cls(private_key)

    @classmethod
    def derive(cls, seed: bytes, info: bytes) -> OprfServer:
        """A server with the key DeriveKeyPair(seed, info) gives (seed: 32 secret bytes)."""
        sk, _ = oprf.derive_key_pair(seed, info, MODE)
        return cls(group.serialize_scalar(sk))

    @property
    def public_key(self) -> bytes:
        """pkS, as published in the membership directory."""
        return group.serialize_element(self._pk)

    def private_key_bytes(self) -> bytes:
        """skS, for the node's key store; handle as a secret."""
        return group.serialize_scalar(self._sk)

    def blind_evaluate_batch(
        self, blinded_elements: Sequence[bytes], *, workers: int = 1
    ) -> tuple[list[bytes], bytes]:
        """(evaluated elements, proof) for a querier's batch; one proof covers the batch.

        Raises `InvalidElement` if any blinded element is malformed or the identity, and
        `InvalidInputError` for an empty batch or one over 65535 elements.
        """
        blinded = group.deserialize_elements(blinded_elements)
        evaluated, proof = oprf.voprf_blind_evaluate(self._sk, self._pk, blinded, workers=workers)
        return group.serialize_elements(evaluated), proof.serialize()

    def evaluate(self, inputs: Sequence[bytes], *, workers: int = 1) -> list[bytes]:
        """F_k(x) for each canonical input, computed directly: for building the match index."""
        return oprf.evaluate(self._sk, inputs, MODE, workers=workers)

    def __repr__(self) -> str:
        return "OprfServer(<redacted>)"


class BlindedBatch:
    """A querier's pending batch: the inputs and blinds stay local, `blinded_elements` is sent.

    Holds identifiers and secrets, so its repr shows neither.
    """

    __slots__ = ("_blinded", "_blinds", "_inputs")

    def __init__(
        self, inputs: Sequence[bytes], blinds: Sequence[Scalar], blinded: Sequence[Element]
    ) -> None:
        self._inputs = tuple(inputs)
        self._blinds = tuple(blinds)
        self._blinded = tuple(blinded)

    @property
    def blinded_elements(self) -> list[bytes]:
        """The 32-byte blinded elements to send to the responder, in input order."""
        return group.serialize_elements(self._blinded)

    def __len__(self) -> int:
        return len(self._inputs)

    def __repr__(self) -> str:
        return f"BlindedBatch(<{len(self._inputs)} inputs>)"


class OprfClient:
    """The querier, bound to one responder's public key from the membership directory."""

    __slots__ = ("_pk",)

    def __init__(self, public_key: bytes) -> None:
        self._pk = group.deserialize_element(public_key)

    def blind(self, inputs: Sequence[bytes]) -> BlindedBatch:
        """Blind canonical inputs under fresh random blinds.

        Refuses an empty or oversized batch here, before anything is sent: one proof covers
        1 to 65535 elements.
        """
        if not 1 <= len(inputs) <= MAX_BATCH:
            raise InvalidInputError("a batch holds 1 to 65535 inputs")
        blinds, blinded = oprf.blind(inputs, MODE)
        return BlindedBatch(inputs, blinds, blinded)

    def finalize(
        self, batch: BlindedBatch, evaluated_elements: Sequence[bytes], proof: bytes
    ) -> list[bytes]:
        """The outputs F_k(x), in input order, once the responder's proof has verified.

        Raises `InvalidElement` for a malformed evaluation, `VerifyError` if the proof is
        malformed, does not verify, or the evaluations do not match the batch.
        """
        if len(evaluated_elements) != len(batch):
            raise VerifyError("the response does not answer the batch that was sent")
        evaluated = group.deserialize_elements(evaluated_elements)
        try:
            parsed_proof = oprf.Proof.deserialize(proof)
        except InvalidScalar as exc:
            raise VerifyError("the proof is malformed") from exc
        return oprf.voprf_finalize(
            batch._inputs, batch._blinds, evaluated, batch._blinded, self._pk, parsed_proof
        )

    def __repr__(self) -> str:
        return "OprfClient()"
