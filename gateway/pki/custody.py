"""Key custody: the consortium's root keys stay with the administrator, and what the
gateway writes is its owner's alone.

A broker or node that can read the CA's or the directory's private key hands the whole
consortium's trust to whoever compromises it, so it refuses to start instead; the same
holds for another member's private keys lying next to its own bundle. Files the gateway
creates are 0600 and its folders 0700 whatever the umask: a node's database holds
identifiers in clear, and a bundle holds private keys.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT_KEYS = ("ca.key", "directory.key")
"""The administrator's private keys: the CA's and the one that signs the directory."""

MEMBER_KEYS = ("tls.key", "sign.key", "seal.key", "oprf.key")
"""A member's private keys, as a bundle holds them."""

FILE_MODE = 0o600
FOLDER_MODE = 0o700


class CustodyError(Exception):
    """A serving process can read keys that are not its own."""


def _readable(path: Path) -> bool:
    """Whether this process can open `path` for reading (the attacker's cheapest move)."""
    try:
        with path.open("rb"):
            return True
    except OSError:
        return False


def keys_within_reach(bundle: Path, *more: Path) -> list[Path]:
    """Private keys other than its own that a process holding `bundle` can read.

    Looks where the administrator's layout puts them: in the bundle itself, in its
    parent (other members' bundles side by side) and grandparent (the PKI folder
    `<pki>/nodes/<id>`), and in the other folders given (the directory's folder).
    """
    bundle = bundle.resolve()
    places = {bundle, *(folder.resolve() for folder in more)}
    places.update(list(bundle.parents)[:2])
    found: list[Path] = []
    for place in sorted(places):
        found.extend(p for p in (place / name for name in ROOT_KEYS) if _readable(p))
    siblings = bundle.parent
    if siblings.is_dir() and os.access(siblings, os.R_OK | os.X_OK):
        for other in sorted(siblings.iterdir()):
            if other == bundle or not other.is_dir():
                continue
            found.extend(p for p in (other / name for name in MEMBER_KEYS) if _readable(p))
    return found


def refuse_foreign_keys(bundle: Path, *more: Path) -> None:
    """Raise CustodyError naming the first key this process must not be able to read."""
    found = keys_within_reach(bundle, *more)
    if found:
        whose = (
            "the consortium's root key" if found[0].name in ROOT_KEYS else "another member's key"
        )
        raise CustodyError(
            f"refusing to start: this process can read {whose} {found[0]}; serve from a "
            "bundle written by `gateway pki export`, as a user who cannot read the PKI "
            "folder (or pass --dev on a development machine)"
        )


def private_folder(path: Path) -> Path:
    """Create `path` and any missing parents with mode 0700, whatever the umask.

    Folders that already exist are left as they are: they may be the operator's.
    """
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=FOLDER_MODE, exist_ok=True)
        os.chmod(folder, FOLDER_MODE)
    return path


def private_file(path: Path) -> Path:
    """Make sure `path` exists and is readable by its owner only (0600).

    A new file is created 0600 before anything is written to it; an existing one this
    process owns is narrowed to 0600 (databases created by older versions were 0644).
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    except PermissionError:
        if path.exists():  # someone else's file, opened read-only by this process
            return path
        raise
    try:
        if os.fstat(fd).st_uid == os.geteuid():
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path
