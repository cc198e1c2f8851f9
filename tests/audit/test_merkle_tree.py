"""`MerkleTree` against a literal transcription of RFC 9162 section 2.1, and round trips.

The reference functions below are the RFC's recursive definitions (MTH, PATH,
PROOF/SUBPROOF) written out with hashlib, sharing nothing with the code under test.
"""

from __future__ import annotations

import hashlib
from functools import cache

import pytest

from gateway.audit.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MerkleTree,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
)
from gateway.audit.proof import (
    ProofError,
    consistency_proof_size,
    inclusion_proof_size,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

MAX_SIZE = 70  # every (index, size) and (size1, size2) pair up to this is checked


def _leaf_data(i: int) -> bytes:
    return f"entry {i}".encode()


LEAF_HASHES = tuple(hashlib.sha256(b"\x00" + _leaf_data(i)).digest() for i in range(MAX_SIZE))


def _k(n: int) -> int:
    """The largest power of two smaller than n (RFC 9162 2.1.1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@cache
def ref_mth(lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) over LEAF_HASHES, recursively as in RFC 9162 2.1.1."""
    n = hi - lo
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return LEAF_HASHES[lo]
    k = _k(n)
    return hashlib.sha256(b"\x01" + ref_mth(lo, lo + k) + ref_mth(lo + k, hi)).digest()


def ref_path(m: int, lo: int, hi: int) -> list[bytes]:
    """PATH(m, D[lo:hi]) from RFC 9162 2.1.3.1."""
    n = hi - lo
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*ref_path(m, lo, lo + k), ref_mth(lo + k, hi)]
    return [*ref_path(m - k, lo + k, hi), ref_mth(lo, lo + k)]


def ref_subproof(m: int, lo: int, hi: int, b: bool) -> list[bytes]:
    """SUBPROOF(m, D[lo:hi], b) from RFC 9162 2.1.4.1."""
    n = hi - lo
    if m == n:
        return [] if b else [ref_mth(lo, hi)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, lo, lo + k, b), ref_mth(lo + k, hi)]
    return [*ref_subproof(m - k, lo + k, hi, False), ref_mth(lo, lo + k)]


def ref_proof(m: int, n: int) -> list[bytes]:
    return ref_subproof(m, 0, n, True)


@pytest.fixture(scope="module")
def tree() -> MerkleTree:
    return MerkleTree(LEAF_HASHES)


def test_hash_functions() -> None:
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    a, b = LEAF_HASHES[0], LEAF_HASHES[1]
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert HASH_SIZE == 32


def test_roots_match_reference(tree: MerkleTree) -> None:
    assert tree.size == len(tree) == MAX_SIZE
    assert MerkleTree().root() == EMPTY_ROOT
    for n in range(MAX_SIZE + 1):
        assert tree.root(n) == ref_mth(0, n), n
        assert root_from_leaf_hashes(LEAF_HASHES[:n]) == ref_mth(0, n), n


def test_append_extend_and_constructor_agree() -> None:
    appended = MerkleTree()
    for i, h in enumerate(LEAF_HASHES):
        assert appended.append(h) == i
        assert appended.root() == ref_mth(0, i + 1)
    chunked = MerkleTree()
    for start in range(0, MAX_SIZE, 7):  # uneven chunks cross subtree boundaries
        chunked.extend(LEAF_HASHES[start : start + 7])
        chunked.extend([])
    whole = MerkleTree(LEAF_HASHES)
    for t in (appended, chunked):
        assert t.size == MAX_SIZE
        assert [t.root(n) for n in range(MAX_SIZE + 1)] == [
            whole.root(n) for n in range(MAX_SIZE + 1)
        ]
        assert [t.leaf(i) for i in range(MAX_SIZE)] == list(LEAF_HASHES)


def test_truncating_gives_the_tree_of_the_first_leaves_and_it_grows_again() -> None:
    for cut in (0, 1, 2, 3, 31, 32, 33, 63, 64, MAX_SIZE):
        t = MerkleTree(LEAF_HASHES)
        t.truncate(cut)
        assert t.size == cut
        assert t.root() == ref_mth(0, cut), cut
        assert [t.root(n) for n in range(cut + 1)] == [ref_mth(0, n) for n in range(cut + 1)]
        t.extend(LEAF_HASHES[cut:])
        assert t.root() == ref_mth(0, MAX_SIZE), cut
        assert t.inclusion_proof(0) == ref_path(0, 0, MAX_SIZE)
    with pytest.raises(ValueError, match="cannot truncate a tree of size 3 to 4"):
        MerkleTree(LEAF_HASHES[:3]).truncate(4)
    with pytest.raises(ValueError, match="to -1"):
        MerkleTree(LEAF_HASHES[:3]).truncate(-1)


def test_inclusion_proofs_match_reference_and_verify(tree: MerkleTree) -> None:
    for n in range(1, MAX_SIZE + 1):
        root = ref_mth(0, n)
        for m in range(n):
            proof = tree.inclusion_proof(m, n)
            assert proof == ref_path(m, 0, n), (m, n)
            assert inclusion_proof_size(m, n) == len(proof)
            verify_inclusion(LEAF_HASHES[m], m, n, proof, root)
            assert root_from_inclusion_proof(LEAF_HASHES[m], m, n, proof) == root
    assert tree.inclusion_proof(3) == ref_path(3, 0, MAX_SIZE)


def test_consistency_proofs_match_reference_and_verify(tree: MerkleTree) -> None:
    for n in range(1, MAX_SIZE + 1):
        for m in range(1, n + 1):
            proof = tree.consistency_proof(m, n)
            assert proof == ref_proof(m, n), (m, n)
            if m < n:
                assert consistency_proof_size(m, n) == len(proof)
            verify_consistency(m, n, proof, ref_mth(0, m), ref_mth(0, n))
    assert tree.consistency_proof(5) == ref_proof(5, MAX_SIZE)


