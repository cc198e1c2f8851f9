"""C2SP signed notes: the spec's examples, Go's published vectors, and refusals.

Sources of expected values (never the code under test):
- SPEC: c2sp.org/signed-note@v1.0.0 (copy in the shared specs folder), its
  "Verifier keys / Example" vkey and note, and its opening example note.
- GO: golang.org/x/mod sumdb/note/note_test.go (the reference implementation's
  tests; BSD-style licence): the PeterNeumann / EnochRoot keys, notes and signatures.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.note import (
    MAX_SIGNATURES,
    SIG_TYPE_ED25519,
    AmbiguousKeyError,
    Ed25519Signer,
    Ed25519Verifier,
    InvalidSignatureError,
    MalformedKeyError,
    MalformedNoteError,
    NoteSignature,
    NoteSigner,
    UnverifiedNoteError,
    b64decode_strict,
    compute_key_id,
    format_vkey,
    is_valid_key_name,
    open_note,
    parse_note,
    parse_vkey,
    sign_note,
    signature_line,
)

# SPEC, "Verifier keys / Example".
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_TEXT = "This is an example message.\n"
SPEC_SIG_LINE = (
    "— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYj"
    "OBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)
SPEC_NOTE = SPEC_TEXT + "\n" + SPEC_SIG_LINE

# SPEC, the opening example: a text with an empty line of its own.
QUASIMODO_TEXT = (
    "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n"
)
QUASIMODO_NOTE = (
    QUASIMODO_TEXT + "\n— quasimodo.example/salvatore "
    "NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n"
)

# GO, TestSign / TestOpen / TestNewVerifier.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfq"
    "dngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGw"
    "nWLox33WWd1RvMc+QQ=\n"
)


def _go_signer() -> Ed25519Signer:
    """GO's skey is PRIVATE+KEY+name+id+base64(0x01 || 32-byte seed)."""
    _, _, name, key_id, b64 = GO_SKEY.split("+", 4)
    raw = base64.b64decode(b64)
    assert raw[0] == SIG_TYPE_ED25519
    signer = Ed25519Signer.from_seed(name, raw[1:])
    assert signer.key_id == int(key_id, 16)
    return signer


PETER = Ed25519Verifier.from_vkey(PETER_VKEY)
ENOCH = Ed25519Verifier.from_vkey(ENOCH_VKEY)


# -- the spec's example -----------------------------------------------------------


def test_spec_vkey_parses_and_its_key_id_is_the_recommended_hash() -> None:
    key = parse_vkey(SPEC_VKEY)
    assert (key.name, key.key_id, key.sig_type) == ("example.com/foo", 0x530D903A, 0x01)
    assert len(key.public_key) == 32
    assert compute_key_id(key.name, key.sig_type, key.public_key) == 0x530D903A
    verifier = Ed25519Verifier.from_vkey(SPEC_VKEY)
    assert verifier.key_id == 0x530D903A
    assert verifier.vkey == SPEC_VKEY
    assert format_vkey(key.name, key.sig_type, key.public_key) == SPEC_VKEY


def test_spec_example_note_verifies() -> None:
    verifier = Ed25519Verifier.from_vkey(SPEC_VKEY)
    for note in (SPEC_NOTE, SPEC_NOTE.encode()):
        text, sigs = open_note(note, [verifier])
        assert text == SPEC_TEXT
        assert [(s.name, s.key_id) for s in sigs] == [("example.com/foo", 0x530D903A)]
        assert sigs[0].line() == SPEC_SIG_LINE


def test_spec_opening_example_parses_with_an_empty_line_in_the_text() -> None:
    note = parse_note(QUASIMODO_NOTE)
    assert note.text == QUASIMODO_TEXT
    (sig,) = note.signatures
    assert sig.name == "quasimodo.example/salvatore"
    assert sig.key_id == 0x367BA04B  # first four bytes of the spec's base64 blob
    assert len(sig.signature) == 64
    assert sig.line() == QUASIMODO_NOTE[len(QUASIMODO_TEXT) + 1 :]
    with pytest.raises(UnverifiedNoteError, match=r"quasimodo\.example/salvatore\+367ba04b"):
        open_note(QUASIMODO_NOTE, [Ed25519Verifier.from_vkey(SPEC_VKEY)])


