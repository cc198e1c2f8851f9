"""C2SP tlog-checkpoint: the spec's example, signed round trips and malformed bodies.

Expected values come from c2sp.org/tlog-checkpoint@v1.0.0 and c2sp.org/tlog-witness
(copies in the shared specs folder), never from the code under test.
"""

from __future__ import annotations

import base64

import pytest

from gateway.audit.checkpoint import (
    MAX_TREE_SIZE,
    Checkpoint,
    CheckpointError,
    format_checkpoint,
    open_checkpoint,
    parse_checkpoint,
)
from gateway.audit.merkle import EMPTY_ROOT
from gateway.audit.note import (
    Ed25519Signer,
    InvalidSignatureError,
    UnverifiedNoteError,
    parse_note,
    sign_note,
)

SPEC_ROOT_B64 = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
SPEC_TEXT = f"example.com/behind-the-sofa\n20852163\n{SPEC_ROOT_B64}\n"
SPEC_NOTE = (
    SPEC_TEXT
    + "\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7"
    "u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)
# c2sp.org/tlog-witness, add-checkpoint example: the same checkpoint with two log keys.
WITNESS_SPEC_NOTE = (
    SPEC_NOTE
    + "— example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+4"
    "9/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n"
)
ROOT = bytes(range(32))
ROOT_B64 = base64.b64encode(ROOT).decode()


def test_spec_example_parses_and_formats_back() -> None:
    cp = parse_checkpoint(SPEC_TEXT)
    assert cp.origin == "example.com/behind-the-sofa"
    assert cp.size == 20852163
    assert cp.root_hash == base64.b64decode(SPEC_ROOT_B64)
    assert cp.extensions == ()
    assert format_checkpoint(cp) == cp.to_text() == SPEC_TEXT


def test_spec_example_note_structure() -> None:
    note = parse_note(WITNESS_SPEC_NOTE)
    assert note.text == SPEC_TEXT
    assert [(s.name, s.key_id) for s in note.signatures] == [
        ("example.com/behind-the-sofa", 0x033DE0AE),
        ("example.com/behind-the-sofa", 0xA292EA05),
    ]
    # We hold neither of the spec's log keys: both signatures are unknown, so refused.
    other = Ed25519Signer.generate("example.com/behind-the-sofa")
    with pytest.raises(UnverifiedNoteError, match="no signature from a trusted key"):
        open_checkpoint(WITNESS_SPEC_NOTE, [other.verifier()])


def test_signed_checkpoint_roundtrip() -> None:
    signer = Ed25519Signer.generate("agency.example/audit")
    body = Checkpoint(origin="agency.example/audit", size=7, root_hash=ROOT)
    note = sign_note(format_checkpoint(body), [signer])
    cp, sigs = open_checkpoint(note, [signer.verifier()], origin="agency.example/audit")
    assert cp == body
    assert [s.key_id for s in sigs] == [signer.key_id]
    # str notes are accepted as well as bytes
    assert open_checkpoint(note.decode(), [signer.verifier()])[0] == body


def test_extension_lines_roundtrip() -> None:
    cp = Checkpoint("o", 0, EMPTY_ROOT, ("ext one", "— ext two"))
    text = format_checkpoint(cp)
    assert text == f"o\n0\n{base64.b64encode(EMPTY_ROOT).decode()}\next one\n— ext two\n"
    assert parse_checkpoint(text) == cp
    assert Checkpoint("o", 0, EMPTY_ROOT, ["a"]).extensions == ("a",)  # type: ignore[arg-type]


def test_open_checkpoint_refusals() -> None:
    signer = Ed25519Signer.generate("agency.example/audit")
    note = sign_note(format_checkpoint(Checkpoint("agency.example/audit", 7, ROOT)), [signer])
    with pytest.raises(
        CheckpointError, match=r"origin 'agency\.example/audit' is not the expected 'x'"
    ):
        open_checkpoint(note, [signer.verifier()], origin="x")
    stranger = Ed25519Signer.generate("agency.example/audit")
    with pytest.raises(UnverifiedNoteError):
        open_checkpoint(note, [stranger.verifier()])
    with pytest.raises(InvalidSignatureError):
        open_checkpoint(note.replace(b"\n7\n", b"\n8\n"), [signer.verifier()])
    with pytest.raises(UnverifiedNoteError):
        open_checkpoint(note, [])
    # A signed text that is not a checkpoint is refused after verification.
    junk = sign_note("agency.example/audit\nseven\n" + ROOT_B64 + "\n", [signer])
    with pytest.raises(CheckpointError, match="line 2: tree size 'seven'"):
        open_checkpoint(junk, [signer.verifier()])


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "must end with a newline"),
        (f"o\n1\n{ROOT_B64}", "must end with a newline"),
        ("o\n1\n", "has 2 lines, need origin, tree size and root hash"),
        (f"\n1\n{ROOT_B64}\n", "line 1 is empty"),
        (f"o\n\n{ROOT_B64}\n", "line 2 is empty"),
        ("o\n1\n\n", "line 3 is empty"),
        (f"o\n1\n{ROOT_B64}\n\n", "line 4 is empty"),
        (f"o\n1\n{ROOT_B64}\n\next\n", "line 4 is empty"),
        (f"o\n01\n{ROOT_B64}\n", "line 2: tree size '01' is not a decimal"),
        (f"o\n00\n{ROOT_B64}\n", "line 2: tree size '00'"),
        (f"o\n-1\n{ROOT_B64}\n", "line 2: tree size '-1'"),
        (f"o\n+1\n{ROOT_B64}\n", "line 2: tree size"),
        (f"o\n 1\n{ROOT_B64}\n", "line 2: tree size"),
        (f"o\n1 \n{ROOT_B64}\n", "line 2: tree size"),
        (f"o\n1_000\n{ROOT_B64}\n", "line 2: tree size"),
        (f"o\n0x10\n{ROOT_B64}\n", "line 2: tree size"),
        (f"o\n\u0661\n{ROOT_B64}\n", "line 2: tree size"),  # ARABIC-INDIC DIGIT ONE
        (f"o\n{1 << 64}\n{ROOT_B64}\n", "line 2: tree size 18446744073709551616 does not fit"),
        ("o\n1\nnot base64!\n", "line 3: root hash is not valid base64"),
        (f"o\n1\n{ROOT_B64.rstrip('=')}\n", "line 3: root hash is not valid base64"),
        (
            "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=\n",
            "line 3: root hash is not canonical",
        ),
        (f"o\n1\n{base64.b64encode(ROOT[:31]).decode()}\n", "line 3: root hash is 31 bytes"),
        (f"o\n1\n{base64.b64encode(ROOT + b'x').decode()}\n", "line 3: root hash is 33 bytes"),
        (f"o\r\n1\n{ROOT_B64}\n", "line 1 contains control character U\\+000D"),
        (f"o\n1\n{ROOT_B64}\next\there\n", "line 4 contains control character U\\+0009"),
        (f"o\n1\r\n{ROOT_B64}\n", "line 2 contains control character"),
    ],
)
def test_malformed_checkpoint_lines_are_refused(text: str, why: str) -> None:
    with pytest.raises(CheckpointError, match=why):
        parse_checkpoint(text)


