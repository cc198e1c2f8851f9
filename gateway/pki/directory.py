"""The signed membership directory: who is in the consortium, in which role, with which keys.

The directory is signed by the consortium's directory key, which the broker does not
hold: the broker serves the directory but cannot add or alter a member on its own, and
every node refuses a directory whose signature does not verify.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.crypto.signer import Ed25519Signing
from gateway.regions import check_region

_SHA256_HEX = re.compile(r"^(|[0-9a-f]{64})$")
ROLES = ("broker", "police", "bank", "carrier", "regulator")
ACTIVE = "active"
REVOKED = "revoked"


class DirectoryError(Exception):
    """The directory is malformed, or its signature does not verify."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise DirectoryError(f"directory field {what} is not base64") from exc


def _jurisdiction_list(value: Any, node_id: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise DirectoryError(f"member {node_id} field jurisdictions is not a list of region codes")
    try:
        codes = tuple(check_region(code) for code in value)
    except ValueError as exc:
        raise DirectoryError(f"member {node_id} jurisdictions: {exc}") from None
    if len(set(codes)) != len(codes):
        raise DirectoryError(f"member {node_id} lists a region twice in its jurisdictions")
    return codes


def _endpoint_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(e, str) and e for e in value):
        raise DirectoryError("directory member field replicas is not a list of host:port")
    return tuple(value)


