"""Verification of RFC 9162 inclusion and consistency proofs (sections 2.1.3.2, 2.1.4.2).

This is what a client of the audit log runs, so it stands alone (hashlib only) and
follows the RFC's steps literally, in the manner of transparency-dev/merkle
proof/verify.go. Every failure raises `ProofError` saying which check failed, so an
operator can tell a truncated proof from a forked log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "ProofError",
    "consistency_proof_size",
    "inclusion_proof_size",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
]

_HASH_SIZE = 32


class ProofError(ValueError):
    """A Merkle proof did not verify; the message names the failed check."""


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != _HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, want {_HASH_SIZE}")


def _check_hashes(proof: Sequence[bytes]) -> None:
    for i, p in enumerate(proof):
        _check_hash(p, f"proof[{i}]")


def _decompose(index: int, size: int) -> tuple[int, int]:
    """Split PATH(index, D[size]) into (inner, border) hash counts.

    ``inner`` levels lie below the point where the paths to ``index`` and to the
    last leaf diverge; ``border`` are the left siblings above it.
    """
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def inclusion_proof_size(index: int, size: int) -> int:
    """Number of hashes in a valid inclusion proof for ``index`` in a tree of ``size``."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not below tree size {size}")
    inner, border = _decompose(index, size)
    return inner + border


def consistency_proof_size(size1: int, size2: int) -> int:
    """Number of hashes in a valid consistency proof for ``0 < size1 < size2``."""
    if not 0 < size1 < size2:
        raise ProofError(f"no consistency proof has sizes {size1} and {size2}")
    inner, border = _decompose(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1  # trailing zero bits of size1
    # The proof starts with the hash of the subtree of size 2**shift holding leaf
    # size1-1, unless that subtree is the whole old tree (size1 a power of two):
    # then the verifier already has it as root1.
    seed = 0 if size1 == 1 << shift else 1
    return seed + inner - shift + border


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """The root implied by an inclusion proof: RFC 9162 2.1.3.2 steps 1-4."""
    # Step 1: the leaf must be inside the tree.
    if index < 0 or size < 0:
        raise ProofError(f"negative leaf index or tree size ({index}, {size})")
    if index >= size:
        raise ProofError(f"leaf index {index} is not below tree size {size}")
    _check_hash(leaf_hash, "leaf hash")
    want = inclusion_proof_size(index, size)
    if len(proof) != want:
        raise ProofError(
            f"inclusion proof has {len(proof)} hashes, want {want} "
            f"for leaf {index} in a tree of size {size}"
        )
    _check_hashes(proof)
    # Steps 2-4.
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = _node(r, p)
        fn, sn = fn >> 1, sn >> 1
    # Step 5 (first half): the path must have reached the root.
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the path to the root")
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` with ``root``.

    Raises `ProofError` on any failure; returns None on success.
    """
    calculated = root_from_inclusion_proof(leaf_hash, index, size, proof)
    _check_hash(root, "root hash")
    if calculated != root:
        raise ProofError(
            f"inclusion proof for leaf {index} in a tree of size {size} "
            "does not lead to the expected root hash"
        )


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of ``size1`` with ``root1`` is a prefix of the one of ``size2``.

    RFC 9162 2.1.4.2. Raises `ProofError` on any failure; returns None on success.
    """
    if size1 < 0 or size2 < 0:
        raise ProofError(f"negative tree size ({size1}, {size2})")
    if size1 > size2:
        raise ProofError(f"size1 ({size1}) is greater than size2 ({size2})")
    if size1 == 0:
        # Decided here: consistency from size 0 is rejected, not vacuously accepted.
        # The empty tree is a prefix of every tree, so such a "proof" proves nothing,
        # and the newest reference (transparency-dev/merkle) treats the request as
        # meaningless. Callers for whom an empty old tree is normal (e.g. a witness
        # seeing a log for the first time) must handle size 0 themselves.
        raise ProofError("consistency from tree size 0 is meaningless and is not accepted")
    if size1 == size2:
        if proof:
            raise ProofError(f"sizes are equal ({size1}) but the proof is not empty")
        # Only equality matters here; the reference applies no length check either.
        if root1 != root2:
            raise ProofError(f"sizes are equal ({size1}) but the root hashes differ")
        return
    # Step 1.
    if not proof:
        raise ProofError(f"empty consistency proof from size {size1} to size {size2}")
    want = consistency_proof_size(size1, size2)
    if len(proof) != want:
        raise ProofError(
            f"consistency proof has {len(proof)} hashes, want {want} "
            f"from size {size1} to size {size2}"
        )
    _check_hash(root1, "root1")
    _check_hash(root2, "root2")
    _check_hashes(proof)
    # Step 2: a power-of-two old tree is itself the first node of the path.
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    # Steps 3-4.
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            fr = _node(c, fr)
            sr = _node(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = _node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    # Step 7.
    if sn != 0:
        raise ProofError("consistency proof is shorter than the path to the root")
    if fr != root1:
        raise ProofError(f"consistency proof does not reproduce root1 (the size-{size1} root)")
    if sr != root2:
        raise ProofError(f"consistency proof does not reproduce root2 (the size-{size2} root)")
