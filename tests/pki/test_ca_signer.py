"""The CA signs through `CertificateSigner`; a key that is not ca.crt's is caught at once.

A CA key moved into an HSM could be the wrong one (another label, another token): every
certificate it signed would fail every handshake later. `issue_node_certificate` checks
each certificate against ca.crt before anything is written.
"""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.pki.ca import LocalCaKey, create_ca, issue_node_certificate


def test_a_certificate_signed_by_another_key_than_ca_crt_is_refused() -> None:
    ca = create_ca("ca.example")
    other = LocalCaKey(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(ValueError, match=r"not the key of ca\.crt"):
        issue_node_certificate(ca, "ca.example", "bank-a", signer=other)


def test_the_ca_signer_and_the_pem_key_issue_the_same_way() -> None:
    ca = create_ca("ca.example")
    issued = issue_node_certificate(
        ca, "ca.example", "bank-a", signer=LocalCaKey.from_pem(ca.key_pem)
    )
    cert = x509.load_pem_x509_certificate(issued.cert_pem)
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.cert_pem))
