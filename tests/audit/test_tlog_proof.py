"""C2SP tlog-proof: the spec's example, format/parse round trips and verification.

Expected values come from c2sp.org/tlog-proof@v1 (copy in the shared specs folder),
whose example is parsed and re-formatted byte for byte, never from the code under
test. Its signatures are elided ("[...]"), so it can only be parsed, not verified.
"""

from __future__ import annotations

import base64

import pytest

from gateway.audit.checkpoint import Checkpoint, CheckpointError, format_checkpoint
from gateway.audit.cosignature import CosignatureV1Signer, cosign_checkpoint
from gateway.audit.merkle import MerkleTree, leaf_hash
from gateway.audit.note import (
    Ed25519Signer,
    InvalidSignatureError,
    MalformedNoteError,
    UnverifiedNoteError,
    sign_note,
)
from gateway.audit.proof import ProofError
from gateway.audit.tlog_proof import (
    HEADER,
    TlogProof,
    TlogProofError,
    format_tlog_proof,
    parse_tlog_proof,
    verify_tlog_proof,
)

SPEC_HASHES = [
    "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=",
    "B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=",
    "EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=",
    "RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=",
    "AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=",
]
SPEC_CHECKPOINT = (
    "example.com/fancylog\n"
    "109482\n"
    "sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=\n"
    "\n"
    "— example.com/fancylog hI2DJw[...]1roloI=\n"
    "— witness1.example mJirIklj[...]qY9v2B/5bg==\n"
    "— witness2.example TnKKVHLX[...]xwYwrSjgow==\n"
    "— witness3.example S4X82uH5[...]3oEcROGLFQ==\n"
)
SPEC_PROOF = (
    "c2sp.org/tlog-proof@v1\n"
    "extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ\n"
    "index 73894\n" + "".join(h + "\n" for h in SPEC_HASHES) + "\n" + SPEC_CHECKPOINT
)

ORIGIN = "agency.example/audit"
SIZE = 13
INDEX = 6


def _leaf(i: int) -> bytes:
    return leaf_hash(b"decision %d" % i)


TREE = MerkleTree(_leaf(i) for i in range(SIZE))


def _checkpoint_note(signer: Ed25519Signer, origin: str = ORIGIN, size: int = SIZE) -> bytes:
    return sign_note(format_checkpoint(Checkpoint(origin, size, TREE.root(size))), [signer])


def _proof_text(note: bytes, index: int = INDEX, size: int = SIZE) -> str:
    hashes = TREE.inclusion_proof(index, size)
    return format_tlog_proof(TlogProof(index=index, hashes=hashes, checkpoint=note))


@pytest.fixture(scope="module")
def log() -> Ed25519Signer:
    return Ed25519Signer.generate(ORIGIN)


# -- the spec's example ------------------------------------------------------------


def test_spec_example_parses() -> None:
    proof = parse_tlog_proof(SPEC_PROOF)
    assert proof.extra == base64.b64decode("YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ")
    assert proof.extra is not None and proof.extra.startswith(b"age-v1.2.1-darwin-arm64.tar.gz")
    assert proof.index == 73894
    assert proof.hashes == tuple(base64.b64decode(h) for h in SPEC_HASHES)
    assert proof.inclusion_proof == proof.hashes
    assert proof.checkpoint == SPEC_CHECKPOINT.encode()
    assert parse_tlog_proof(SPEC_PROOF.encode()) == proof


def test_spec_example_formats_back_byte_for_byte() -> None:
    assert format_tlog_proof(parse_tlog_proof(SPEC_PROOF)) == SPEC_PROOF


def test_spec_example_does_not_verify(log: Ed25519Signer) -> None:
    with pytest.raises(MalformedNoteError, match="signature line 1"):
        verify_tlog_proof(SPEC_PROOF, bytes(32), [log.verifier()])


# -- round trips and verification -------------------------------------------------