def test_note_signed_by_another_key_is_refused() -> None:
    # Same name, different key: the key ID differs, so the signature is from an
    # unknown key, which is ignored, which leaves no verified signature.
    other = Ed25519Signer.generate("example.com/foo")
    note = sign_note(SPEC_TEXT, [other])
    with pytest.raises(UnverifiedNoteError, match="no signature from a trusted key") as err:
        open_note(note, [Ed25519Verifier.from_vkey(SPEC_VKEY)])
    assert [(s.name, s.key_id) for s in err.value.unverified] == [("example.com/foo", other.key_id)]


def test_tampered_text_is_refused() -> None:
    verifier = Ed25519Verifier.from_vkey(SPEC_VKEY)
    for tampered in (
        SPEC_NOTE.replace("example", "exemplary", 1),
        "X" + SPEC_NOTE,
        SPEC_NOTE.replace("message.\n", "message!\n", 1),
        "Extra line.\n" + SPEC_NOTE,
    ):
        with pytest.raises(InvalidSignatureError, match=r"example.com/foo\+530d903a"):
            open_note(tampered, [verifier])


def test_tampered_signature_is_refused() -> None:
    blob = bytearray(base64.b64decode(SPEC_SIG_LINE.split()[-1]))
    blob[10] ^= 1
    note = SPEC_TEXT + "\n— example.com/foo " + base64.b64encode(bytes(blob)).decode() + "\n"
    with pytest.raises(InvalidSignatureError) as err:
        open_note(note, [Ed25519Verifier.from_vkey(SPEC_VKEY)])
    assert (err.value.name, err.value.key_id) == ("example.com/foo", 0x530D903A)


def test_unknown_keys_are_ignored_even_sharing_a_name_or_an_id() -> None:
    verifier = Ed25519Verifier.from_vkey(SPEC_VKEY)
    garbage = base64.b64encode(b"\x00" * 68).decode()
    same_name = base64.b64encode((0x530D903B).to_bytes(4, "big") + b"\x00" * 64).decode()
    same_id = base64.b64encode((0x530D903A).to_bytes(4, "big") + b"\x00" * 64).decode()
    stranger = Ed25519Signer.generate("stranger.example/key")
    note = (
        SPEC_TEXT
        + "\n"
        + f"— unknown.example {garbage}\n"
        + f"— example.com/foo {same_name}\n"  # known name, other ID: not our key
        + f"— example.com/bar {same_id}\n"  # known ID, other name: not our key
        + signature_line(SPEC_TEXT, stranger)
        + SPEC_SIG_LINE
    )
    text, sigs = open_note(note, [verifier])
    assert text == SPEC_TEXT
    assert [(s.name, s.key_id) for s in sigs] == [("example.com/foo", 0x530D903A)]


# -- Go's reference vectors -------------------------------------------------------


def test_go_signer_produces_the_published_note() -> None:
    signer = _go_signer()
    assert signer.vkey == PETER_VKEY
    assert signer.verifier() == PETER
    assert sign_note(GO_TEXT, [signer]) == (GO_TEXT + "\n" + PETER_SIG).encode()
    assert signature_line(GO_TEXT, signer) == PETER_SIG


def test_go_open_one_known_one_unknown() -> None:
    text, sigs = open_note(GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG, [PETER])
    assert text == GO_TEXT
    assert [(s.name, s.key_id) for s in sigs] == [("PeterNeumann", 0xC74F20A3)]


def test_go_open_both_known() -> None:
    _, sigs = open_note(GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG, [PETER, ENOCH])
    assert [(s.name, s.key_id) for s in sigs] == [
        ("PeterNeumann", 0xC74F20A3),
        ("EnochRoot", 0xAF0CFE78),
    ]


def test_go_open_no_trusted_keys_is_refused() -> None:
    with pytest.raises(UnverifiedNoteError) as err:
        open_note(GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG, [])
    assert [s.name for s in err.value.unverified] == ["PeterNeumann", "EnochRoot"]


