"""The consortium certificate authority: it issues each node's mTLS certificate.

A node's identity on the wire is the URI SAN ``spiffe://<consortium>/node/<node-id>`` of
its certificate; the broker and nodes read it from the TLS session, never from a header.
TLS keys are ECDSA P-256 because every gRPC TLS stack accepts them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SPIFFE_PREFIX = "spiffe://"


def spiffe_id(consortium: str, node_id: str) -> str:
    """The URI that names a node in its certificate."""
    return f"{SPIFFE_PREFIX}{consortium}/node/{node_id}"


def node_id_from_spiffe(uri: str, consortium: str) -> str | None:
    """The node id in a SPIFFE URI of this consortium, or None for any other URI."""
    prefix = f"{SPIFFE_PREFIX}{consortium}/node/"
    if not uri.startswith(prefix):
        return None
    node_id = uri[len(prefix) :]
    return node_id if node_id and "/" not in node_id else None


LOOPBACK_DNS = "localhost"
LOOPBACK_IPS = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))


def has_loopback_names(cert_pem: bytes) -> bool:
    """Whether a certificate names localhost or a loopback address (issued with --dev)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return LOOPBACK_DNS in san.get_values_for_type(x509.DNSName) or any(
        ip.is_loopback for ip in san.get_values_for_type(x509.IPAddress)
    )


@dataclass(frozen=True)
class IssuedCertificate:
    """A private key and the certificate the CA issued for it, both PEM."""

    key_pem: bytes
    cert_pem: bytes


class CertificateSigner(Protocol):
    """The CA's private key, wherever it is kept: it signs certificates (ECDSA, SHA-256)."""

    def public_key(self) -> ec.EllipticCurvePublicKey: ...

    def sign_certificate(self, builder: x509.CertificateBuilder) -> x509.Certificate: ...


@dataclass(frozen=True)
class LocalCaKey:
    """A CA key in memory (read from ``ca.key``)."""

    key: ec.EllipticCurvePrivateKey

    @classmethod
    def from_pem(cls, key_pem: bytes) -> LocalCaKey:
        key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("consortium CA key is not an ECDSA key")
        return cls(key)

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.key.public_key()

    def sign_certificate(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        return builder.sign(self.key, hashes.SHA256())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def create_ca(
    consortium: str, *, days: int = 3650, signer: CertificateSigner | None = None
) -> IssuedCertificate:
    """A self-signed root for the consortium, allowed to sign node certificates only.

    With `signer` (a key kept in an HSM), the root is made for that key and
    `key_pem` is empty; otherwise a new key is made and returned as PKCS#8 PEM.
    """
    local = LocalCaKey(ec.generate_private_key(ec.SECP256R1())) if signer is None else None
    ca_key: CertificateSigner = signer if signer is not None else _must(local)
    public = ca_key.public_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, consortium),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{consortium} consortium CA"),
        ]
    )
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    cert = ca_key.sign_certificate(builder)
    key_pem = _key_pem(local.key) if local is not None else b""
    return IssuedCertificate(key_pem, cert.public_bytes(serialization.Encoding.PEM))


def issue_node_certificate(
    ca: IssuedCertificate,
    consortium: str,
    node_id: str,
    *,
    hostnames: tuple[str, ...] = (),
    loopback: bool = False,
    days: int = 825,
    signer: CertificateSigner | None = None,
) -> IssuedCertificate:
    """A client-and-server certificate naming the node by SPIFFE URI and by DNS name.

    The DNS name equal to the node id lets a client pin the server it dials
    (``grpc.ssl_target_name_override``), so the broker knows it reached the right node.
    `signer` signs in place of ``ca.key_pem`` (a CA key kept in an HSM).
    `loopback` adds `localhost`, 127.0.0.1 and ::1, for a consortium on one machine
    only (`pki issue --dev`): names every member's certificate would share let a client
    that dials by them reach any member.
    """
    ca_key = signer if signer is not None else LocalCaKey.from_pem(ca.key_pem)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    names: list[x509.GeneralName] = [
        x509.UniformResourceIdentifier(spiffe_id(consortium, node_id)),
        x509.DNSName(node_id),
    ]
    names += [x509.DNSName(h) for h in hostnames if h != node_id]
    if loopback:
        names += [x509.DNSName(LOOPBACK_DNS), *(x509.IPAddress(ip) for ip in LOOPBACK_IPS)]
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, consortium),
                    x509.NameAttribute(NameOID.COMMON_NAME, node_id),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    cert = ca_key.sign_certificate(builder)
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        raise ValueError("the CA key that signed is not the key of ca.crt") from None
    return IssuedCertificate(_key_pem(key), cert.public_bytes(serialization.Encoding.PEM))


def certificate_fingerprint(cert_pem: bytes) -> str:
    """SHA-256 of the DER certificate, hex: how the directory pins a node's current cert."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    return cert.fingerprint(hashes.SHA256()).hex()


def certificate_spiffe_ids(cert_pem_or_der: bytes) -> list[str]:
    """Every SPIFFE URI SAN in a certificate (PEM or DER)."""
    if cert_pem_or_der.startswith(b"-----BEGIN"):
        cert = x509.load_pem_x509_certificate(cert_pem_or_der)
    else:
        cert = x509.load_der_x509_certificate(cert_pem_or_der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [
        u
        for u in san.get_values_for_type(x509.UniformResourceIdentifier)
        if u.startswith(SPIFFE_PREFIX)
    ]


def _must(key: LocalCaKey | None) -> LocalCaKey:
    if key is None:
        raise ValueError("no CA key")
    return key


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