def test_format_parse_roundtrip(log: Ed25519Signer) -> None:
    note = _checkpoint_note(log)
    for extra in (None, b"", b"\x00context\xff"):
        proof = TlogProof(
            index=INDEX, hashes=TREE.inclusion_proof(INDEX, SIZE), checkpoint=note, extra=extra
        )
        text = format_tlog_proof(proof)
        assert text.startswith(HEADER + "\n")
        assert text.endswith(note.decode())
        assert parse_tlog_proof(text) == proof
        assert format_tlog_proof(parse_tlog_proof(text)) == text
    single = TlogProof(index=0, hashes=(), checkpoint=note)
    assert format_tlog_proof(single) == f"{HEADER}\nindex 0\n\n" + note.decode()
    assert parse_tlog_proof(format_tlog_proof(single)) == single


def test_inclusion_proof_keyword_is_an_alias_of_hashes(log: Ed25519Signer) -> None:
    note = _checkpoint_note(log)
    hashes = TREE.inclusion_proof(INDEX, SIZE)
    new = TlogProof(index=INDEX, hashes=hashes, checkpoint=note)
    old = TlogProof(index=INDEX, inclusion_proof=tuple(hashes), checkpoint=note)
    assert new == old
    assert old.hashes == old.inclusion_proof == tuple(hashes)
    with pytest.raises(TypeError, match="not both"):
        TlogProof(index=0, hashes=hashes, inclusion_proof=hashes, checkpoint=note)
    with pytest.raises(TypeError, match="checkpoint"):
        TlogProof(index=0, hashes=hashes)


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"index": -1}, "index -1 is outside"),
        ({"index": 1 << 64}, "index 18446744073709551616 is outside"),
        ({"hashes": [bytes(32), bytes(31)]}, "inclusion proof hash 1 is not 32 bytes"),
        ({"hashes": [bytes(32)] * 65}, "65 hashes, at most 64"),
        ({"checkpoint": b""}, "non-empty signed note"),
        ({"checkpoint": "text"}, "non-empty signed note"),
        ({"checkpoint": b"\xffx\n"}, "not valid UTF-8 \\(byte 0\\)"),
        ({"extra": "text"}, "extra data must be bytes"),
    ],
)
def test_constructor_refuses_unencodable_proofs(kwargs: dict[str, object], why: str) -> None:
    fields: dict[str, object] = {"index": 0, "hashes": (), "checkpoint": b"o\n0\nx\n"}
    fields.update(kwargs)
    with pytest.raises(TlogProofError, match=why):
        TlogProof(**fields)  # type: ignore[arg-type]


def test_verify_roundtrip(log: Ed25519Signer) -> None:
    text = _proof_text(_checkpoint_note(log))
    result = verify_tlog_proof(text, _leaf(INDEX), [log.verifier()], origin=ORIGIN)
    assert result.checkpoint == Checkpoint(ORIGIN, SIZE, TREE.root(SIZE))
    assert result.proof.index == INDEX
    assert [s.key_id for s in result.log_signatures] == [log.key_id]
    assert result.witness_signatures == ()
    assert verify_tlog_proof(text.encode(), _leaf(INDEX), [log.verifier()]).proof == result.proof
    for index in (0, SIZE - 1):  # every shape of path, first and last leaf too
        verify_tlog_proof(_proof_text(_checkpoint_note(log), index), _leaf(index), [log.verifier()])


def test_checkpoint_from_a_different_key_fails(log: Ed25519Signer) -> None:
    impostor = Ed25519Signer.generate(ORIGIN)  # same name and origin, other key
    text = _proof_text(_checkpoint_note(impostor))
    with pytest.raises(UnverifiedNoteError, match="no signature from a trusted key"):
        verify_tlog_proof(text, _leaf(INDEX), [log.verifier()], origin=ORIGIN)
    with pytest.raises(UnverifiedNoteError):
        verify_tlog_proof(text, _leaf(INDEX), [], origin=ORIGIN)  # no keys, no success


