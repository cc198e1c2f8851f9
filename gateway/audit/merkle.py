"""RFC 9162 section 2 Merkle tree hashing: the audit log's tree heads and proofs.

Every broker decision is a leaf of an append-only Merkle tree, so an agency can be
shown that its decision is in the log (inclusion proof) and that the log never
rewrote history (consistency proof). This module is the producing side; the checks
a client runs live in `proof.py`, which does not import this file.

`MerkleTree` keeps every complete subtree hash, one flat buffer per level, so that
after an O(n) build each root or proof needs O(log n) hashes and lookups.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleTree",
    "leaf_hash",
    "node_hash",
    "root_from_leaf_hashes",
]

HASH_SIZE = 32
"""Size in bytes of every hash in the tree (SHA-256)."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) = SHA-256() — the root of the empty tree (RFC 9162 2.1.1)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d): the hash of one log entry."""
    return _sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def _check_hash(value: object, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise ValueError(f"{what} must be {HASH_SIZE} bytes")
    return value


def root_from_leaf_hashes(hashes: Iterable[bytes]) -> bytes:
    """MTH over already-hashed leaves, streaming, in O(n) time and O(log n) memory."""
    # stack holds the roots of the complete subtrees seen so far, largest first,
    # each with its height; it mirrors the binary representation of the count.
    stack: list[tuple[int, bytes]] = []
    for i, h in enumerate(hashes):
        _check_hash(h, f"leaf hash {i}")
        height = 0
        while stack and stack[-1][0] == height:
            h = node_hash(stack.pop()[1], h)
            height += 1
        stack.append((height, h))
    if not stack:
        return EMPTY_ROOT
    root = stack.pop()[1]
    while stack:
        root = node_hash(stack.pop()[1], root)
    return root


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2): RFC 9162's k."""
    return 1 << ((n - 1).bit_length() - 1)


def _hash_pairs(level: bytearray, first_pair: int, end_pair: int) -> bytes:
    """Concatenated parent hashes of child pairs [first_pair, end_pair) of a level."""
    step = 2 * HASH_SIZE
    return b"".join(
        [
            _sha256(_NODE_PREFIX + level[i : i + step]).digest()
            for i in range(first_pair * step, end_pair * step, step)
        ]
    )