@dataclass(frozen=True)
class Member:
    """One node of the consortium as every other node sees it."""

    node_id: str
    role: str
    agency: str
    endpoint: str
    sign_key: bytes
    seal_key: bytes
    oprf_key: bytes = b""
    cert_sha256: str = ""
    status: str = ACTIVE
    key_version: int = 1
    replicas: tuple[str, ...] = ()
    """More host:port endpoints where this same member serves, with its certificate and
    keys: the other processes of a broker run as several (nodes spread their calls over
    `endpoints`). Listed only when there are some, so older directories keep their bytes."""
    jurisdictions: tuple[str, ...] = ()
    """A police node's regions (GB/T 2260 codes): where bank and carrier alerts about
    those regions go (`gateway.regions`). Listed only when there are some."""

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    @property
    def endpoints(self) -> tuple[str, ...]:
        """Every endpoint of the member, `endpoint` first; empty if it lists none."""
        return tuple(e for e in (self.endpoint, *self.replicas) if e)

    def to_dict(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "role": self.role,
            "agency": self.agency,
            "endpoint": self.endpoint,
            "sign_key": _b64(self.sign_key),
            "seal_key": _b64(self.seal_key),
            "oprf_key": _b64(self.oprf_key),
            "cert_sha256": self.cert_sha256,
            "status": self.status,
            "key_version": self.key_version,
            **({"replicas": list(self.replicas)} if self.replicas else {}),
            **({"jurisdictions": list(self.jurisdictions)} if self.jurisdictions else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Member:
        if not isinstance(data, dict):
            raise DirectoryError("directory member is not a JSON object")
        try:
            member = cls(
                node_id=str(data["node_id"]),
                role=str(data["role"]),
                agency=str(data["agency"]),
                endpoint=str(data["endpoint"]),
                sign_key=_unb64(str(data["sign_key"]), "sign_key"),
                seal_key=_unb64(str(data["seal_key"]), "seal_key"),
                oprf_key=_unb64(str(data.get("oprf_key", "")), "oprf_key"),
                cert_sha256=str(data.get("cert_sha256", "")),
                status=str(data.get("status", ACTIVE)),
                key_version=int(data.get("key_version", 1)),
                replicas=_endpoint_list(data.get("replicas", [])),
                jurisdictions=_jurisdiction_list(
                    data.get("jurisdictions", []), str(data.get("node_id", ""))
                ),
            )
        except KeyError as exc:
            raise DirectoryError(f"directory member lacks field {exc.args[0]}") from exc
        except (ValueError, TypeError, OverflowError) as exc:
            raise DirectoryError(f"directory member has a bad field: {type(exc).__name__}") from exc
        if member.role not in ROLES:
            raise DirectoryError(f"member {member.node_id} has unknown role {member.role!r}")
        if len(member.sign_key) != 32 or len(member.seal_key) != 32:
            raise DirectoryError(f"member {member.node_id} has a key of the wrong length")
        if member.status not in (ACTIVE, REVOKED):
            raise DirectoryError(f"member {member.node_id} has unknown status {member.status!r}")
        if member.key_version < 1:
            raise DirectoryError(f"member {member.node_id} has key version {member.key_version}")
        if member.jurisdictions and member.role != "police":
            raise DirectoryError(
                f"member {member.node_id} is a {member.role} node: only police have jurisdictions"
            )
        return member


@dataclass(frozen=True)
class Directory:
    """The whole membership list at one serial number."""

    consortium: str
    serial: int
    members: tuple[Member, ...] = field(default_factory=tuple)
    policy_bundle: str = ""
    """SHA-256 (hex) of the signed policy bundle that broker and nodes must load
    (`gateway.policy.bundle`); listed only when set, so older directories keep their bytes."""

    def get(self, node_id: str) -> Member | None:
        for member in self.members:
            if member.node_id == node_id:
                return member
        return None

    def active_members(self, role: str | None = None) -> list[Member]:
        return [m for m in self.members if m.active and (role is None or m.role == role)]

    def with_member(self, member: Member) -> Directory:
        """A new directory, serial + 1, with the member added or replaced."""
        others = tuple(m for m in self.members if m.node_id != member.node_id)
        members = tuple(sorted((*others, member), key=lambda m: m.node_id))
        return replace(self, serial=self.serial + 1, members=members)

    def to_bytes(self) -> bytes:
        """Canonical JSON: sorted keys, no spaces, so the signature is reproducible."""
        doc = {
            "consortium": self.consortium,
            "serial": self.serial,
            "members": [m.to_dict() for m in self.members],
            **({"policy_bundle": self.policy_bundle} if self.policy_bundle else {}),
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Directory:
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise DirectoryError("directory is not JSON") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("members"), list):
            raise DirectoryError("directory is not an object with a list of members")
        try:
            members = tuple(Member.from_dict(m) for m in doc["members"])
            policy_bundle = doc.get("policy_bundle", "")
            if not isinstance(policy_bundle, str) or not _SHA256_HEX.match(policy_bundle):
                raise DirectoryError("directory field policy_bundle is not a SHA-256 in hex")
            directory = cls(str(doc["consortium"]), int(doc["serial"]), members, policy_bundle)
        except (ValueError, KeyError, TypeError, OverflowError) as exc:
            raise DirectoryError(f"directory is not well-formed: {type(exc).__name__}") from exc
        if directory.serial < 0:
            raise DirectoryError("directory serial is negative")
        ids = [m.node_id for m in members]
        if len(set(ids)) != len(ids):
            raise DirectoryError("directory lists a node id twice")
        overlap = claimed_twice(directory)
        if overlap is not None:
            raise DirectoryError(overlap)
        return directory

    def jurisdictions(self) -> list[tuple[str, tuple[str, ...]]]:
        """Each active police node's id and regions (for `gateway.regions.responsible`)."""
        return [(m.node_id, m.jurisdictions) for m in self.active_members("police")]


def claimed_twice(directory: Directory) -> str | None:
    """Why the directory is ambiguous: a region listed by two active police nodes."""
    owner: dict[str, str] = {}
    for node_id, codes in directory.jurisdictions():
        for code in codes:
            if code in owner:
                return f"region {code} is in the jurisdiction of both {owner[code]} and {node_id}"
            owner[code] = node_id
    return None


@dataclass(frozen=True)
class SignedDirectoryBlob:
    """The directory bytes and the directory key's signature over them."""

    directory: bytes
    signature: bytes


def sign_directory(directory: Directory, key: Ed25519Signing) -> SignedDirectoryBlob:
    data = directory.to_bytes()
    return SignedDirectoryBlob(data, key.sign(data))


def verify_directory(
    blob: SignedDirectoryBlob, verify_key: Ed25519PublicKey, *, min_serial: int = 0
) -> Directory:
    """Parse a directory only if the consortium key signed it and it is not older than known."""
    try:
        verify_key.verify(blob.signature, blob.directory)
    except InvalidSignature as exc:
        raise DirectoryError("directory signature does not verify") from exc
    directory = Directory.from_bytes(blob.directory)
    if directory.serial < min_serial:
        raise DirectoryError(
            f"directory serial {directory.serial} is older than the known {min_serial}"
        )
    return directory


def key_fingerprint(raw_key: bytes) -> str:
    """SHA-256 of a raw public key, hex in groups of four: what people compare by eye.

    The directory key's fingerprint is printed for auditors, whose browsers show the same
    computation (gateway/console/static/verify.js `keyFingerprint`) before they trust it.
    """
    digest = hashlib.sha256(raw_key).hexdigest()
    return " ".join(digest[i : i + 4] for i in range(0, len(digest), 4))


def members_by_role(directory: Directory, roles: Iterable[str]) -> list[Member]:
    wanted = set(roles)
    return [m for m in directory.active_members() if m.role in wanted]
