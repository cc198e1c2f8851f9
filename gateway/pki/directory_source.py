"""A verified directory that follows its files: rotation and revocation take effect live.

The consortium administrator rewrites directory.json/.sig; the holder re-reads them when
they change (checked at most once a second) and only ever moves to a newer serial
whose signature verifies. A bad update is refused and the last good directory stays.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.pki.directory import (
    Directory,
    DirectoryError,
    SignedDirectoryBlob,
    verify_directory,
)

log = logging.getLogger(__name__)


Stamp = tuple[int, int, int]
"""(inode, size, mtime in ns) of a file: a rename-over changes it even within one tick."""


def _stamp(stat: os.stat_result) -> Stamp:
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


class FileDirectory:
    """The signed directory at `folder`/directory.json + directory.sig."""

    def __init__(self, folder: Path, verify_key: Ed25519PublicKey) -> None:
        self._json = folder / "directory.json"
        self._sig = folder / "directory.sig"
        self._verify_key = verify_key
        self._lock = threading.Lock()
        self._checked_at = 0.0
        self._stamp: tuple[Stamp, Stamp] = ((0, 0, 0), (0, 0, 0))
        self._blob = self._read()
        self._directory = verify_directory(self._blob, verify_key)

    def _read(self) -> SignedDirectoryBlob:
        return SignedDirectoryBlob(self._json.read_bytes(), self._sig.read_bytes())

    def __call__(self) -> Directory:
        return self.current()

    def current(self) -> Directory:
        now = time.monotonic()
        if now - self._checked_at >= 1.0:
            with self._lock:
                self._checked_at = now
                self._refresh()
        return self._directory

    def refresh(self) -> Directory:
        """Check the files now rather than at the next second (after a rotation, on SIGHUP)."""
        with self._lock:
            self._checked_at = time.monotonic()
            self._refresh()
        return self._directory

    def signed(self) -> SignedDirectoryBlob:
        self.current()
        return self._blob

    def _refresh(self) -> None:
        try:
            stamp = (_stamp(self._json.stat()), _stamp(self._sig.stat()))
        except OSError:
            return
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            blob = self._read()
            directory = verify_directory(blob, self._verify_key, min_serial=self._directory.serial)
        except (OSError, DirectoryError) as exc:
            log.warning("directory update refused: %s", exc)
            return
        self._blob, self._directory = blob, directory


class StaticDirectory:
    """A directory fixed at construction (nodes that received it from the broker)."""

    def __init__(self, blob: SignedDirectoryBlob, verify_key: Ed25519PublicKey) -> None:
        self._blob = blob
        self._directory = verify_directory(blob, verify_key)

    def __call__(self) -> Directory:
        return self._directory

    def signed(self) -> SignedDirectoryBlob:
        return self._blob
