"""C2SP tlog-cosignature v1 (Ed25519): the spec's example, round trips and refusals.

Expected values come from c2sp.org/tlog-cosignature (copy in the shared specs folder):
its cosigned checkpoint example and its signed-message example, never from the code
under test.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.checkpoint import Checkpoint, CheckpointError, format_checkpoint
from gateway.audit.cosignature import (
    MAX_TIMESTAMP,
    SIG_TYPE_COSIGNATURE_V1,
    CosignatureError,
    CosignatureV1Signer,
    CosignatureV1Verifier,
    cosign_checkpoint,
    cosignature_timestamp,
    cosigned_message,
    parse_cosignature,
)
from gateway.audit.merkle import EMPTY_ROOT, MerkleTree, leaf_hash
from gateway.audit.note import (
    Ed25519Signer,
    InvalidSignatureError,
    MalformedKeyError,
    NoteSignature,
    UnverifiedNoteError,
    open_note,
    parse_note,
    sign_note,
)
from gateway.audit.proof import ProofError

SPEC_TEXT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SPEC_NOTE = (
    SPEC_TEXT
    + "\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7"
    "u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJ"
    "sX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)
# The spec's "Ed25519 signed message" example (indentation removed).
SPEC_SIGNED_MESSAGE = "cosignature/v1\ntime 1679315147\n" + SPEC_TEXT
SPEC_TIMESTAMP = 1679315147

ORIGIN = "agency.example/audit"
T0 = 1_700_000_000


def _fixed_clock(t: float) -> CosignatureV1Signer:
    return CosignatureV1Signer.generate("witness.example/w1", clock=lambda: t)


def _log(leaves: int) -> tuple[Ed25519Signer, MerkleTree]:
    return Ed25519Signer.generate(ORIGIN), MerkleTree(leaf_hash(b"%d" % i) for i in range(leaves))


def _signed(signer: Ed25519Signer, tree: MerkleTree, size: int) -> bytes:
    return sign_note(format_checkpoint(Checkpoint(ORIGIN, size, tree.root(size))), [signer])


def test_spec_example_cosignature_parses_and_its_timestamp_matches_the_message() -> None:
    note = parse_note(SPEC_NOTE)
    assert note.text == SPEC_TEXT
    cosig = note.signatures[1]
    assert (cosig.name, cosig.key_id) == ("witness.example.com/w1", 0x8D66CF3F)
    assert len(cosig.signature) == 8 + 64
    assert cosignature_timestamp(cosig) == SPEC_TIMESTAMP
    timestamp, sig = parse_cosignature(cosig.signature)
    assert (timestamp, len(sig)) == (SPEC_TIMESTAMP, 64)
    assert cosigned_message(SPEC_TEXT, SPEC_TIMESTAMP) == SPEC_SIGNED_MESSAGE.encode()


def test_key_id_uses_type_0x04() -> None:
    witness = _fixed_clock(T0)
    expected = hashlib.sha256(
        witness.name.encode() + b"\n" + b"\x04" + witness.public_key
    ).digest()[:4]
    assert witness.key_id == int.from_bytes(expected, "big")
    assert SIG_TYPE_COSIGNATURE_V1 == 0x04
    # The same key as a plain note signer has another ID: the types do not mix.
    verifier = witness.verifier()
    assert verifier.key_id == witness.key_id
    assert verifier.vkey.startswith(f"witness.example/w1+{witness.key_id:08x}+")
    assert base64.b64decode(verifier.vkey.split("+", 2)[2])[0] == 0x04
    assert CosignatureV1Verifier.from_vkey(verifier.vkey) == verifier


def test_vkey_of_the_wrong_type_is_refused() -> None:
    plain = Ed25519Signer.generate("witness.example/w1")
    with pytest.raises(MalformedKeyError, match="signature type 0x01, want 0x04"):
        CosignatureV1Verifier.from_vkey(plain.vkey)
    vkey = _fixed_clock(T0).verifier().vkey
    name, key_id, key = vkey.split("+", 2)
    with pytest.raises(MalformedKeyError, match="does not match the key"):
        CosignatureV1Verifier.from_vkey(f"{name}+{int(key_id, 16) ^ 1:08x}+{key}")


def test_cosignature_roundtrip_with_timestamp() -> None:
    log, tree = _log(5)
    note = _signed(log, tree, 5)
    witness = _fixed_clock(T0 + 0.9)
    line = cosign_checkpoint(note, witness, [log.verifier()])
    cosigned = note + line.encode()
    text, sigs = open_note(cosigned, [log.verifier(), witness.verifier()])
    assert text == format_checkpoint(Checkpoint(ORIGIN, 5, tree.root(5)))
    assert [s.key_id for s in sigs] == [log.key_id, witness.key_id]
    assert cosignature_timestamp(sigs[1]) == T0  # whole seconds
    # the signed bytes are exactly the spec's message layout
    ts, sig = parse_cosignature(sigs[1].signature)
    assert witness.verifier().verify(text.encode(), sigs[1].signature)
    assert ts == T0 and len(sig) == 64
    # an explicit timestamp overrides the clock
    line2 = cosign_checkpoint(note, witness, [log.verifier()], timestamp=SPEC_TIMESTAMP)
    sig2 = parse_note(note + line2.encode()).signatures[1]
    assert cosignature_timestamp(sig2) == SPEC_TIMESTAMP


def test_cosignature_is_not_a_plain_signature_and_vice_versa() -> None:
    log, tree = _log(3)
    note = _signed(log, tree, 3)
    private = Ed25519PrivateKey.generate()  # one key pair, used as both types
    key = Ed25519Signer("witness.example/w1", private)
    witness = CosignatureV1Signer("witness.example/w1", private)
    cosigned = note + cosign_checkpoint(note, witness, [log.verifier()], timestamp=T0).encode()
    # Trusting the key as a plain Ed25519 signer: the cosignature's ID is unknown.
    _, sigs = open_note(cosigned, [log.verifier(), key.verifier()])
    assert [s.key_id for s in sigs] == [log.key_id]
    # A plain signature with the cosigner's name and ID forged in must not verify.
    plain = key.sign(note.split(b"\n\n")[0] + b"\n")
    forged = NoteSignature(witness.name, witness.key_id, T0.to_bytes(8, "big") + plain)
    with pytest.raises(InvalidSignatureError):
        open_note(note + forged.line().encode(), [log.verifier(), witness.verifier()])


def test_tampered_timestamp_or_text_fails() -> None:
    log, tree = _log(3)
    note = _signed(log, tree, 3)
    witness = _fixed_clock(T0)
    line = cosign_checkpoint(note, witness, [log.verifier()])
    sig = parse_note(note + line.encode()).signatures[1]
    moved = NoteSignature(sig.name, sig.key_id, (T0 + 1).to_bytes(8, "big") + sig.signature[8:])
    with pytest.raises(InvalidSignatureError, match=f"witness.example/w1\\+{witness.key_id:08x}"):
        open_note(note + moved.line().encode(), [witness.verifier()])
    text = note.split(b"\n\n")[0] + b"\n"
    assert witness.verifier().verify(text, sig.signature)
    assert not witness.verifier().verify(text.replace(b"\n3\n", b"\n4\n"), sig.signature)
    assert not witness.verifier().verify(b"\xff" + text, sig.signature)
    assert not witness.verifier().verify(text, sig.signature[:-1])


def test_timestamp_bounds() -> None:
    assert MAX_TIMESTAMP == (1 << 63) - 1
    assert cosigned_message(SPEC_TEXT, MAX_TIMESTAMP).startswith(
        b"cosignature/v1\ntime 9223372036854775807\n"
    )
    assert cosigned_message(SPEC_TEXT, 0).startswith(b"cosignature/v1\ntime 0\n")
    for bad in (-1, 1 << 63):
        with pytest.raises(ValueError, match=f"timestamp {bad} is outside 0..2\\*\\*63-1"):
            cosigned_message(SPEC_TEXT, bad)
    with pytest.raises(ValueError, match="timestamp 9223372036854775808 exceeds 2\\*\\*63-1"):
        parse_cosignature((1 << 63).to_bytes(8, "big") + bytes(64))
    with pytest.raises(ValueError, match="is 71 bytes, want 72"):
        parse_cosignature(bytes(71))
    with pytest.raises(ValueError, match="must end with a newline"):
        cosigned_message(SPEC_TEXT[:-1], 0)


def test_witness_only_signs_checkpoints() -> None:
    witness = _fixed_clock(T0)
    with pytest.raises(CheckpointError):
        witness.sign(b"hello\n")
    with pytest.raises(MalformedKeyError, match="seed must be 32 bytes"):
        CosignatureV1Signer.from_seed("w", b"short")
    seeded = CosignatureV1Signer.from_seed("w", bytes(32), clock=lambda: 5)
    assert seeded.public_key == CosignatureV1Signer.from_seed("w", bytes(32)).public_key


def test_witness_checks_consistency_with_the_previous_checkpoint() -> None:
    log, tree = _log(10)
    witness = _fixed_clock(T0)
    lv = [log.verifier()]
    previous = Checkpoint(ORIGIN, 4, tree.root(4))
    proof = tree.consistency_proof(4, 10)
    cosign_checkpoint(
        _signed(log, tree, 10), witness, lv, previous=previous, consistency_proof=proof
    )
    # same size, same root: nothing to prove
    cosign_checkpoint(_signed(log, tree, 4), witness, lv, previous=previous)
    with pytest.raises(ProofError, match="root"):
        bad = [proof[0][::-1], *proof[1:]]
        cosign_checkpoint(
            _signed(log, tree, 10), witness, lv, previous=previous, consistency_proof=bad
        )
    with pytest.raises(ProofError, match="hashes, want"):
        cosign_checkpoint(
            _signed(log, tree, 10), witness, lv, previous=previous, consistency_proof=proof[:-1]
        )
    with pytest.raises(
        CosignatureError, match="size 3 is smaller than the size 4 already cosigned"
    ):
        cosign_checkpoint(_signed(log, tree, 3), witness, lv, previous=previous)
    forked = Checkpoint(ORIGIN, 4, leaf_hash(b"fork"))
    with pytest.raises(ProofError, match="root hashes differ"):
        cosign_checkpoint(_signed(log, tree, 4), witness, lv, previous=forked)
    with pytest.raises(CheckpointError, match=r"is not 'other\.example/log'"):
        cosign_checkpoint(
            _signed(log, tree, 10),
            witness,
            lv,
            previous=Checkpoint("other.example/log", 4, tree.root(4)),
        )


def test_witness_first_sight_and_empty_trees() -> None:
    log, tree = _log(3)
    witness = _fixed_clock(T0)
    lv = [log.verifier()]
    cosign_checkpoint(_signed(log, tree, 3), witness, lv)  # first checkpoint seen
    with pytest.raises(CosignatureError, match="from size 0 must be empty"):
        cosign_checkpoint(_signed(log, tree, 3), witness, lv, consistency_proof=[tree.root(1)])
    cosign_checkpoint(_signed(log, tree, 0), witness, lv)
    assert tree.root(0) == EMPTY_ROOT
    bogus = sign_note(format_checkpoint(Checkpoint(ORIGIN, 0, leaf_hash(b"x"))), [log])
    with pytest.raises(CosignatureError, match="size 0 must have the empty-tree root"):
        cosign_checkpoint(bogus, witness, lv)


def test_witness_requires_the_log_signature() -> None:
    log, tree = _log(3)
    impostor = Ed25519Signer.generate(ORIGIN)
    with pytest.raises(UnverifiedNoteError):
        cosign_checkpoint(_signed(impostor, tree, 3), _fixed_clock(T0), [log.verifier()])
    with pytest.raises(UnverifiedNoteError):
        cosign_checkpoint(_signed(log, tree, 3), _fixed_clock(T0), [])
