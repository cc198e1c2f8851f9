"""The consortium's PKI folder: CA, directory key, signed directory and each node's bundle.

Layout::

    <pki>/consortium.txt            the consortium name (the SPIFFE trust domain)
    <pki>/ca.crt, ca.key            the consortium CA
    <pki>/directory.key, .pub       the key that signs the membership directory
    <pki>/directory.json, .sig      the current signed directory
    <pki>/policy-bundle.json        the signed policy set and schema the directory lists
    <pki>/nodes/<id>/               one bundle per node: tls.crt, tls.key, sign.key,
                                    seal.key, oprf.key (responders), ca.crt, directory.pub,
                                    policy-bundle.json
    <pki>/.lock                     held while a command changes the directory

The folder is the administrator's (0700), kept offline: no broker or node serves from
it. `gateway pki export` copies one member's bundle out of it (gateway/pki/export.py),
and that export is all that has to be copied to the machine that runs the member.

Key lifecycle: `issue` lists a node at key version 1 (and refuses a member already
listed, whose running node would be left with keys the directory no longer names, but
readmits a revoked one); `rotate` replaces some or all of
its keys in the bundle (the old private keys are overwritten, not kept), bumps the
member's key version and the directory serial, and re-signs the directory; `revoke`
marks the member revoked. Every change is a new signed directory with a higher serial,
which the broker picks up from the files and nodes refetch; nodes refuse a lower serial.
Administrative changes hold an exclusive lock on the folder, so two concurrent commands
cannot both write "serial + 1".
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from gateway.crypto.signer import Ed25519Signing
from gateway.pki.ca import (
    CertificateSigner,
    IssuedCertificate,
    LocalCaKey,
    certificate_fingerprint,
    create_ca,
    has_loopback_names,
    issue_node_certificate,
)
from gateway.pki.custody import FOLDER_MODE, private_folder
from gateway.pki.directory import (
    REVOKED,
    ROLES,
    Directory,
    Member,
    SignedDirectoryBlob,
    claimed_twice,
    sign_directory,
    verify_directory,
)
from gateway.pki.key_files import (
    check_passphrase,
    decrypt_pem,
    encrypt_pem,
    load_signing_key,
    write_signing_key,
)
from gateway.pki.keys import NodeKeys, raw_public, read_hex, write_secret
from gateway.policy.bundle import BUNDLE_FILE, read_policy_folder, sign_bundle
from gateway.regions import check_region
from gateway.resources import POLICIES

RESPONDER_ROLES = ("bank", "carrier")
OPRF_KEY_ROLES = (*RESPONDER_ROLES, "police")
"""Roles with an OPRF key: responders for their records (always), police for the
watchlist (when issued with a key factory, as `gateway pki issue` does)."""
KEY_KINDS = ("signing", "sealing", "oprf", "tls")
"""What `rotate` can replace: Ed25519 signing, X25519 sealing, OPRF key, mTLS certificate."""

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

    @property
    def policy_bundle(self) -> Path:
        """The signed policy bundle, which the directory must list to be loaded."""
        return self.folder / BUNDLE_FILE

    def keys(self, passphrase: bytes | None = None) -> NodeKeys:
        return NodeKeys.load(self.folder, passphrase=passphrase)

    def directory_verify_key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.directory_pub_raw())

    def directory_pub_raw(self) -> bytes:
        """The consortium directory key's 32 raw bytes, as this node was given it."""
        return read_hex(self.directory_pub, 32)

    def consortium(self) -> str:
        return (self.folder / "consortium.txt").read_text().strip()


@dataclass(frozen=True)
class Rotation:
    """What one rotation did: which keys are new, and the directory that lists them."""

    node_id: str
    role: str
    rotated: tuple[str, ...]
    key_version: int
    serial: int
    bundle: NodeBundle


