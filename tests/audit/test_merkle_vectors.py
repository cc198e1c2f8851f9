"""RFC 9162 inclusion and consistency proofs against the transparency-dev/merkle vectors.

Every JSON file under tests/vectors/rfc9162 is checked twice where it applies: the
given proof must verify (or fail, per ``wantErr``), and for the happy paths of the
reference tree our `MerkleTree` must generate exactly the given proof. Expected
values come from the vectors and from transparency-dev/merkle ``testonly/constants.go``
(the reference tree's leaves and roots), never from the code under test.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.audit.merkle import EMPTY_ROOT, MerkleTree, leaf_hash
from gateway.audit.proof import (
    ProofError,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "rfc9162"

# transparency-dev/merkle testonly/constants.go: LeafInputs() and RootHashes(). The
# numbered vector folders are proofs in the tree over these eight leaves.
REFERENCE_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
REFERENCE_ROOTS = [
    bytes.fromhex(h)
    for h in (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]
# transparency-dev/merkle testonly/constants.go NodeHashes()[0]: the leaf hashes.
REFERENCE_LEAF_HASHES = [
    bytes.fromhex(h)
    for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    )
]
# The folders whose proofs are in the reference tree (the others use other leaves).
REFERENCE_FOLDERS = {"0", "1", "2", "3", "4"}


def _b64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


@dataclass(frozen=True)
class Inclusion:
    path: str
    index: int
    size: int
    root: bytes
    leaf_hash: bytes
    proof: list[bytes]
    want_err: bool


@dataclass(frozen=True)
class Consistency:
    path: str
    size1: int
    size2: int
    root1: bytes
    root2: bytes
    proof: list[bytes]
    want_err: bool


def _load(kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    folder = VECTORS / kind
    for path in sorted(folder.rglob("*.json")):
        with path.open(encoding="utf-8") as f:
            yield path.relative_to(folder).as_posix(), json.load(f)


def _inclusions() -> list[Inclusion]:
    return [
        Inclusion(
            path=rel,
            index=v["leafIdx"],
            size=v["treeSize"],
            root=_b64(v["root"]),
            leaf_hash=_b64(v["leafHash"]),
            proof=[_b64(p) for p in v["proof"] or []],
            want_err=v["wantErr"],
        )
        for rel, v in _load("inclusion")
    ]


def _consistencies() -> list[Consistency]:
    return [
        Consistency(
            path=rel,
            size1=v["size1"],
            size2=v["size2"],
            root1=_b64(v["root1"]),
            root2=_b64(v["root2"]),
            proof=[_b64(p) for p in v["proof"] or []],
            want_err=v["wantErr"],
        )
        for rel, v in _load("consistency")
    ]


INCLUSIONS = _inclusions()
CONSISTENCIES = _consistencies()
INCLUSION_HAPPY = [v for v in INCLUSIONS if not v.want_err]
CONSISTENCY_HAPPY = [v for v in CONSISTENCIES if not v.want_err]
REFERENCE_TREE = MerkleTree(leaf_hash(leaf) for leaf in REFERENCE_LEAVES)


def _in_reference_tree(path: str) -> bool:
    return path.split("/", 1)[0] in REFERENCE_FOLDERS


def test_all_vector_files_are_loaded() -> None:
    # 196 files in the copied testdata; a silent glob failure must not pass as green.
    assert len(INCLUSIONS) + len(CONSISTENCIES) == 196
    assert len(INCLUSION_HAPPY) == 6
    assert len(CONSISTENCY_HAPPY) == 6


# -- the given proofs ----------------------------------------------------------------


@pytest.mark.parametrize("v", INCLUSIONS, ids=lambda v: v.path)
def test_inclusion_vector(v: Inclusion) -> None:
    if v.want_err:
        with pytest.raises(ProofError):
            verify_inclusion(v.leaf_hash, v.index, v.size, v.proof, v.root)
    else:
        verify_inclusion(v.leaf_hash, v.index, v.size, v.proof, v.root)
        assert root_from_inclusion_proof(v.leaf_hash, v.index, v.size, v.proof) == v.root


@pytest.mark.parametrize("v", CONSISTENCIES, ids=lambda v: v.path)
def test_consistency_vector(v: Consistency) -> None:
    if v.want_err:
        with pytest.raises(ProofError):
            verify_consistency(v.size1, v.size2, v.proof, v.root1, v.root2)
    else:
        verify_consistency(v.size1, v.size2, v.proof, v.root1, v.root2)


# -- generating the same proofs from the reference tree ------------------------------


def test_reference_tree_reproduces_published_hashes() -> None:
    assert [leaf_hash(leaf) for leaf in REFERENCE_LEAVES] == REFERENCE_LEAF_HASHES
    assert REFERENCE_ROOTS[0] == EMPTY_ROOT
    assert [REFERENCE_TREE.root(n) for n in range(len(REFERENCE_ROOTS))] == REFERENCE_ROOTS


@pytest.mark.parametrize(
    "v", [v for v in INCLUSION_HAPPY if _in_reference_tree(v.path)], ids=lambda v: v.path
)
def test_generated_inclusion_proof_matches_vector(v: Inclusion) -> None:
    assert REFERENCE_ROOTS[v.size] == v.root
    assert REFERENCE_TREE.leaf(v.index) == v.leaf_hash
    assert REFERENCE_TREE.inclusion_proof(v.index, v.size) == v.proof
    # A tree built leaf by leaf, holding exactly the vector's size, gives the same.
    tree = MerkleTree()
    for h in REFERENCE_LEAF_HASHES[: v.size]:
        tree.append(h)
    assert tree.root() == v.root
    assert tree.inclusion_proof(v.index) == v.proof


@pytest.mark.parametrize(
    "v", [v for v in CONSISTENCY_HAPPY if _in_reference_tree(v.path)], ids=lambda v: v.path
)
def test_generated_consistency_proof_matches_vector(v: Consistency) -> None:
    assert REFERENCE_ROOTS[v.size1] == v.root1
    assert REFERENCE_ROOTS[v.size2] == v.root2
    assert REFERENCE_TREE.consistency_proof(v.size1, v.size2) == v.proof
    tree = MerkleTree(REFERENCE_LEAF_HASHES[: v.size2])
    assert tree.consistency_proof(v.size1) == v.proof


def test_single_entry_vector_tree() -> None:
    # inclusion/single-entry: a one-leaf tree whose root is its leaf hash.
    (v,) = [v for v in INCLUSION_HAPPY if v.path.startswith("single-entry/")]
    tree = MerkleTree([v.leaf_hash])
    assert tree.root() == v.root
    assert tree.inclusion_proof(0) == v.proof == []


def test_every_happy_path_in_reference_folders_is_generated() -> None:
    # Guard against the filters above silently selecting nothing.
    assert sum(_in_reference_tree(v.path) for v in INCLUSION_HAPPY) == 5
    assert sum(_in_reference_tree(v.path) for v in CONSISTENCY_HAPPY) == 5


# -- our own mutations of every happy path -------------------------------------------


def _flip(h: bytes, byte: int, bit: int = 0) -> bytes:
    return h[:byte] + bytes([h[byte] ^ (1 << bit)]) + h[byte + 1 :]


def _proof_mutations(proof: list[bytes]) -> Iterator[tuple[str, list[bytes]]]:
    """Every hash with a flipped bit (first, middle, last byte); one hash too many or few."""
    for i, h in enumerate(proof):
        for byte in (0, len(h) // 2, len(h) - 1):
            yield f"flip proof[{i}] byte {byte}", [*proof[:i], _flip(h, byte), *proof[i + 1 :]]
    extra = leaf_hash(b"not in the tree")
    yield "extra hash appended", [*proof, extra]
    yield "extra hash prepended", [extra, *proof]
    if proof:
        yield "first hash duplicated", [proof[0], *proof]
        yield "last hash missing", proof[:-1]
        yield "first hash missing", proof[1:]
    if len(proof) > 1:
        yield "hashes swapped", [proof[1], proof[0], *proof[2:]]


def _raises(call: Callable[[], None]) -> bool:
    try:
        call()
    except ProofError:
        return True
    return False


@pytest.mark.parametrize("v", INCLUSION_HAPPY, ids=lambda v: v.path)
def test_mutated_inclusion_proofs_fail(v: Inclusion) -> None:
    def check(
        what: str, leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes
    ) -> None:
        assert _raises(lambda: verify_inclusion(leaf, index, size, proof, root)), what

    for what, proof in _proof_mutations(v.proof):
        check(what, v.leaf_hash, v.index, v.size, proof, v.root)
    check("flipped leaf hash", _flip(v.leaf_hash, 0), v.index, v.size, v.proof, v.root)
    check("flipped root", v.leaf_hash, v.index, v.size, v.proof, _flip(v.root, 31, 7))
    check("truncated root", v.leaf_hash, v.index, v.size, v.proof, v.root[:-1])
    check("index = size", v.leaf_hash, v.size, v.size, v.proof, v.root)
    check("negative index", v.leaf_hash, -1, v.size, v.proof, v.root)
    for index in {v.index + 1, v.index - 1, v.index ^ 1, v.index ^ 2} - {v.index}:
        if 0 <= index < v.size:
            check(f"index {index}", v.leaf_hash, index, v.size, v.proof, v.root)
    check("size = index", v.leaf_hash, v.index, v.index, v.proof, v.root)
    check("size doubled", v.leaf_hash, v.index, 2 * v.size, v.proof, v.root)
    check("size 0", v.leaf_hash, v.index, 0, v.proof, v.root)


@pytest.mark.parametrize("v", CONSISTENCY_HAPPY, ids=lambda v: v.path)
def test_mutated_consistency_proofs_fail(v: Consistency) -> None:
    def check(what: str, size1: int, size2: int, proof: list[bytes], r1: bytes, r2: bytes) -> None:
        assert _raises(lambda: verify_consistency(size1, size2, proof, r1, r2)), what

    for what, proof in _proof_mutations(v.proof):
        check(what, v.size1, v.size2, proof, v.root1, v.root2)
    check("flipped root1", v.size1, v.size2, v.proof, _flip(v.root1, 0), v.root2)
    check("flipped root2", v.size1, v.size2, v.proof, v.root1, _flip(v.root2, len(v.root2) - 1, 7))
    if v.root1 != v.root2:
        check("roots swapped", v.size1, v.size2, v.proof, v.root2, v.root1)
    check("size1 0", 0, v.size2, v.proof, v.root1, v.root2)
    check("negative size1", -v.size1, v.size2, v.proof, v.root1, v.root2)
    check("size2 doubled", v.size1, 2 * v.size2, v.proof, v.root1, v.root2)
    if v.size1 != v.size2:
        check("sizes swapped", v.size2, v.size1, v.proof, v.root1, v.root2)
        check("size2 = size1", v.size1, v.size1, v.proof, v.root1, v.root2)
        check("size1 = size2", v.size2, v.size2, v.proof, v.root1, v.root2)