class MerkleTree:
    """An append-only RFC 9162 tree over leaf hashes, caching all complete subtrees.

    Level ``l`` holds the hash of every complete, aligned subtree of ``2**l`` leaves
    (level 0 is the leaf hashes), concatenated in one buffer. Those hashes never
    change once the subtree is full, so they serve every older tree size as well.
    Not thread-safe: guard appends and reads with a lock if they can overlap.
    """

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self.extend(leaf_hashes)

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self._levels[0]) // HASH_SIZE

    def __len__(self) -> int:
        return self.size

    def leaf(self, index: int) -> bytes:
        """The leaf hash stored at ``index``."""
        if not 0 <= index < self.size:
            raise IndexError(f"leaf index {index} out of range for tree size {self.size}")
        return self._node(0, index)

    def append(self, leaf_hash: bytes) -> int:
        """Add one leaf hash; returns its index. O(log n) worst case, O(1) amortised."""
        h = _check_hash(leaf_hash, "leaf hash")
        levels = self._levels
        index = self.size
        levels[0] += h
        level, i = 0, index
        while i & 1:  # this node completes a pair: cache the parent
            left = levels[level][(i - 1) * HASH_SIZE : i * HASH_SIZE]
            h = _sha256(_NODE_PREFIX + left + h).digest()
            level, i = level + 1, i >> 1
            if level == len(levels):
                levels.append(bytearray())
            levels[level] += h
        return index

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Add many leaf hashes, hashing each newly completed level in one pass."""
        new = [_check_hash(h, f"leaf hash {i}") for i, h in enumerate(leaf_hashes)]
        if not new:
            return
        levels = self._levels
        levels[0] += b"".join(new)
        level = 0
        while len(levels[level]) >= 2 * HASH_SIZE:
            if level + 1 == len(levels):
                levels.append(bytearray())
            have = len(levels[level + 1]) // HASH_SIZE
            want = len(levels[level]) // (2 * HASH_SIZE)
            levels[level + 1] += _hash_pairs(levels[level], have, want)
            level += 1

    def truncate(self, size: int) -> None:
        """Drop every leaf from ``size`` on (an append whose commit failed). O(log n).

        Level ``k`` keeps only its complete nodes, ``size >> k`` of them, so cutting each
        level to that count leaves exactly the tree of the first ``size`` leaves.
        """
        if not 0 <= size <= self.size:
            raise ValueError(f"cannot truncate a tree of size {self.size} to {size}")
        for level, nodes in enumerate(self._levels):
            del nodes[(size >> level) * HASH_SIZE :]

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (default: all of them)."""
        size = self._check_size(size)
        return self._range_hash(0, size) if size else EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 2.1.3.1 PATH(index, D[0:size]), leaf sibling first."""
        size = self._check_size(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} is not below tree size {size}")
        proof: list[bytes] = []  # collected root-side first, reversed at the end
        lo, hi, m = 0, size, index
        while hi - lo > 1:
            k = _split(hi - lo)
            if m < k:  # PATH(m, D[lo:lo+k]) : MTH(D[lo+k:hi])
                proof.append(self._range_hash(lo + k, hi))
                hi = lo + k
            else:  # PATH(m-k, D[lo+k:hi]) : MTH(D[lo:lo+k])
                proof.append(self._range_hash(lo, lo + k))
                lo, m = lo + k, m - k
        proof.reverse()
        return proof

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 9162 2.1.4.1 PROOF(old_size, D[0:new_size]) = SUBPROOF(m, D[n], true).

        Equal sizes give the empty proof. Size 0 is refused, matching `proof.py`:
        the empty tree is a prefix of every tree, so there is nothing to prove.
        """
        new_size = self._check_size(new_size)
        if not 0 < old_size <= new_size:
            raise ValueError(f"need 0 < old size <= new size, got {old_size} and {new_size}")
        proof: list[bytes] = []  # collected root-side first, reversed at the end
        lo, hi, m, whole = 0, new_size, old_size, True
        while m != hi - lo:
            k = _split(hi - lo)
            if m <= k:  # SUBPROOF(m, D[lo:lo+k], b) : MTH(D[lo+k:hi])
                proof.append(self._range_hash(lo + k, hi))
                hi = lo + k
            else:  # SUBPROOF(m-k, D[lo+k:hi], false) : MTH(D[lo:lo+k])
                proof.append(self._range_hash(lo, lo + k))
                lo, m, whole = lo + k, m - k, False
        if not whole:  # SUBPROOF(m, D[m], false) = {MTH(D[m])}
            proof.append(self._range_hash(lo, hi))
        proof.reverse()
        return proof

    def _check_size(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not 0 <= size <= self.size:
            raise ValueError(f"tree size {size} out of range: the tree has {self.size} leaves")
        return size

    def _node(self, level: int, index: int) -> bytes:
        return bytes(self._levels[level][index * HASH_SIZE : (index + 1) * HASH_SIZE])

    def _range_hash(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) for a non-empty range that is a node of the RFC recursion.

        Such a range starts at a multiple of the largest power of two not above its
        length, so it splits into complete cached subtrees whose sizes are the bits
        of ``hi - lo``, largest first; folding them from the right is exactly the
        RFC's left/right split. Costs at most one lookup per bit.
        """
        parts: list[bytes] = []
        while lo < hi:
            level = (hi - lo).bit_length() - 1
            parts.append(self._node(level, lo >> level))
            lo += 1 << level
        acc = parts.pop()
        while parts:
            acc = node_hash(parts.pop(), acc)
        return acc
