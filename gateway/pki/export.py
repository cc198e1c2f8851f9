"""`gateway pki export`: copy out exactly what one member needs, and nothing of the roots.

The PKI folder is the administrator's, kept offline: it holds the CA key, the directory
key and every member's bundle. A member's machine (or container) gets an export of its
own bundle: its certificate and private keys, the CA certificate and the directory's
public key. The broker's export also carries the signed directory, which it serves to
nodes; exporting it again after `issue`, `rotate` or `revoke` publishes the new
directory, which the running broker picks up from its files.

Every exported file is 0600 and the folder 0700, whatever the umask; files are replaced
one by one atomically, so a running server reads an old file or a new one, never half.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gateway.pki.custody import FILE_MODE, ROOT_KEYS, private_folder
from gateway.pki.store import PkiError, PkiFolder
from gateway.policy.bundle import BUNDLE_FILE

BUNDLE_FILES = (
    "consortium.txt",
    "ca.crt",
    "directory.pub",
    "tls.crt",
    "tls.key",
    "sign.key",
    "seal.key",
    "oprf.key",
    BUNDLE_FILE,
)
"""What a member's bundle may hold; `oprf.key` only for banks and carriers; the signed
policy bundle, which broker and node load only if the directory lists it."""

DIRECTORY_FILES = ("directory.json", "directory.sig")
"""The signed directory, which only the broker serves from its files."""

MARKER = "node.txt"
"""Names the member an export belongs to, so one export is never written over another."""


@dataclass(frozen=True)
class Export:
    """What one export wrote: the member, the folder and the files in it."""

    node_id: str
    folder: Path
    files: tuple[str, ...]


def export_bundle(pki: PkiFolder, node_id: str, out: Path) -> Export:
    """Write `node_id`'s bundle into `out` (created 0700), refusing to mix custodies."""
    directory = pki.directory()
    member = directory.get(node_id)
    if member is None:
        raise PkiError(f"no member {node_id} in the directory")
    if not member.active:
        raise PkiError(f"{node_id} is revoked; issue it again before exporting its keys")
    root = pki.root.resolve()
    target = out.resolve()
    if target == root or root in target.parents:
        raise PkiError(
            f"{out} is inside the PKI folder {pki.root}: export to a folder the node's "
            "user can read and the PKI folder's cannot be reached from"
        )
    _check_target(target, node_id)
    source = pki.bundle(node_id).folder
    names = [n for n in BUNDLE_FILES if (source / n).is_file()]
    sources = {n: source / n for n in names}
    if member.role == "broker":
        sources.update({n: pki.root / n for n in DIRECTORY_FILES})
    sources[MARKER] = Path()
    private_folder(target)
    os.chmod(target, 0o700)
    for name, path in sources.items():
        data = (node_id + "\n").encode() if name == MARKER else path.read_bytes()
        _write_private(target / name, data)
    return Export(node_id, target, tuple(sorted(sources)))


def _check_target(target: Path, node_id: str) -> None:
    if not target.exists():
        return
    if not target.is_dir():
        raise PkiError(f"{target} exists and is not a folder")
    roots = [name for name in ROOT_KEYS if (target / name).exists()]
    if roots:
        raise PkiError(f"{target} holds {roots[0]}: never export a bundle beside a root key")
    marker = target / MARKER
    if marker.is_file():
        owner = marker.read_text().strip()
        if owner != node_id:
            raise PkiError(f"{target} holds the export of {owner}; export {node_id} elsewhere")
    elif any(target.iterdir()):
        raise PkiError(f"{target} is not empty: export into a new or empty folder")


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