def test_checkpoint_from_a_different_origin_fails() -> None:
    other = Ed25519Signer.generate("other.example/log")
    text = _proof_text(_checkpoint_note(other, origin="other.example/log"))
    with pytest.raises(CheckpointError, match=r"origin 'other\.example/log' is not the expected"):
        verify_tlog_proof(text, _leaf(INDEX), [other.verifier()], origin=ORIGIN)


def test_wrong_leaf_index_or_hashes_fail(log: Ed25519Signer) -> None:
    note = _checkpoint_note(log)
    good = TREE.inclusion_proof(INDEX, SIZE)
    lv = [log.verifier()]

    def proof(index: int, hashes: list[bytes]) -> str:
        return format_tlog_proof(TlogProof(index=index, hashes=hashes, checkpoint=note))

    with pytest.raises(ProofError, match="does not lead to the expected root"):
        verify_tlog_proof(proof(INDEX, good), _leaf(INDEX + 1), lv)
    with pytest.raises(ProofError):
        verify_tlog_proof(proof(INDEX + 1, good), _leaf(INDEX), lv)
    flipped = [good[0][:-1] + bytes([good[0][-1] ^ 1]), *good[1:]]
    with pytest.raises(ProofError, match="does not lead to the expected root"):
        verify_tlog_proof(proof(INDEX, flipped), _leaf(INDEX), lv)
    with pytest.raises(ProofError, match="hashes, want"):
        verify_tlog_proof(proof(INDEX, good[:-1]), _leaf(INDEX), lv)
    with pytest.raises(ProofError, match="hashes, want"):
        verify_tlog_proof(proof(INDEX, [*good, good[0]]), _leaf(INDEX), lv)
    with pytest.raises(ProofError, match=f"leaf index {SIZE} is not below tree size {SIZE}"):
        verify_tlog_proof(proof(SIZE, good), _leaf(INDEX), lv)
    # A proof for the leaf under a smaller tree does not verify under this checkpoint.
    smaller = TREE.inclusion_proof(INDEX, SIZE - 4)
    with pytest.raises(ProofError):
        verify_tlog_proof(proof(INDEX, smaller), _leaf(INDEX), lv)


def test_tampered_checkpoint_in_proof_fails(log: Ed25519Signer) -> None:
    text = _proof_text(_checkpoint_note(log))
    tampered = text.replace(f"\n{SIZE}\n", f"\n{SIZE + 1}\n")
    assert tampered != text
    with pytest.raises(InvalidSignatureError):
        verify_tlog_proof(tampered, _leaf(INDEX), [log.verifier()])


