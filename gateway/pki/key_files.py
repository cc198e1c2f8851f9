"""Signing key files: encrypted PKCS#8 by default, plain files still read, HSM references.

A signing key file (a bundle's ``sign.key``, the PKI folder's ``directory.key``) holds
one of:

- ``-----BEGIN ENCRYPTED PRIVATE KEY-----``: PKCS#8 encrypted under a passphrase (PBES2,
  AES-256-CBC). The passphrase comes from the file named by ``GATEWAY_KEY_PASSPHRASE_FILE``
  (a Docker secret) or from ``GATEWAY_KEY_PASSPHRASE``; it should be a random secret of at
  least `MIN_PASSPHRASE_CHARS` characters, since the KDF `cryptography` applies
  (PBKDF2-SHA256, 2048 rounds) would not slow down guessing a short one much.
- ``pkcs11:...``: an RFC 7512 URI of a key kept in an HSM (`gateway.pki.pkcs11_signer`).
- ``-----BEGIN PRIVATE KEY-----`` (plain PKCS#8) or 64 hex digits: the older plain
  formats. They still load, `plain_key_files` names them for `gateway node check` to
  warn about, and `gateway pki protect-keys` encrypts them in place.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from gateway.crypto.signer import Ed25519Signing
from gateway.pki.keys import write_secret

PASSPHRASE_ENV = "GATEWAY_KEY_PASSPHRASE"
PASSPHRASE_FILE_ENV = "GATEWAY_KEY_PASSPHRASE_FILE"
MIN_PASSPHRASE_CHARS = 20

ENCRYPTED, PKCS11, PLAIN_PKCS8, PLAIN_HEX = "encrypted", "pkcs11", "plain PKCS#8", "plain hex"
PROTECTED_KEY_FILES = ("sign.key", "directory.key", "ca.key")
"""The key files `protect_key_files` encrypts: signing keys and the CA's (ECDSA) key."""

_ENCRYPTED_PEM = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"
_PLAIN_PEM = b"-----BEGIN PRIVATE KEY-----"


class KeyFileError(ValueError):
    """A key file cannot be read or written; the message says which file and what to do."""


def passphrase_from_env() -> bytes | None:
    """The key passphrase from ``GATEWAY_KEY_PASSPHRASE_FILE`` or ``GATEWAY_KEY_PASSPHRASE``."""
    path = os.environ.get(PASSPHRASE_FILE_ENV)
    value = os.environ.get(PASSPHRASE_ENV)
    if path and value:
        raise KeyFileError(f"set {PASSPHRASE_FILE_ENV} or {PASSPHRASE_ENV}, not both")
    if path:
        try:
            text = Path(path).read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise KeyFileError(
                f"{PASSPHRASE_FILE_ENV} names {path}, which cannot be read ({exc.strerror})"
            ) from None
        if not text:
            raise KeyFileError(f"the passphrase file {path} is empty")
        return text
    return value.encode() if value else None


def key_file_format(path: Path) -> str:
    """Which of the formats above `path` holds (it is not parsed further)."""
    data = path.read_bytes().strip()
    if data.startswith(_ENCRYPTED_PEM):
        return ENCRYPTED
    if data.startswith(b"pkcs11:"):
        return PKCS11
    if data.startswith(_PLAIN_PEM):
        return PLAIN_PKCS8
    return PLAIN_HEX


