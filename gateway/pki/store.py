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

A node's bundle is all that has to be copied to the machine that runs it.

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
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
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
    REVOKED,
    ROLES,
    Directory,
    Member,
    SignedDirectoryBlob,
    sign_directory,
    verify_directory,
)
from gateway.pki.keys import NodeKeys, raw_public, read_hex, write_secret
from gateway.policy.bundle import BUNDLE_FILE, read_policy_folder, sign_bundle
from gateway.resources import POLICIES

RESPONDER_ROLES = ("bank", "carrier")
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

    def keys(self) -> NodeKeys:
        return NodeKeys.load(self.folder)

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
    """Operations of the consortium administrator on the PKI folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def consortium(self) -> str:
        path = self.root / "consortium.txt"
        if not path.exists():
            raise PkiError(f"{self.root} is not a PKI folder; run `gateway pki init` first")
        return path.read_text().strip()

    def init(self, consortium: str, policies: Path = POLICIES) -> None:
        """Create the CA, the directory key and an empty signed directory listing the
        signed bundle of the policies in ``policies`` (by default the shipped ones)."""
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
        bundle = read_policy_folder(policies, consortium)
        _write_atomically(self.root / BUNDLE_FILE, sign_bundle(bundle, directory_key))
        self._write_directory(Directory(consortium, 0, (), bundle.sha256))

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
        """Issue certificate and keys for a node and list it in a newly signed directory.

        A member is issued once: its keys are replaced with `rotate`, which keeps the node
        known and bumps its key version. Issuing a revoked member again readmits it with
        new keys.
        """
        if role not in ROLES:
            raise PkiError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        if not node_id or not all(c.isalnum() or c in "-_." for c in node_id):
            raise PkiError("node id must be letters, digits, '-', '_' or '.'")
        consortium = self.consortium
        with self._locked():
            return self._issue(node_id, role, consortium, agency, endpoint, oprf_key_factory)

    def _issue(
        self,
        node_id: str,
        role: str,
        consortium: str,
        agency: str,
        endpoint: str,
        oprf_key_factory: OprfKeyFactory | None,
    ) -> NodeBundle:
        directory = self.directory()
        previous = directory.get(node_id)
        if previous is not None and previous.active:
            raise PkiError(
                f"{node_id} is already issued (keys v{previous.key_version}): "
                f"re-key it with `gateway pki rotate --node {node_id}`"
            )
        bundle = self.bundle(node_id)
        if bundle.folder.exists():  # left by an issue that never reached the directory
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
        )
        self._write_directory(directory.with_member(member))
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
        """
        with self._locked():
            directory = self.directory()
            member = directory.get(node_id)
            if member is None:
                raise PkiError(f"no member {node_id} in the directory")
            if not member.active:
                raise PkiError(f"{node_id} is revoked; issue it again to readmit it")
            has_oprf = member.role in RESPONDER_ROLES
            is_broker = member.role == "broker"
            wanted = {"signing": signing, "sealing": sealing, "oprf": oprf, "tls": tls}
            if not any(wanted.values()):  # everything this member has and may rotate
                wanted = {"signing": not is_broker, "sealing": True, "oprf": has_oprf, "tls": True}
            if wanted["oprf"] and not has_oprf:
                raise PkiError(f"{node_id} is a {member.role} node, which holds no OPRF key")
            if wanted["signing"] and is_broker:
                raise PkiError(
                    "the broker's signing key signs the audit log's checkpoints, which nodes "
                    "keep and check against it; rotating it needs a log key transition, "
                    "which is not supported"
                )
            bundle = self.bundle(node_id)
            keys = bundle.keys().rotated(signing=wanted["signing"], sealing=wanted["sealing"])
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
                cert = issue_node_certificate(self.ca(), self.consortium, node_id)
                write_secret(bundle.tls_key, cert.key_pem.decode().strip())
                _write_atomically(bundle.tls_cert, cert.cert_pem)
                updated = replace(updated, cert_sha256=certificate_fingerprint(cert.cert_pem))
            keys.save(bundle.folder)
            new_directory = directory.with_member(updated)
            self._write_directory(new_directory)
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

    def _write_directory(self, directory: Directory) -> None:
        blob = sign_directory(directory, self.directory_key())
        tmp_json = self.root / "directory.json.tmp"
        tmp_sig = self.root / "directory.sig.tmp"
        tmp_json.write_bytes(blob.directory)
        tmp_sig.write_bytes(blob.signature)
        tmp_json.replace(self.root / "directory.json")
        tmp_sig.replace(self.root / "directory.sig")


def _is_host_port(endpoint: str) -> bool:
    host, _, port = endpoint.rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536 and " " not in endpoint


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
