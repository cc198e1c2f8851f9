"""Signed policy bundles: the consortium's policy set and schema, as the administrator signed them.

A policy file on a server's disk proves nothing about who wrote it: whoever can write the
file decides what the broker or a node allows. So the consortium administrator signs the
whole policy set with its schema (`gateway policy sign`) under the directory key, the
signed directory lists the bundle's SHA-256, and the broker and every node load their
policies only from a bundle whose signature verifies under the directory key and whose
hash the directory lists. A bundle signed by the same key but not listed (an older one
replayed, or one the administrator withdrew) is refused too. Each decision then names the
bundle by that hash, which covers the schema as well as every policy file.

File format (``policy-bundle.json``): ``{"bundle": <base64>, "signature": <base64>}``,
where the bundle bytes are canonical JSON ``{"consortium": ..., "files": {name: text}}``
and the signature is Ed25519 over those bytes with a domain-separation prefix.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.crypto.signer import Ed25519Signing
from gateway.policy.engine import PolicyEngine, PolicyLoadError
from gateway.policy.request import Party

BUNDLE_FILE: Final = "policy-bundle.json"
SCHEMA_NAME: Final = "schema.cedarschema"
_CONTEXT: Final = b"gateway policy bundle v1\x00"
"""Prefixed to the bytes signed, so a directory signature can never pass for a bundle's."""
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}\.(cedar|cedarschema)$")
_MAX_BYTES: Final = 4 * 1024 * 1024


class BundleError(PolicyLoadError):
    """A policy bundle that must not be used; the message says why."""


@dataclass(frozen=True)
class PolicyBundle:
    """The policy files and schema one signature covers, and the hash that names them."""

    consortium: str
    files: Mapping[str, str]

    def to_bytes(self) -> bytes:
        """Canonical JSON: sorted keys, no spaces, so signature and hash are reproducible."""
        doc = {"consortium": self.consortium, "files": dict(self.files)}
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    @property
    def sha256(self) -> str:
        """SHA-256 (hex) of the canonical bytes: what the directory lists and audits name."""
        return hashlib.sha256(self.to_bytes()).hexdigest()

    def engine(self, name: str, *, static_parties: Iterable[Party] = ()) -> PolicyEngine:
        """The engine for one policy file of the bundle, validated against its schema."""
        if name not in self.files or not name.endswith(".cedar"):
            raise BundleError(f"policy bundle {self.sha256[:12]} has no policy file {name!r}")
        return PolicyEngine.from_text(
            self.files[name].encode(),
            self.files[SCHEMA_NAME],
            static_parties=static_parties,
            source=f"bundle {self.sha256[:12]}:{name}",
            policy_set_hash=self.sha256,
        )


def read_policy_folder(folder: Path, consortium: str) -> PolicyBundle:
    """Every ``*.cedar`` file and the schema of a folder, as an unsigned bundle.

    Each policy file must validate against the schema here, so the administrator cannot
    sign a set that every server would then refuse to load.
    """
    try:
        paths = sorted(p for p in folder.iterdir() if p.suffix in (".cedar", ".cedarschema"))
        files = {p.name: p.read_text(encoding="utf-8") for p in paths}
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"cannot read policy folder {folder}: {exc}") from exc
    bundle = _checked(consortium, files)
    for name in files:
        if name.endswith(".cedar"):
            bundle.engine(name)
    return bundle


def sign_bundle(bundle: PolicyBundle, key: Ed25519Signing) -> bytes:
    """The bundle file's bytes: the bundle and the directory key's signature over it."""
    data = bundle.to_bytes()
    doc = {
        "bundle": base64.b64encode(data).decode(),
        "signature": base64.b64encode(key.sign(_CONTEXT + data)).decode(),
    }
    return json.dumps(doc, sort_keys=True, indent=1).encode() + b"\n"


def verify_bundle(signed: bytes, verify_key: Ed25519PublicKey, *, consortium: str) -> PolicyBundle:
    """The bundle, only if the directory key signed it for this consortium.

    Whether the directory lists it is a separate check (:func:`check_listed`), which a
    server repeats whenever the directory changes.
    """
    if len(signed) > _MAX_BYTES:
        raise BundleError(f"policy bundle is larger than {_MAX_BYTES} bytes")
    try:
        doc = json.loads(signed)
        data = base64.b64decode(doc["bundle"], validate=True)
        signature = base64.b64decode(doc["signature"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error, RecursionError) as exc:
        raise BundleError("policy bundle file is not a signed bundle") from exc
    try:
        verify_key.verify(signature, _CONTEXT + data)
    except InvalidSignature as exc:
        raise BundleError(
            "policy bundle signature does not verify under the directory key"
        ) from exc
    try:
        doc = json.loads(data)
        consortium_named, files = doc["consortium"], doc["files"]
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise BundleError("signed policy bundle is malformed") from exc
    if consortium_named != consortium:
        raise BundleError(f"policy bundle is for consortium {consortium_named!r}")
    bundle = _checked(consortium_named, files)
    if bundle.to_bytes() != data:
        raise BundleError("signed policy bundle is not in canonical form")
    return bundle


def listing_problem(loaded_sha256: str, listed_sha256: str) -> str | None:
    """Why a bundle must not be used under a directory listing ``listed_sha256``, or None.

    A directory that lists no bundle refuses every bundle.
    """
    if not listed_sha256:
        return "the signed directory lists no policy bundle; run `gateway policy sign`"
    if loaded_sha256 != listed_sha256:
        return (
            f"policy bundle {loaded_sha256[:12]} is not the one the directory lists "
            f"({listed_sha256[:12]}); load the current bundle and restart"
        )
    return None


def load_signed_engine(
    path: Path,
    name: str,
    verify_key: Ed25519PublicKey,
    *,
    consortium: str,
    listed_sha256: str | None,
    static_parties: Iterable[Party] = (),
) -> PolicyEngine:
    """Read a bundle file and build the engine of its policy ``name``; raises BundleError.

    ``listed_sha256`` is the hash the verified directory lists; None when no directory is
    at hand yet, and then the caller checks :func:`listing_problem` before each decision.
    """
    try:
        signed = path.read_bytes()
    except OSError as exc:
        raise BundleError(f"cannot read policy bundle {path}: {exc.strerror}") from exc
    bundle = verify_bundle(signed, verify_key, consortium=consortium)
    if listed_sha256 is not None:
        problem = listing_problem(bundle.sha256, listed_sha256)
        if problem:
            raise BundleError(problem)
    return bundle.engine(name, static_parties=static_parties)


def _checked(consortium: object, files: object) -> PolicyBundle:
    if not isinstance(consortium, str) or not consortium:
        raise BundleError("policy bundle names no consortium")
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in files.items()
    ):
        raise BundleError("policy bundle files must map names to text")
    bad = [name for name in files if not _NAME.match(name)]
    if bad:
        raise BundleError(f"policy bundle file name {bad[0]!r} is not a policy or schema name")
    if SCHEMA_NAME not in files:
        raise BundleError(f"policy bundle has no {SCHEMA_NAME}")
    if not any(name.endswith(".cedar") for name in files):
        raise BundleError("policy bundle has no policy file")
    return PolicyBundle(consortium, dict(sorted(files.items())))