def load_signing_key(path: Path, passphrase: bytes | None = None) -> Ed25519Signing:
    """The Ed25519 signer a key file holds or names.

    An encrypted file needs `passphrase`, or else the one `passphrase_from_env` gives.
    """
    data = path.read_bytes().strip()
    if data.startswith(b"pkcs11:"):
        from gateway.pki.pkcs11_signer import Pkcs11Ed25519Signer

        return Pkcs11Ed25519Signer.from_uri(data.decode("ascii", "replace"), where=str(path))
    if data.startswith(_ENCRYPTED_PEM):
        return _ed25519(_decrypted(path, data, passphrase), path)
    if data.startswith(_PLAIN_PEM):
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except ValueError:
            raise KeyFileError(f"{path} is not a readable PKCS#8 key") from None
        return _ed25519(key, path)
    try:
        raw = bytes.fromhex(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise KeyFileError(f"key file {path} is neither PKCS#8, a pkcs11: URI nor hex") from None
    if len(raw) != 32:
        raise KeyFileError(f"key file {path} holds {len(raw)} bytes, expected 32")
    return Ed25519PrivateKey.from_private_bytes(raw)


def _decrypted(path: Path, data: bytes, passphrase: bytes | None) -> PrivateKeyTypes:
    """The key in an encrypted PKCS#8 PEM, under `passphrase` or the environment's."""
    secret = passphrase if passphrase is not None else passphrase_from_env()
    if secret is None:
        raise KeyFileError(
            f"{path} is encrypted: give its passphrase in the file named by "
            f"{PASSPHRASE_FILE_ENV} (or in {PASSPHRASE_ENV})"
        )
    try:
        return serialization.load_pem_private_key(data, password=secret)
    except ValueError:
        raise KeyFileError(
            f"{path} cannot be decrypted: the passphrase is wrong or the file is damaged"
        ) from None


def _encrypted_pem(key: PrivateKeyTypes, passphrase: bytes) -> str:
    """`key` as PKCS#8 PEM encrypted under `passphrase`, once it is long enough."""
    check_passphrase(passphrase)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    return pem.decode("ascii").strip()


def _ed25519(key: object, path: Path) -> Ed25519PrivateKey:
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def check_passphrase(passphrase: bytes) -> None:
    """Refuse a passphrase too short to stand in for the weak KDF (see the module text)."""
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise KeyFileError(
            f"the key passphrase has {len(passphrase)} characters; use a random one of at "
            f"least {MIN_PASSPHRASE_CHARS} (e.g. `openssl rand -base64 32`)"
        )


def write_signing_key(path: Path, key: Ed25519PrivateKey, passphrase: bytes | None) -> None:
    """Write `key` encrypted under `passphrase` (0600, atomically); plain hex without one."""
    if passphrase is None:
        write_secret(path, key.private_bytes_raw().hex())
        return
    write_secret(path, _encrypted_pem(key, passphrase))


def encrypt_pem(key_pem: bytes, passphrase: bytes | None) -> str:
    """A plain PKCS#8 PEM key re-encoded encrypted under `passphrase` (as is without one)."""
    if passphrase is None:
        return key_pem.decode("ascii").strip()
    check_passphrase(passphrase)
    return _encrypted_pem(serialization.load_pem_private_key(key_pem, password=None), passphrase)


def decrypt_pem(path: Path, passphrase: bytes | None) -> bytes:
    """The plain PKCS#8 PEM of the key in `path`, decrypting it if it is encrypted."""
    data = path.read_bytes()
    if not data.lstrip().startswith(_ENCRYPTED_PEM):
        return data
    key = _decrypted(path, data, passphrase)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def plain_key_files(folder: Path) -> list[Path]:
    """The signing and CA key files in `folder` that are stored unencrypted."""
    found = []
    for name in PROTECTED_KEY_FILES:
        path = folder / name
        if path.is_file() and key_file_format(path) in (PLAIN_PKCS8, PLAIN_HEX):
            found.append(path)
    return found


def protect_key_files(folder: Path, passphrase: bytes) -> list[Path]:
    """Encrypt every plain key file `plain_key_files` finds, in place; returns those changed.

    Each encrypted copy is checked to decrypt to the same key before it replaces the
    plain file (atomically, 0600).
    """
    check_passphrase(passphrase)
    changed = []
    for path in plain_key_files(folder):
        if key_file_format(path) == PLAIN_HEX:
            key = load_signing_key(path)
            if not isinstance(key, Ed25519PrivateKey):  # plain hex loads in memory
                raise KeyFileError(f"{path} did not load as an in-memory key")
            plain_pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        else:
            plain_pem = path.read_bytes()
        tmp = path.with_name(path.name + ".enc")
        write_secret(tmp, encrypt_pem(plain_pem, passphrase))
        if decrypt_pem(tmp, passphrase).strip() != plain_pem.strip():
            tmp.unlink(missing_ok=True)
            raise KeyFileError(f"{path}: the encrypted copy does not decrypt to the same key")
        tmp.replace(path)
        changed.append(path)
    return changed
