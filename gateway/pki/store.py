"""The consortium's PKI folder: CA, directory key, signed directory and each node's bundle.

Layout::

    <pki>/consortium.txt            the consortium name (the SPIFFE trust domain)
    <pki>/ca.crt, ca.key            the consortium CA
    <pki>/directory.key, .pub       the key that signs the membership directory
    <pki>/directory.json, .sig      the current signed directory
    <pki>/nodes/<id>/               one bundle per node: tls.crt, tls.key, sign.key,
                                    seal.key, oprf.key (responders), ca.crt, directory.pub

A node's bundle is all that has to be copied to the machine that runs it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from gateway.pki.ca import (
    IssuedCertificate,
    certificate_fingerprint,
    create_ca,
    issue_node_certificate,
)
from gateway.pki.directory import (
    ROLES,
    Directory,
    Member,
    SignedDirectoryBlob,
    sign_directory,
    verify_directory,
)
from gateway.pki.keys import NodeKeys, raw_public, read_hex, write_secret

RESPONDER_ROLES = ("bank", "carrier")

OprfKeyFactory = Callable[[], tuple[bytes, bytes]]
"""Makes a responder's OPRF key pair: (secret key bytes, public key bytes)."""


class PkiError(Exception):
    """The PKI folder is missing, incomplete or asked to do something it cannot."""


@dataclass(frozen=True)
class NodeBundle:
    """Paths of one node's key material."""

    folder: Path

    @property
    def tls_cert(self) -> Path:
        return self.folder / "tls.crt"

    @property
    def tls_key(self) -> Path:
        return self.folder / "tls.key"

    @property
    def ca_cert(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def directory_pub(self) -> Path:
        return self.folder / "directory.pub"

    @property
    def oprf_key(self) -> Path:
        return self.folder / "oprf.key"

    def keys(self) -> NodeKeys:
        return NodeKeys.load(self.folder)

    def directory_verify_key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(read_hex(self.directory_pub, 32))

    def consortium(self) -> str:
        return (self.folder / "consortium.txt").read_text().strip()


class PkiFolder:
    """Operations of the consortium administrator on the PKI folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def consortium(self) -> str:
        path = self.root / "consortium.txt"
        if not path.exists():
            raise PkiError(f"{self.root} is not a PKI folder; run `gateway pki init` first")
        return path.read_text().strip()

    def init(self, consortium: str) -> None:
        """Create the CA, the directory key and an empty signed directory."""
        if (self.root / "consortium.txt").exists():
            raise PkiError(f"{self.root} already holds a consortium PKI")
        if not consortium or "/" in consortium:
            raise PkiError("consortium name must be a non-empty DNS-like name without '/'")
        self.root.mkdir(parents=True, exist_ok=True)
        ca = create_ca(consortium)
        (self.root / "ca.crt").write_bytes(ca.cert_pem)
        write_secret(self.root / "ca.key", ca.key_pem.decode().strip())
        directory_key = Ed25519PrivateKey.generate()
        write_secret(self.root / "directory.key", directory_key.private_bytes_raw().hex())
        (self.root / "directory.pub").write_text(
            raw_public(directory_key.public_key()).hex() + "\n"
        )
        (self.root / "consortium.txt").write_text(consortium + "\n")
        self._write_directory(Directory(consortium, 0, ()))

    def ca(self) -> IssuedCertificate:
        return IssuedCertificate(
            (self.root / "ca.key").read_bytes(), (self.root / "ca.crt").read_bytes()
        )

    def directory_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(read_hex(self.root / "directory.key", 32))

    def signed_directory(self) -> SignedDirectoryBlob:
        return SignedDirectoryBlob(
            (self.root / "directory.json").read_bytes(),
            (self.root / "directory.sig").read_bytes(),
        )

    def directory(self) -> Directory:
        return verify_directory(self.signed_directory(), self.directory_key().public_key())

    def bundle(self, node_id: str) -> NodeBundle:
        return NodeBundle(self.root / "nodes" / node_id)

    def issue(
        self,
        node_id: str,
        role: str,
        *,
        agency: str = "",
        endpoint: str = "",
        oprf_key_factory: OprfKeyFactory | None = None,
    ) -> NodeBundle:
        """Issue certificate and keys for a node and list it in a newly signed directory."""
        if role not in ROLES:
            raise PkiError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        if not node_id or not all(c.isalnum() or c in "-_." for c in node_id):
            raise PkiError("node id must be letters, digits, '-', '_' or '.'")
        consortium = self.consortium
        directory = self.directory()
        bundle = self.bundle(node_id)
        if bundle.folder.exists():
            shutil.rmtree(bundle.folder)
        bundle.folder.mkdir(parents=True)
        cert = issue_node_certificate(self.ca(), consortium, node_id)
        bundle.tls_cert.write_bytes(cert.cert_pem)
        write_secret(bundle.tls_key, cert.key_pem.decode().strip())
        keys = NodeKeys.generate()
        keys.save(bundle.folder)
        oprf_public = b""
        if role in RESPONDER_ROLES:
            if oprf_key_factory is None:
                raise PkiError(f"role {role} needs an OPRF key factory")
            secret, oprf_public = oprf_key_factory()
            write_secret(bundle.oprf_key, secret.hex())
        shutil.copy(self.root / "ca.crt", bundle.ca_cert)
        shutil.copy(self.root / "directory.pub", bundle.directory_pub)
        shutil.copy(self.root / "consortium.txt", bundle.folder / "consortium.txt")
        previous = directory.get(node_id)
        member = Member(
            node_id=node_id,
            role=role,
            agency=agency or node_id,
            endpoint=endpoint,
            sign_key=keys.sign_public,
            seal_key=keys.seal_public,
            oprf_key=oprf_public,
            cert_sha256=certificate_fingerprint(cert.cert_pem),
            key_version=(previous.key_version + 1) if previous else 1,
        )
        self._write_directory(directory.with_member(member))
        return bundle

    def revoke(self, node_id: str) -> None:
        """Mark a member revoked in a newly signed directory; its messages are refused."""
        from dataclasses import replace

        directory = self.directory()
        member = directory.get(node_id)
        if member is None:
            raise PkiError(f"no member {node_id} in the directory")
        self._write_directory(directory.with_member(replace(member, status="revoked")))

    def _write_directory(self, directory: Directory) -> None:
        blob = sign_directory(directory, self.directory_key())
        tmp_json = self.root / "directory.json.tmp"
        tmp_sig = self.root / "directory.sig.tmp"
        tmp_json.write_bytes(blob.directory)
        tmp_sig.write_bytes(blob.signature)
        tmp_json.replace(self.root / "directory.json")
        tmp_sig.replace(self.root / "directory.sig")