def test_witness_policy(log: Ed25519Signer) -> None:
    note = _checkpoint_note(log)
    w1 = CosignatureV1Signer.generate("w1.example", clock=lambda: 1_700_000_000)
    w2 = CosignatureV1Signer.generate("w2.example", clock=lambda: 1_700_000_000)
    cosigned = note + cosign_checkpoint(note, w1, [log.verifier()]).encode()
    text = _proof_text(cosigned)
    lv, wv = [log.verifier()], [w1.verifier(), w2.verifier()]
    result = verify_tlog_proof(text, _leaf(INDEX), lv, witnesses=wv, witness_quorum=1)
    assert [s.name for s in result.witness_signatures] == ["w1.example"]
    with pytest.raises(TlogProofError, match="1 witness cosignatures verified, policy requires 2"):
        verify_tlog_proof(text, _leaf(INDEX), lv, witnesses=wv, witness_quorum=2)
    with pytest.raises(TlogProofError, match="0 witness cosignatures verified, policy requires 1"):
        verify_tlog_proof(_proof_text(note), _leaf(INDEX), lv, witnesses=wv, witness_quorum=1)
    # A witness key cannot stand in for the log's key.
    with pytest.raises(UnverifiedNoteError, match="not signed by any of the log's keys"):
        verify_tlog_proof(text, _leaf(INDEX), [w2.verifier()], witnesses=[w1.verifier()])
    with pytest.raises(TlogProofError, match=r"w1\.example\+[0-9a-f]{8} is configured both"):
        verify_tlog_proof(text, _leaf(INDEX), [*lv, w1.verifier()], witnesses=[w1.verifier()])
    with pytest.raises(ValueError, match="quorum -1 is negative"):
        verify_tlog_proof(text, _leaf(INDEX), lv, witness_quorum=-1)
    # A broken cosignature from a trusted witness rejects the proof.
    line = cosign_checkpoint(note, w1, [log.verifier()])
    name, blob = line[2:].split(" ")
    raw = bytearray(base64.b64decode(blob))
    raw[-1] ^= 1
    broken = note + f"— {name} {base64.b64encode(bytes(raw)).decode()}\n".encode()
    with pytest.raises(InvalidSignatureError, match=r"w1\.example"):
        verify_tlog_proof(_proof_text(broken), _leaf(INDEX), lv, witnesses=wv)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "proof ends before the header line \\(line 1\\)"),
        ("c2sp.org/tlog-proof@v2\nindex 0\n\nx\n", "line 1: proof does not start with"),
        (HEADER + "\n", "proof ends before the index line \\(line 2\\)"),
        (HEADER + "\nindx 0\n\nx\n", "line 2: expected 'index <n>'"),
        (HEADER + "\nextra AAAA\nextra AAAA\nindex 0\n\nx\n", "line 3: expected 'index <n>'"),
        (HEADER + "\nindex 0\nextra AAAA\n\nx\n", "line 3: inclusion proof hash 0 is not valid"),
        (HEADER + "\nextra AAA\nindex 0\n\nx\n", "line 2: extra data is not valid base64"),
        (HEADER + "\nextra AAB=\nindex 0\n\nx\n", "line 2: extra data is not canonical"),
        (HEADER + "\nindex 01\n\nx\n", "line 2: index '01' is not a 64-bit decimal"),
        (HEADER + "\nindex -1\n\nx\n", "line 2: index '-1'"),
        (HEADER + "\nindex  1\n\nx\n", "line 2: index ' 1'"),
        (HEADER + "\nindex 18446744073709551616\n\nx\n", "line 2: index '18446744073709551616'"),
        (
            HEADER + "\nindex 0\n" + "A" * 44 + "\n\nx\n",
            "line 3: inclusion proof hash 0 is 33 bytes",
        ),
        (
            HEADER + "\nindex 0\n" + "A" * 40 + "\n\nx\n",
            "line 3: inclusion proof hash 0 is 30 bytes",
        ),
        (
            HEADER + "\nindex 0\n" + "A" * 42 + "B=\n\nx\n",
            "line 3: inclusion proof hash 0 is not canonical",
        ),
        (
            HEADER + "\nindex 0\n" + "A" * 43 + "=",
            "ends before the blank line before the checkpoint",
        ),
        (HEADER + "\nindex 0\n", "ends before the blank line before the checkpoint \\(line 3\\)"),
        (HEADER + "\nindex 0\n\n", "no checkpoint after the blank line"),
        (HEADER + "\r\nindex 0\n\nx\n", "line 1: proof does not start with"),
        (
            HEADER + "\nindex 0\n" + ("A" * 43 + "=\n") * 65 + "\nx\n",
            "line 67: inclusion proof hash 64: more than 64 hashes",
        ),
    ],
)
def test_malformed_proofs_are_refused(text: str, why: str) -> None:
    with pytest.raises(TlogProofError, match=why):
        parse_tlog_proof(text)


def test_non_utf8_proof_is_refused() -> None:
    with pytest.raises(TlogProofError, match="not valid UTF-8 \\(byte 0\\)"):
        parse_tlog_proof(b"\xff" + HEADER.encode())
