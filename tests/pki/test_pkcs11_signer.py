"""Signing with keys that stay in an HSM (PKCS#11, CKM_EDDSA) against SoftHSM2.

What the HSM signs must pass the verifiers the broker and nodes already run, unchanged:
envelopes (`EnvelopeVerifier`), audit checkpoints (`open_checkpoint`, `verify_log`,
`verify_tlog_proof`) and the signed directory (`verify_directory`). The attacker's
cheapest moves against an HSM-held key come first: ask the token for the key's value,
and sign with a key of one's own under the member's name.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pkcs11
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nacl.public import PrivateKey as SealingPrivateKey
from pkcs11 import Attribute, KeyType, ObjectClass

from gateway.audit.checkpoint import open_checkpoint
from gateway.audit.log import AuditLog, canonical_json
from gateway.audit.merkle import leaf_hash
from gateway.audit.note import Ed25519Signer, Ed25519Verifier
from gateway.audit.source import stored_checkpoints, stored_entries
from gateway.audit.tlog_proof import verify_tlog_proof
from gateway.audit.verify import verify_log
from gateway.db import make_engine
from gateway.envelope.build import Draft
from gateway.envelope.verify import EnvelopeVerifier, Rejected, Verified
from gateway.migrate import upgrade
from gateway.pki.directory import (
    Directory,
    DirectoryError,
    Member,
    SignedDirectoryBlob,
    sign_directory,
    verify_directory,
)
from gateway.pki.key_files import load_signing_key
from gateway.pki.keys import NodeKeys
from gateway.pki.pkcs11_signer import (
    Pkcs11Ed25519Signer,
    Pkcs11Error,
    Pkcs11Uri,
    generate_hsm_key,
)
from tests.pki.softhsm import SPARE_TOKEN, SoftHsm

ORIGIN = "hsm.example/gateway-audit"


def hsm_key(softhsm: SoftHsm, label: str) -> Pkcs11Ed25519Signer:
    generate_hsm_key(Pkcs11Uri.parse(softhsm.uri(label)))
    return Pkcs11Ed25519Signer.from_uri(softhsm.uri(label))


def member(node_id: str, role: str, sign_key: bytes) -> Member:
    return Member(
        node_id=node_id,
        role=role,
        agency=node_id,
        endpoint="",
        sign_key=sign_key,
        seal_key=bytes(SealingPrivateKey.generate().public_key),
    )


def test_the_token_never_hands_out_the_private_key(softhsm: SoftHsm) -> None:
    public = hsm_key(softhsm, "no-export").public_key()
    lib = pkcs11.lib(str(softhsm.module))
    token = lib.get_token(token_label=softhsm.token)
    with token.open() as session:  # the process is logged in already (by the signer)
        key = session.get_key(
            object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.EC_EDWARDS, label="no-export"
        )
        assert key[Attribute.SENSITIVE] is True
        assert key[Attribute.EXTRACTABLE] is False
        with pytest.raises(pkcs11.PKCS11Error):  # the cheapest move: read CKA_VALUE
            key[Attribute.VALUE]
    assert len(public.public_bytes_raw()) == 32


def test_a_node_envelope_signed_in_the_hsm_passes_the_unchanged_verifier(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    (tmp_path / "sign.key").write_text(softhsm.uri("police-1-sign") + "\n")
    generate_hsm_key(Pkcs11Uri.parse(softhsm.uri("police-1-sign")))
    sealing = SealingPrivateKey.generate()
    (tmp_path / "seal.key").write_text(bytes(sealing).hex() + "\n")
    keys = NodeKeys.load(tmp_path)  # how a node reads its bundle
    assert isinstance(keys.signing, Pkcs11Ed25519Signer)
    bank_seal = SealingPrivateKey.generate()
    directory = Directory(
        "hsm.example",
        1,
        (
            member("police-1", "police", keys.sign_public),
            Member("bank-a", "bank", "bank-a", "", b"\x01" * 32, bytes(bank_seal.public_key)),
        ),
    )
    verifier = EnvelopeVerifier(lambda: directory)
    draft = Draft(
        sender="police-1",
        recipients=["bank-a"],
        kind="MATCH_QUERY",
        payload=b'{"batch": 1}',
        case_ref="C-7",
        purpose="fraud",
        legal_basis="art. 11",
        seal_to=bytes(bank_seal.public_key),
    )
    envelope = draft.sign(keys.signing)
    verified = verifier.verify(envelope, peer_node_id="police-1", recipient="bank-a")
    assert isinstance(verified, Verified), verified

    impostor = Ed25519PrivateKey.generate()  # the cheapest forgery: a key of one's own
    forged = Draft(**draft.__dict__).sign(impostor)
    refused = verifier.verify(forged, peer_node_id="police-1", recipient="bank-a")
    assert isinstance(refused, Rejected) and refused.check == "signature"
    tampered = envelope.__class__()
    tampered.CopyFrom(envelope)
    tampered.payload = b'{"batch": 2}'
    assert not verifier.verify(tampered, peer_node_id="police-1", recipient="bank-a")


def test_checkpoints_signed_in_the_hsm_pass_the_unchanged_log_verifiers(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    key = hsm_key(softhsm, "log-key")
    engine = make_engine(f"sqlite:///{tmp_path / 'broker.db'}")
    upgrade(engine, "broker")
    log = AuditLog(engine, Ed25519Signer(ORIGIN, key), ORIGIN)
    entries = [{"type": "decision", "at_ms": 1000 + i, "kind": "PING", "n": i} for i in range(5)]
    for entry in entries:
        log.run(lambda _session, append, entry=entry: append(entry))
    note = log.checkpoint()
    receipt = log.receipt(2)
    log.close()

    trusted = Ed25519Verifier(ORIGIN, key.public_key().public_bytes_raw())
    checkpoint, _ = open_checkpoint(note, [trusted], origin=ORIGIN)
    assert checkpoint.size == 5
    report = verify_log(stored_entries(engine), stored_checkpoints(engine), [trusted], ORIGIN)
    assert report.ok and report.covered == 5, report.problems
    leaf = leaf_hash(canonical_json(entries[2]))
    assert hashlib.sha256(b"\x00" + canonical_json(entries[2])).digest() == leaf
    proven = verify_tlog_proof(receipt, leaf, [trusted], origin=ORIGIN)
    assert proven.proof.index == 2 and proven.checkpoint.size == 5

    other = Ed25519Verifier(ORIGIN, Ed25519PrivateKey.generate().public_key().public_bytes_raw())
    report = verify_log(stored_entries(engine), stored_checkpoints(engine), [other], ORIGIN)
    assert not report.ok  # the same log under another key is not vouched for
    engine.dispose()


def test_a_directory_signed_in_the_hsm_verifies_and_a_changed_one_does_not(
    softhsm: SoftHsm,
) -> None:
    key = hsm_key(softhsm, "directory-key")
    directory = Directory("hsm.example", 3, (member("bank-a", "bank", b"\x02" * 32),))
    blob = sign_directory(directory, key)
    assert verify_directory(blob, key.public_key()) == directory
    grown = directory.with_member(member("rogue", "police", b"\x03" * 32)).to_bytes()
    with pytest.raises(DirectoryError, match="signature"):
        verify_directory(SignedDirectoryBlob(grown, blob.signature), key.public_key())


def test_a_key_file_naming_a_missing_label_or_wrong_pin_is_a_clear_error(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    path = tmp_path / "sign.key"
    path.write_text(softhsm.uri("nobody") + "\n")
    with pytest.raises(Pkcs11Error, match="no single Ed25519 key pair labelled 'nobody'"):
        load_signing_key(path)
    wrong_pin = tmp_path / "wrong-pin"
    wrong_pin.write_text("000000\n")
    spare = softhsm.uri("directory", token=SPARE_TOKEN)
    path.write_text(spare.replace(str(softhsm.pin_file), str(wrong_pin)))
    with pytest.raises(Pkcs11Error, match="check the module path, token label and PIN"):
        load_signing_key(path)


def test_a_second_key_under_a_used_label_is_refused(softhsm: SoftHsm) -> None:
    hsm_key(softhsm, "twice")
    with pytest.raises(Pkcs11Error, match="already holds an object labelled 'twice'"):
        generate_hsm_key(Pkcs11Uri.parse(softhsm.uri("twice")))


def test_a_pin_written_into_the_uri_is_refused() -> None:
    with pytest.raises(Pkcs11Error, match="PIN in the URI is refused"):
        Pkcs11Uri.parse("pkcs11:token=t;object=o?module-path=/x.so&pin-value=1234")
    with pytest.raises(Pkcs11Error, match="needs module-path"):
        Pkcs11Uri.parse("pkcs11:token=t;object=o")
    assert os.environ.get("GATEWAY_HSM_PIN") is None