def test_wrong_sizes_with_a_different_proof_shape_fail(tree: MerkleTree) -> None:
    # A proof binds a leaf (or old root) to a root; a wrong size must fail whenever
    # the RFC path for that size has another length. (Same-length sizes can give the
    # same computation, e.g. leaf 0 of sizes 5 and 6; the signed checkpoint binds
    # size and root together, so that case is harmless.)
    for n in range(2, 20):
        root = ref_mth(0, n)
        for m in range(n):
            proof = tree.inclusion_proof(m, n)
            for wrong in range(1, 2 * n + 2):
                if wrong != n and (m >= wrong or len(ref_path(m, 0, wrong)) != len(proof)):
                    with pytest.raises(ProofError):
                        verify_inclusion(LEAF_HASHES[m], m, wrong, proof, root)
        for m in range(1, n):
            proof = tree.consistency_proof(m, n)
            for wrong in range(1, 2 * n + 2):
                if wrong > m and len(ref_proof(m, wrong)) != len(proof):
                    with pytest.raises(ProofError):
                        verify_consistency(m, wrong, proof, ref_mth(0, m), root)


def test_a_rewritten_history_is_not_consistent() -> None:
    forked = list(LEAF_HASHES[:10])
    forked[3] = leaf_hash(b"rewritten")
    honest, fork = MerkleTree(LEAF_HASHES[:10]), MerkleTree(forked)
    proof = fork.consistency_proof(5, 10)
    with pytest.raises(ProofError, match="root1"):
        verify_consistency(5, 10, proof, honest.root(5), fork.root(10))


def test_tree_argument_errors(tree: MerkleTree) -> None:
    with pytest.raises(ValueError, match="leaf hash 1 must be 32 bytes"):
        MerkleTree([LEAF_HASHES[0], b"short"])
    with pytest.raises(ValueError, match="leaf hash must be 32 bytes"):
        MerkleTree().append(b"x" * 33)
    with pytest.raises(ValueError, match="leaf hash 0"):
        root_from_leaf_hashes([b""])
    with pytest.raises(
        IndexError, match=f"leaf index {MAX_SIZE} out of range for tree size {MAX_SIZE}"
    ):
        tree.leaf(MAX_SIZE)
    with pytest.raises(ValueError, match=f"tree size {MAX_SIZE + 1} out of range"):
        tree.root(MAX_SIZE + 1)
    with pytest.raises(ValueError, match="tree size -1 out of range"):
        tree.root(-1)
    with pytest.raises(ValueError, match="leaf index 5 is not below tree size 5"):
        tree.inclusion_proof(5, 5)
    with pytest.raises(ValueError, match="leaf index -1"):
        tree.inclusion_proof(-1)
    with pytest.raises(ValueError, match="need 0 < old size <= new size, got 0 and 4"):
        tree.consistency_proof(0, 4)
    with pytest.raises(ValueError, match="got 5 and 4"):
        tree.consistency_proof(5, 4)
    with pytest.raises(ValueError, match=f"tree size {MAX_SIZE + 1} out of range"):
        tree.consistency_proof(1, MAX_SIZE + 1)
    assert tree.consistency_proof(7, 7) == []
    with pytest.raises(ValueError, match="leaf index 0 is not below tree size 0"):
        MerkleTree().inclusion_proof(0)


def test_verifier_argument_errors() -> None:
    h = LEAF_HASHES[0]
    with pytest.raises(ProofError, match="leaf hash is 31 bytes, want 32"):
        verify_inclusion(h[:31], 0, 1, [], h)
    with pytest.raises(ProofError, match="root hash is 0 bytes"):
        verify_inclusion(h, 0, 1, [], b"")
    with pytest.raises(ProofError, match=r"proof\[1\] is 33 bytes"):
        verify_inclusion(h, 0, 3, [h, h + b"x"], h)
    with pytest.raises(ProofError, match="inclusion proof has 1 hashes, want 2 for leaf 0"):
        verify_inclusion(h, 0, 3, [h], h)
    with pytest.raises(ProofError, match="leaf index 3 is not below tree size 3"):
        verify_inclusion(h, 3, 3, [h, h], h)
    with pytest.raises(ProofError, match="does not lead to the expected root"):
        verify_inclusion(h, 0, 2, [h], h)
    with pytest.raises(ProofError, match=r"size1 \(3\) is greater than size2 \(2\)"):
        verify_consistency(3, 2, [], h, h)
    with pytest.raises(ProofError, match="consistency from tree size 0"):
        verify_consistency(0, 0, [], h, h)
    with pytest.raises(ProofError, match=r"sizes are equal \(2\) but the proof is not empty"):
        verify_consistency(2, 2, [h], h, h)
    with pytest.raises(ProofError, match=r"sizes are equal \(2\) but the root hashes differ"):
        verify_consistency(2, 2, [], h, LEAF_HASHES[1])
    with pytest.raises(ProofError, match="empty consistency proof from size 1 to size 2"):
        verify_consistency(1, 2, [], h, h)
    with pytest.raises(ProofError, match="consistency proof has 2 hashes, want 1"):
        verify_consistency(1, 2, [h, h], h, h)
    with pytest.raises(ProofError, match="root2 is 3 bytes"):
        verify_consistency(1, 2, [h], h, b"abc")
    with pytest.raises(ProofError, match="no consistency proof has sizes 2 and 2"):
        consistency_proof_size(2, 2)