def test_go_invalid_signature_from_known_key() -> None:
    bad = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(
        InvalidSignatureError, match=r"^invalid signature for key PeterNeumann\+c74f20a3$"
    ):
        open_note(GO_TEXT + "\n" + bad, [PETER])


def test_go_duplicates_verified_once_and_bad_unknown_ignored() -> None:
    bad_enoch = ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:]
    note = GO_TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + bad_enoch
    _, sigs = open_note(note, [PETER])
    assert [s.name for s in sigs] == ["PeterNeumann"]


def test_go_too_many_signatures() -> None:
    assert MAX_SIGNATURES >= 16  # the spec's floor
    open_note(GO_TEXT + "\n" + PETER_SIG * 16, [PETER])
    open_note(GO_TEXT + "\n" + PETER_SIG * MAX_SIGNATURES, [PETER])
    with pytest.raises(MalformedNoteError, match="101 signatures, limit 100"):
        open_note(GO_TEXT + "\n" + PETER_SIG * 101, [PETER])


@pytest.mark.parametrize(
    ("note", "why"),
    [
        (GO_TEXT, "no blank line"),
        (GO_TEXT + "\n", "no signature lines"),
        (GO_TEXT + "\n" + PETER_SIG[:-1], "does not end with a newline"),
        ("\x01" + GO_TEXT + "\n" + PETER_SIG, "control character U\\+0001 at offset 0"),
        (b"\xff" + (GO_TEXT + "\n" + PETER_SIG).encode(), "not valid UTF-8 \\(byte 0\\)"),
        (
            GO_TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Bad Name"),
            "signature line 1 is not valid base64",
        ),
        (GO_TEXT + "\n" + PETER_SIG + "Unexpected line.\n", "signature line 2 does not start"),
        (GO_TEXT.replace("\n", "\r\n") + "\n" + PETER_SIG, "control character U\\+000D"),
        (GO_TEXT + "\n" + PETER_SIG.replace("AM=", "AN="), "signature line 1 is not canonical"),
        (GO_TEXT + "\n" + PETER_SIG.replace("AM=", "AM"), "signature line 1 is not valid base64"),
        (GO_TEXT + "\n— PeterNeumann AAAA\n", "shorter than key ID \\+ signature"),
        (GO_TEXT + "\n—PeterNeumann x08g\n", "em dash"),
        (GO_TEXT + "\n" + PETER_SIG + "\n", "no signature lines after its last blank line"),
    ],
)
def test_go_and_other_malformed_notes(note: str | bytes, why: str) -> None:
    with pytest.raises(MalformedNoteError, match=why):
        open_note(note, [PETER])


def test_go_vkey_manglings_are_refused() -> None:
    assert Ed25519Verifier.from_vkey(PETER_VKEY) == PETER
    b = PETER_VKEY
    for i in range(len(b) + 1):
        for j in range(i + 1, len(b) + 1):
            if (i, j) != (0, len(b)):
                with pytest.raises(MalformedKeyError):
                    Ed25519Verifier.from_vkey(b[i:j])
    for i in range(len(b)):
        mangled = b[:i] + chr(ord(b[i]) + 1) + b[i + 1 :]
        with pytest.raises(MalformedKeyError):
            Ed25519Verifier.from_vkey(mangled)
    # wrong length key, and unknown algorithm, each with an adjusted key hash
    with pytest.raises(MalformedKeyError, match=r"not (valid|canonical) base64|32 bytes"):
        Ed25519Verifier.from_vkey(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        )
    with pytest.raises(MalformedKeyError, match="signature type 0x65, want 0x01"):
        Ed25519Verifier.from_vkey(
            "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
        )