class PkiFolder:
    """Operations of the consortium administrator on the PKI folder.

    With `key_passphrase`, the keys it writes (CA, directory key, nodes' signing keys) are
    encrypted PKCS#8 under it, and it reads encrypted ones with it.
    """

    def __init__(self, root: Path, *, key_passphrase: bytes | None = None) -> None:
        self.root = root
        self.key_passphrase = key_passphrase
        if key_passphrase is not None:
            check_passphrase(key_passphrase)

    @property
    def consortium(self) -> str:
        path = self.root / "consortium.txt"
        if not path.exists():
            raise PkiError(f"{self.root} is not a PKI folder; run `gateway pki init` first")
        return path.read_text().strip()

    def init(
        self,
        consortium: str,
        policies: Path = POLICIES,
        *,
        ca_key_uri: str = "",
        directory_key_uri: str = "",
    ) -> None:
        """Create the CA, the directory key and an empty signed directory listing the
        signed bundle of the policies in ``policies`` (by default the shipped ones).

        With `ca_key_uri` or `directory_key_uri` (``pkcs11:`` URIs of keys already made
        in an HSM), that key stays in the HSM and its key file holds the URI.
        """
        if (self.root / "consortium.txt").exists():
            raise PkiError(f"{self.root} already holds a consortium PKI")
        if not consortium or "/" in consortium:
            raise PkiError("consortium name must be a non-empty DNS-like name without '/'")
        ca_signer = _hsm_ca_key(ca_key_uri) if ca_key_uri else None
        directory_key: Ed25519Signing = (
            _hsm_signing_key(directory_key_uri)
            if directory_key_uri
            else Ed25519PrivateKey.generate()
        )
        private_folder(self.root)
        os.chmod(self.root, FOLDER_MODE)
        ca = create_ca(consortium, signer=ca_signer)
        (self.root / "ca.crt").write_bytes(ca.cert_pem)
        if ca_signer is None:
            write_secret(self.root / "ca.key", encrypt_pem(ca.key_pem, self.key_passphrase))
        else:
            write_secret(self.root / "ca.key", ca_key_uri)
        if isinstance(directory_key, Ed25519PrivateKey):
            write_signing_key(self.root / "directory.key", directory_key, self.key_passphrase)
        else:
            write_secret(self.root / "directory.key", directory_key_uri)
        (self.root / "directory.pub").write_text(
            raw_public(directory_key.public_key()).hex() + "\n"
        )
        (self.root / "consortium.txt").write_text(consortium + "\n")
        bundle = read_policy_folder(policies, consortium)
        _write_atomically(self.root / BUNDLE_FILE, sign_bundle(bundle, directory_key))
        self._write_directory(Directory(consortium, 0, (), bundle.sha256), directory_key)

    def sign_policies(self, policies: Path) -> str:
        """Sign the policy files and schema of a folder, list the bundle's hash in a newly
        signed directory and copy the bundle into every node's folder; returns the hash.

        Broker and nodes load the new bundle when they next start; until then the
        directory names a bundle they do not run, which `gateway node preflight` reports.
        """
        consortium = self.consortium
        bundle = read_policy_folder(policies, consortium)
        with self._locked():
            directory = self.directory()
            signed = sign_bundle(bundle, self.directory_key())
            _write_atomically(self.root / BUNDLE_FILE, signed)
            nodes = self.root / "nodes"
            for folder in sorted(nodes.iterdir()) if nodes.is_dir() else ():
                if folder.is_dir():
                    _write_atomically(folder / BUNDLE_FILE, signed)
            if directory.policy_bundle != bundle.sha256:
                self._write_directory(
                    replace(directory, serial=directory.serial + 1, policy_bundle=bundle.sha256)
                )
        return bundle.sha256

    def ca(self) -> IssuedCertificate:
        """The CA certificate and its key's PEM (empty when the key is in an HSM)."""
        key_path = self.root / "ca.key"
        key_pem = b"" if _is_uri(key_path) else decrypt_pem(key_path, self.key_passphrase)
        return IssuedCertificate(key_pem, (self.root / "ca.crt").read_bytes())

    def ca_signer(self) -> CertificateSigner:
        """What signs certificates: the CA key from ``ca.key``, or the HSM key it names."""
        key_path = self.root / "ca.key"
        if _is_uri(key_path):
            return _hsm_ca_key(key_path.read_text().strip(), where=str(key_path))
        return LocalCaKey.from_pem(decrypt_pem(key_path, self.key_passphrase))

    def directory_key(self) -> Ed25519Signing:
        return load_signing_key(self.root / "directory.key", self.key_passphrase)

    def signed_directory(self) -> SignedDirectoryBlob:
        return SignedDirectoryBlob(
            (self.root / "directory.json").read_bytes(),
            (self.root / "directory.sig").read_bytes(),
        )

    def directory(self) -> Directory:
        """The current directory, checked under ``directory.pub`` (no private key needed)."""
        public = Ed25519PublicKey.from_public_bytes(read_hex(self.root / "directory.pub", 32))
        return verify_directory(self.signed_directory(), public)

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
        signing_key_uri: str = "",
        dev: bool = False,
        jurisdictions: tuple[str, ...] = (),
    ) -> NodeBundle:
        """Issue certificate and keys for a node and list it in a newly signed directory.

        With `signing_key_uri` (a ``pkcs11:`` URI of an Ed25519 key already in an HSM),
        the node signs with that key, and its bundle's ``sign.key`` holds the URI. It is
        the only way to keep the broker's log key in an HSM, since that key is never
        rotated.

        `dev` adds the loopback names to the certificate (a consortium on one machine);
        rotating its certificate keeps them.

        A member is issued once: its keys are replaced with `rotate`, which keeps the node
        known and bumps its key version. Issuing a revoked member again readmits it with
        new keys.
        """
        if role not in ROLES:
            raise PkiError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        if not node_id or not all(c.isalnum() or c in "-_." for c in node_id):
            raise PkiError("node id must be letters, digits, '-', '_' or '.'")
        consortium = self.consortium
        if jurisdictions and role != "police":
            raise PkiError(f"only police nodes have a jurisdiction, not a {role} node")
        with self._locked():
            return self._issue(
                node_id,
                role,
                consortium,
                agency,
                endpoint,
                oprf_key_factory,
                signing_key_uri,
                dev,
                jurisdictions,
            )

    def _issue(
        self,
        node_id: str,
        role: str,
        consortium: str,
        agency: str,
        endpoint: str,
        oprf_key_factory: OprfKeyFactory | None,
        signing_key_uri: str,
        dev: bool,
        jurisdictions: tuple[str, ...] = (),
    ) -> NodeBundle:
        directory = self.directory()
        _check_jurisdictions(directory.with_member(replace_jurisdictions(node_id, jurisdictions)))
        hsm_key = _hsm_signing_key(signing_key_uri) if signing_key_uri else None
        ca, ca_signer = self.ca(), self.ca_signer()  # fail before writing anything
        directory_key = self.directory_key()
        previous = directory.get(node_id)
        if previous is not None and previous.active:
            raise PkiError(
                f"{node_id} is already issued (keys v{previous.key_version}): "
                f"re-key it with `gateway pki rotate --node {node_id}`"
            )
        bundle = self.bundle(node_id)
        if bundle.folder.exists():  # left by an issue that never reached the directory
            shutil.rmtree(bundle.folder)
        private_folder(bundle.folder)
        cert = issue_node_certificate(ca, consortium, node_id, signer=ca_signer, loopback=dev)
        bundle.tls_cert.write_bytes(cert.cert_pem)
        write_secret(bundle.tls_key, cert.key_pem.decode().strip())
        keys = NodeKeys.generate()
        if hsm_key is not None:
            keys = replace(keys, signing=hsm_key)
            write_secret(bundle.folder / "sign.key", signing_key_uri.strip())
        keys.save(bundle.folder, passphrase=self.key_passphrase)
        oprf_public = b""
        if role in RESPONDER_ROLES or (role in OPRF_KEY_ROLES and oprf_key_factory is not None):
            if oprf_key_factory is None:
                raise PkiError(f"role {role} needs an OPRF key factory")
            secret, oprf_public = oprf_key_factory()
            write_secret(bundle.oprf_key, secret.hex())
        shutil.copy(self.root / "ca.crt", bundle.ca_cert)
        shutil.copy(self.root / "directory.pub", bundle.directory_pub)
        shutil.copy(self.root / "consortium.txt", bundle.folder / "consortium.txt")
        if (self.root / BUNDLE_FILE).exists():
            shutil.copy(self.root / BUNDLE_FILE, bundle.policy_bundle)
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
            jurisdictions=jurisdictions,
        )
        self._write_directory(directory.with_member(member), directory_key)
        return bundle

    def rotate(
        self,
        node_id: str,
        *,
        signing: bool = False,
        sealing: bool = False,
        oprf: bool = False,
        tls: bool = False,
        oprf_key_factory: OprfKeyFactory | None = None,
        signing_key_uri: str = "",
    ) -> Rotation:
        """Replace some of a member's keys (all it has if none is named) and re-sign.

        The new private keys overwrite the old ones in the node's bundle, which must then
        be copied to the node and the node restarted. The member keeps its id, role,
        agency and endpoint; its key version goes up by one and so does the serial.

        Once the directory changes, the broker and every node that has refetched it
        refuse envelopes signed with the old signing key and the old certificate (by
        fingerprint), and senders seal to the new sealing key. A payload sealed to the
        old sealing key that is still in the broker's outbox can no longer be opened: the
        recipient refuses it (`seal:`), the broker marks the delivery failed, and the
        sender must issue the request again. A responder's match index is built under its
        OPRF key, so after an OPRF rotation it must be rebuilt (`gateway node reindex`).

        `signing_key_uri` replaces the signing key with one already in an HSM (as `issue`).
        """
        with self._locked():
            directory = self.directory()
            ca, ca_signer = self.ca(), self.ca_signer()  # fail before writing anything
            directory_key = self.directory_key()
            member = directory.get(node_id)
            if member is None:
                raise PkiError(f"no member {node_id} in the directory")
            if not member.active:
                raise PkiError(f"{node_id} is revoked; issue it again to readmit it")
            has_oprf = member.role in RESPONDER_ROLES or (
                member.role in OPRF_KEY_ROLES and bool(member.oprf_key)
            )
            is_broker = member.role == "broker"
            signing = signing or bool(signing_key_uri)
            wanted = {"signing": signing, "sealing": sealing, "oprf": oprf, "tls": tls}
            if not any(wanted.values()):  # everything this member has and may rotate
                wanted = {"signing": not is_broker, "sealing": True, "oprf": has_oprf, "tls": True}
            if wanted["oprf"] and not has_oprf and member.role not in OPRF_KEY_ROLES:
                raise PkiError(f"{node_id} is a {member.role} node, which holds no OPRF key")
            if wanted["signing"] and is_broker:
                raise PkiError(
                    "the broker's signing key signs the audit log's checkpoints, which nodes "
                    "keep and check against it; rotating it needs a log key transition, "
                    "which is not supported"
                )
            bundle = self.bundle(node_id)
            hsm_key = _hsm_signing_key(signing_key_uri) if signing_key_uri else None
            keys = bundle.keys(self.key_passphrase).rotated(
                signing=wanted["signing"] and hsm_key is None, sealing=wanted["sealing"]
            )
            if hsm_key is not None:
                keys = replace(keys, signing=hsm_key)
            updated = replace(
                member,
                sign_key=keys.sign_public,
                seal_key=keys.seal_public,
                key_version=member.key_version + 1,
            )
            if wanted["oprf"]:
                if oprf_key_factory is None:
                    raise PkiError("rotating an OPRF key needs an OPRF key factory")
                secret, oprf_public = oprf_key_factory()
                write_secret(bundle.oprf_key, secret.hex())
                updated = replace(updated, oprf_key=oprf_public)
            if wanted["tls"]:
                dev = has_loopback_names(bundle.tls_cert.read_bytes())
                cert = issue_node_certificate(
                    ca, self.consortium, node_id, signer=ca_signer, loopback=dev
                )
                write_secret(bundle.tls_key, cert.key_pem.decode().strip())
                _write_atomically(bundle.tls_cert, cert.cert_pem)
                updated = replace(updated, cert_sha256=certificate_fingerprint(cert.cert_pem))
            if hsm_key is not None:
                write_secret(bundle.folder / "sign.key", signing_key_uri.strip())
            keys.save(bundle.folder, passphrase=self.key_passphrase)
            new_directory = directory.with_member(updated)
            self._write_directory(new_directory, directory_key)
        rotated = tuple(kind for kind in KEY_KINDS if wanted[kind])
        return Rotation(
            node_id, member.role, rotated, updated.key_version, new_directory.serial, bundle
        )

    def set_endpoints(self, node_id: str, endpoints: list[str]) -> Member:
        """List where a member serves, in a newly signed directory: the first is its
        `endpoint`, the others its replicas (several broker processes, one identity)."""
        if not endpoints:
            raise PkiError("give at least one endpoint (host:port)")
        bad = [e for e in endpoints if not _is_host_port(e)]
        if bad:
            raise PkiError(f"endpoint {bad[0]!r} is not host:port")
        if len(set(endpoints)) != len(endpoints):
            raise PkiError("an endpoint is listed twice")
        with self._locked():
            directory = self.directory()
            member = directory.get(node_id)
            if member is None:
                raise PkiError(f"no member {node_id} in the directory")
            updated = replace(member, endpoint=endpoints[0], replicas=tuple(endpoints[1:]))
            self._write_directory(directory.with_member(updated))
            return updated

    def set_jurisdictions(self, node_id: str, regions: list[str]) -> Member:
        """List a police node's regions (GB/T 2260 codes) in a newly signed directory:
        bank and carrier alerts about them go to it. No region may have two police nodes."""
        try:
            codes = tuple(check_region(code) for code in regions)
        except ValueError as exc:
            raise PkiError(str(exc)) from None
        if len(set(codes)) != len(codes):
            raise PkiError("a region is listed twice")
        with self._locked():
            directory = self.directory()
            member = directory.get(node_id)
            if member is None:
                raise PkiError(f"no member {node_id} in the directory")
            if member.role != "police":
                raise PkiError(
                    f"{node_id} is a {member.role} node: only police have a jurisdiction"
                )
            updated = directory.with_member(replace(member, jurisdictions=codes))
            self._write_directory(updated)
            return replace(member, jurisdictions=codes)

    def revoke(self, node_id: str) -> None:
        """Mark a member revoked in a newly signed directory; its messages are refused."""
        with self._locked():
            directory = self.directory()
            member = directory.get(node_id)
            if member is None:
                raise PkiError(f"no member {node_id} in the directory")
            self._write_directory(directory.with_member(replace(member, status=REVOKED)))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """An exclusive lock on the folder for one read-modify-write of the directory."""
        if not (self.root / "consortium.txt").exists():
            raise PkiError(f"{self.root} is not a PKI folder; run `gateway pki init` first")
        with (self.root / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _write_directory(self, directory: Directory, key: Ed25519Signing | None = None) -> None:
        _check_jurisdictions(directory)
        blob = sign_directory(directory, key if key is not None else self.directory_key())
        tmp_json = self.root / "directory.json.tmp"
        tmp_sig = self.root / "directory.sig.tmp"
        tmp_json.write_bytes(blob.directory)
        tmp_sig.write_bytes(blob.signature)
        tmp_json.replace(self.root / "directory.json")
        tmp_sig.replace(self.root / "directory.sig")


def replace_jurisdictions(node_id: str, codes: tuple[str, ...]) -> Member:
    """A placeholder member holding only `codes`, to check a new member's regions before
    anything is written (its keys do not matter to the check)."""
    return Member(node_id, "police", node_id, "", b"\0" * 32, b"\0" * 32, jurisdictions=codes)


def _check_jurisdictions(directory: Directory) -> None:
    """Refuse to sign a directory in which a region has two police nodes."""
    overlap = claimed_twice(directory)
    if overlap is not None:
        raise PkiError(overlap)


def _is_uri(path: Path) -> bool:
    return path.read_bytes().lstrip().startswith(b"pkcs11:")


def _hsm_ca_key(uri: str, *, where: str = "--ca-key-uri") -> CertificateSigner:
    from gateway.pki.pkcs11_signer import Pkcs11CaKey

    return Pkcs11CaKey.from_uri(uri, where=where)


def _hsm_signing_key(uri: str) -> Ed25519Signing:
    from gateway.pki.pkcs11_signer import Pkcs11Ed25519Signer

    return Pkcs11Ed25519Signer.from_uri(uri, where="the signing key's URI")


def _is_host_port(endpoint: str) -> bool:
    host, _, port = endpoint.rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536 and " " not in endpoint


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