def test_size_limits() -> None:
    big = parse_checkpoint(f"o\n{MAX_TREE_SIZE}\n{ROOT_B64}\n")
    assert big.size == (1 << 64) - 1
    assert parse_checkpoint(f"o\n0\n{ROOT_B64}\n").size == 0


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"origin": ""}, "origin must not be empty"),
        ({"origin": "a\nb"}, "origin contains control character U\\+000A"),
        ({"size": -1}, "tree size -1 is outside"),
        ({"size": 1 << 64}, "outside 0..2\\*\\*64-1"),
        ({"size": True}, "not an integer"),
        ({"root_hash": ROOT[:31]}, "root hash must be 32 bytes"),
        ({"root_hash": ROOT_B64}, "root hash must be 32 bytes"),
        ({"extensions": ("",)}, "extension line 4 must not be empty"),
        ({"extensions": ("ok", "a\nb")}, "extension line 5 contains control character"),
    ],
)
def test_checkpoint_constructor_refuses_unencodable_heads(
    kwargs: dict[str, object], why: str
) -> None:
    fields: dict[str, object] = {"origin": "o", "size": 1, "root_hash": ROOT}
    fields.update(kwargs)
    with pytest.raises(CheckpointError, match=why):
        Checkpoint(**fields)  # type: ignore[arg-type]
