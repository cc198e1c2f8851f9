"""Signing and CA key files encrypted at rest (PKCS#8), and the plain ones they replace.

The cheapest move against a key file is to copy it (a backup, a shared volume, a stolen
bundle) and load it: an encrypted file gives nothing without the passphrase, which is
kept apart from it. Files are checked with OpenSSL, an independent implementation, so
they are the standard format an HSM's import tool reads.
"""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.pki.directory import verify_directory
from gateway.pki.key_files import (
    PASSPHRASE_ENV,
    PASSPHRASE_FILE_ENV,
    KeyFileError,
    key_file_format,
    load_signing_key,
    passphrase_from_env,
    plain_key_files,
    protect_key_files,
    write_signing_key,
)
from gateway.pki.keys import NodeKeys
from gateway.pki.store import PkiFolder

PASSPHRASE = b"kq3V9cWz7fXo1rNm8TyHb2Ld"
ED25519_DER_PREFIX = bytes.fromhex("302e020100300506032b657004220420")
"""RFC 8410 PKCS#8 of an Ed25519 key, up to the 32-byte seed that ends it."""


@pytest.fixture(autouse=True)
def no_passphrase_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    monkeypatch.delenv(PASSPHRASE_FILE_ENV, raising=False)


def openssl_seed(path: Path, passphrase: bytes) -> bytes:
    """The Ed25519 seed OpenSSL finds in an encrypted PKCS#8 file."""
    der = subprocess.run(
        ["openssl", "pkcs8", "-in", str(path), "-passin", "stdin", "-outform", "DER"],
        input=passphrase + b"\n",
        capture_output=True,
        check=True,
    ).stdout
    assert der.startswith(ED25519_DER_PREFIX) and len(der) == len(ED25519_DER_PREFIX) + 32
    return der[len(ED25519_DER_PREFIX) :]


def test_an_encrypted_key_file_is_standard_pkcs8_that_holds_no_key_in_clear(
    tmp_path: Path,
) -> None:
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes_raw()
    path = tmp_path / "sign.key"
    write_signing_key(path, key, PASSPHRASE)
    data = path.read_bytes()
    assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert seed not in data and seed.hex().encode() not in data
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert openssl_seed(path, PASSPHRASE) == seed
    wrong = subprocess.run(
        ["openssl", "pkcs8", "-in", str(path), "-passin", "pass:guess", "-outform", "DER"],
        capture_output=True,
    )
    assert wrong.returncode != 0


def test_a_copied_key_file_does_not_load_without_its_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "sign.key"
    write_signing_key(path, Ed25519PrivateKey.generate(), PASSPHRASE)
    stolen = tmp_path / "copy.key"
    stolen.write_bytes(path.read_bytes())  # the cheapest move: copy the file and load it
    with pytest.raises(
        KeyFileError, match=f"is encrypted: give its passphrase.*{PASSPHRASE_FILE_ENV}"
    ):
        load_signing_key(stolen)
    with pytest.raises(KeyFileError, match="cannot be decrypted: the passphrase is wrong") as exc:
        load_signing_key(stolen, b"a-guess-of-twenty-chars")
    assert PASSPHRASE.decode() not in str(exc.value)


def test_the_passphrase_comes_from_a_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "sign.key"
    write_signing_key(path, key, PASSPHRASE)
    secret = tmp_path / "passphrase"
    secret.write_bytes(PASSPHRASE + b"\n")
    monkeypatch.setenv(PASSPHRASE_FILE_ENV, str(secret))
    loaded = load_signing_key(path)
    assert loaded.public_key().public_bytes_raw() == key.public_key().public_bytes_raw()
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE.decode())
    with pytest.raises(KeyFileError, match="not both"):
        passphrase_from_env()
    monkeypatch.delenv(PASSPHRASE_FILE_ENV)
    assert passphrase_from_env() == PASSPHRASE
    monkeypatch.delenv(PASSPHRASE_ENV)
    monkeypatch.setenv(PASSPHRASE_FILE_ENV, str(tmp_path / "missing"))
    with pytest.raises(KeyFileError, match="cannot be read"):
        passphrase_from_env()
    (tmp_path / "empty").write_text("\n")
    monkeypatch.setenv(PASSPHRASE_FILE_ENV, str(tmp_path / "empty"))
    with pytest.raises(KeyFileError, match="is empty"):
        passphrase_from_env()


def test_a_short_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="has 6 characters; use a random one of at least 20"):
        write_signing_key(tmp_path / "sign.key", Ed25519PrivateKey.generate(), b"secret")
    assert not (tmp_path / "sign.key").exists()


def test_plain_key_files_still_load_and_are_encrypted_in_place(tmp_path: Path) -> None:
    keys = NodeKeys.generate()
    keys.save(tmp_path)  # the older layout: raw hex
    assert key_file_format(tmp_path / "sign.key") == "plain hex"
    loaded = NodeKeys.load(tmp_path)
    assert loaded.sign_public == keys.sign_public
    other = Ed25519PrivateKey.generate()
    (tmp_path / "directory.key").write_bytes(
        other.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    assert plain_key_files(tmp_path) == [tmp_path / "sign.key", tmp_path / "directory.key"]

    changed = protect_key_files(tmp_path, PASSPHRASE)
    assert changed == [tmp_path / "sign.key", tmp_path / "directory.key"]
    assert plain_key_files(tmp_path) == []
    assert NodeKeys.load(tmp_path, passphrase=PASSPHRASE).sign_public == keys.sign_public
    assert openssl_seed(tmp_path / "directory.key", PASSPHRASE) == other.private_bytes_raw()
    assert protect_key_files(tmp_path, PASSPHRASE) == []  # running it again changes nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["directory.key", "seal.key", "sign.key"]


def test_a_pki_folder_with_a_passphrase_encrypts_every_signing_and_ca_key(tmp_path: Path) -> None:
    pki = PkiFolder(tmp_path / "pki", key_passphrase=PASSPHRASE)
    pki.init("enc.example")
    bundle = pki.issue("police-1", "police")
    for path in (pki.root / "ca.key", pki.root / "directory.key", bundle.folder / "sign.key"):
        assert key_file_format(path) == "encrypted", path
    assert plain_key_files(pki.root) == [] and plain_key_files(bundle.folder) == []
    directory = pki.directory()
    assert directory.get("police-1").sign_key == bundle.keys(PASSPHRASE).sign_public
    pki.rotate("police-1", signing=True, tls=True)  # the encrypted CA still issues
    assert key_file_format(bundle.folder / "sign.key") == "encrypted"

    without = PkiFolder(tmp_path / "pki")  # the administrator forgot the passphrase
    with pytest.raises(KeyFileError, match=r"ca\.key is encrypted"):
        without.issue("bank-a", "bank", oprf_key_factory=lambda: (b"\x01" * 32, b"\x02" * 32))
    assert not without.bundle("bank-a").folder.exists()  # nothing half-written
    before = (bundle.folder / "sign.key").read_bytes()
    with pytest.raises(KeyFileError, match="is encrypted"):
        without.rotate("police-1", signing=True)
    assert (bundle.folder / "sign.key").read_bytes() == before
    assert verify_directory(pki.signed_directory(), pki.directory_key().public_key()).serial == 2
    with pytest.raises(KeyFileError, match="at least 20"):
        PkiFolder(tmp_path / "other", key_passphrase=b"short")
