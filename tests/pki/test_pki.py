"""The consortium PKI: certificates name nodes, and only a signed directory is believed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.cli.pki_cmd import oprf_key_pair
from gateway.pki.ca import certificate_spiffe_ids, node_id_from_spiffe
from gateway.pki.directory import (
    DirectoryError,
    SignedDirectoryBlob,
    sign_directory,
    verify_directory,
)
from gateway.pki.store import PkiError, PkiFolder


@pytest.fixture
def pki(tmp_path: Path) -> PkiFolder:
    folder = PkiFolder(tmp_path / "pki")
    folder.init("example.org")
    return folder


def test_issued_certificate_names_node_by_spiffe_uri_and_chains_to_ca(pki: PkiFolder) -> None:
    bundle = pki.issue("bank-a", "bank", endpoint="127.0.0.1:1", oprf_key_factory=oprf_key_pair)
    pem = bundle.tls_cert.read_bytes()
    assert certificate_spiffe_ids(pem) == ["spiffe://example.org/node/bank-a"]
    cert = x509.load_pem_x509_certificate(pem)
    ca = x509.load_pem_x509_certificate((pki.root / "ca.crt").read_bytes())
    cert.verify_directly_issued_by(ca)
    assert bundle.oprf_key.exists()


def test_directory_lists_issued_nodes_with_their_keys(pki: PkiFolder) -> None:
    pki.issue("police-1", "police", agency="Police")
    bundle = pki.issue("bank-a", "bank", oprf_key_factory=oprf_key_pair)
    directory = pki.directory()
    assert [m.node_id for m in directory.members] == ["bank-a", "police-1"]
    bank = directory.get("bank-a")
    assert bank is not None and bank.role == "bank"
    assert bank.sign_key == bundle.keys().sign_public
    assert len(bank.oprf_key) == 32
    assert directory.get("police-1").oprf_key == b""  # type: ignore[union-attr]
    assert directory.serial == 2


def test_directory_with_forged_signature_is_refused(pki: PkiFolder) -> None:
    pki.issue("police-1", "police")
    blob = pki.signed_directory()
    verify_key = pki.directory_key().public_key()
    forged = sign_directory(replace(pki.directory(), serial=99), Ed25519PrivateKey.generate())
    with pytest.raises(DirectoryError, match="signature does not verify"):
        verify_directory(forged, verify_key)
    tampered = SignedDirectoryBlob(blob.directory.replace(b"police", b"polica"), blob.signature)
    with pytest.raises(DirectoryError, match="signature does not verify"):
        verify_directory(tampered, verify_key)


def test_older_directory_is_refused(pki: PkiFolder) -> None:
    pki.issue("police-1", "police")
    old = pki.signed_directory()
    pki.issue("bank-a", "bank", oprf_key_factory=oprf_key_pair)
    with pytest.raises(DirectoryError, match="older"):
        verify_directory(old, pki.directory_key().public_key(), min_serial=2)


def test_unknown_role_and_bad_node_id_are_refused(pki: PkiFolder) -> None:
    with pytest.raises(PkiError, match="unknown role"):
        pki.issue("x", "spy")
    with pytest.raises(PkiError, match="node id"):
        pki.issue("a/b", "police")


def test_revocation_marks_member_revoked(pki: PkiFolder) -> None:
    pki.issue("police-1", "police")
    pki.revoke("police-1")
    member = pki.directory().get("police-1")
    assert member is not None and not member.active


def test_spiffe_parsing_is_strict() -> None:
    assert node_id_from_spiffe("spiffe://example.org/node/bank-a", "example.org") == "bank-a"
    assert node_id_from_spiffe("spiffe://other.org/node/bank-a", "example.org") is None
    assert node_id_from_spiffe("spiffe://example.org/node/", "example.org") is None
    assert node_id_from_spiffe("spiffe://example.org/node/a/b", "example.org") is None