def test_vkey_errors_name_the_problem() -> None:
    with pytest.raises(MalformedKeyError, match="name\\+keyid\\+base64key"):
        parse_vkey("PeterNeumann")
    with pytest.raises(MalformedKeyError, match="'C74F20A3' is not 8 lowercase hex"):
        parse_vkey(PETER_VKEY.replace("c74f20a3", "C74F20A3"))
    with pytest.raises(MalformedKeyError, match="does not match the key \\(computed c74f20a3\\)"):
        Ed25519Verifier.from_vkey(PETER_VKEY.replace("c74f20a3", "c74f20a4"))
    with pytest.raises(MalformedKeyError, match="too short"):
        parse_vkey("a+00000000+AQ==")


# -- keys, names and signers -------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["a", "", "a b", "a+b", "a\u00a0b", "a\u2003b", "a\tb", "a\nb", "a\x01b"]
)
def test_key_names(name: str) -> None:
    valid = name == "a"
    assert is_valid_key_name(name) is valid
    if not valid:
        with pytest.raises(MalformedKeyError, match="invalid key name"):
            Ed25519Signer.generate(name)


def test_verifier_and_signer_keys() -> None:
    key = Ed25519PrivateKey.generate()
    signer: NoteSigner = Ed25519Signer("log.example/a", key)
    assert isinstance(signer, Ed25519Signer)
    verifier = Ed25519Verifier.from_vkey(signer.vkey)
    assert verifier == signer.verifier()
    assert verifier.key_id == signer.key_id
    assert verifier.verify(b"msg", signer.sign(b"msg"))
    assert not verifier.verify(b"msg", signer.sign(b"msg")[:63])
    assert not verifier.verify(b"msh", signer.sign(b"msg"))
    with pytest.raises(MalformedKeyError, match="32 bytes"):
        Ed25519Verifier("log.example/a", b"\x00" * 31)
    with pytest.raises(MalformedKeyError, match="seed must be 32 bytes"):
        Ed25519Signer.from_seed("log.example/a", b"\x00" * 31)


@dataclass(frozen=True)
class _FixedIdVerifier:
    """A verifier claiming any key ID: how a real collision would look."""

    name: str
    key_id: int
    tag: str

    def verify(self, message: bytes, signature: bytes) -> bool:
        return True


def test_ambiguous_trusted_keys_are_refused_only_when_used() -> None:
    a = _FixedIdVerifier("EnochRoot", 0xAF0CFE78, "a")
    b = _FixedIdVerifier("EnochRoot", 0xAF0CFE78, "b")
    with pytest.raises(AmbiguousKeyError, match="EnochRoot\\+af0cfe78"):
        open_note(GO_TEXT + "\n" + ENOCH_SIG, [a, PETER, b])
    open_note(GO_TEXT + "\n" + PETER_SIG, [a, PETER, b])  # unused: no harm
    open_note(GO_TEXT + "\n" + ENOCH_SIG, [ENOCH, ENOCH])  # the same key twice is one key


def test_sign_note_refuses_bad_text_and_no_signers() -> None:
    signer = _go_signer()
    with pytest.raises(MalformedNoteError, match="end with a newline"):
        sign_note("abc", [signer])
    with pytest.raises(MalformedNoteError, match="control character U\\+0007 at offset 1"):
        sign_note("a\x07\n", [signer])
    with pytest.raises(ValueError, match="at least one signer"):
        sign_note(GO_TEXT, [])


def test_multi_signer_note_roundtrip() -> None:
    a, b = Ed25519Signer.generate("a.example/log"), Ed25519Signer.generate("b.example/log")
    note = sign_note(GO_TEXT, [a, b])
    parsed = parse_note(note)
    assert parsed.text == GO_TEXT
    assert [s.name for s in parsed.signatures] == ["a.example/log", "b.example/log"]
    _, sigs = open_note(note, [b.verifier()])
    assert sigs == [parsed.signatures[1]]
    assert isinstance(sigs[0], NoteSignature)


def test_strict_base64() -> None:
    assert b64decode_strict("AAEC", "x") == b"\x00\x01\x02"
    for bad, why in [
        ("AAE", "not valid"),
        ("AAF=", "not canonical"),
        ("AA\nEC", "not valid"),
        ("é", "not valid"),
    ]:
        with pytest.raises(ValueError, match=f"field is {why}"):
            b64decode_strict(bad, "field")
