"""`PkiFolder.rotate` and `gateway pki rotate`: which keys change, and what stays."""

from __future__ import annotations

import stat
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.cli.pki_cmd import oprf_key_pair
from gateway.pki.ca import certificate_fingerprint
from gateway.pki.directory import Member
from gateway.pki.store import PkiError, PkiFolder


@pytest.fixture
def pki(tmp_path: Path) -> PkiFolder:
    folder = PkiFolder(tmp_path / "pki")
    folder.init("example.org")
    folder.issue("broker", "broker")
    folder.issue("police-1", "police")
    folder.issue("bank-a", "bank", endpoint="127.0.0.1:1", oprf_key_factory=oprf_key_pair)
    return folder


KEY_FILES = ("sign.key", "seal.key", "oprf.key", "tls.key", "tls.crt")


def snapshot(pki: PkiFolder, node_id: str) -> tuple[Member, dict[str, bytes]]:
    """The member as the directory lists it, and the bytes of its bundle's key files."""
    folder = pki.bundle(node_id).folder
    member = pki.directory().get(node_id)
    assert member is not None
    return member, {name: (folder / name).read_bytes() for name in KEY_FILES}


FIELDS = {
    "signing": ("sign_key", "sign.key"),
    "sealing": ("seal_key", "seal.key"),
    "oprf": ("oprf_key", "oprf.key"),
    "tls": ("cert_sha256", "tls.key"),
}


@pytest.mark.parametrize("kind", sorted(FIELDS))
def test_rotating_one_key_changes_that_key_only(pki: PkiFolder, kind: str) -> None:
    old, old_files = snapshot(pki, "bank-a")
    serial = pki.directory().serial
    rotation = pki.rotate("bank-a", oprf_key_factory=oprf_key_pair, **{kind: True})
    new, new_files = snapshot(pki, "bank-a")
    assert rotation.rotated == (kind,)
    assert rotation.serial == serial + 1 == pki.directory().serial
    assert new.key_version == old.key_version + 1 == rotation.key_version
    for other, (field, filename) in FIELDS.items():
        changed = other == kind
        assert (getattr(new, field) != getattr(old, field)) is changed, field
        assert (new_files[filename] != old_files[filename]) is changed, filename
    assert replace(new, **{f: getattr(old, f) for f, _ in FIELDS.values()}) == replace(
        old, key_version=new.key_version
    )  # id, role, agency, endpoint and status are kept
    bundle = pki.bundle("bank-a")
    assert new.cert_sha256 == certificate_fingerprint(bundle.tls_cert.read_bytes())
    assert bundle.keys().sign_public == new.sign_key
    assert bundle.keys().seal_public == new.seal_key
    for name in ("sign.key", "seal.key", "oprf.key", "tls.key"):
        assert stat.S_IMODE((bundle.folder / name).stat().st_mode) == 0o600, name


def test_rotating_without_naming_keys_rotates_all_the_member_holds(pki: PkiFolder) -> None:
    assert pki.rotate("bank-a", oprf_key_factory=oprf_key_pair).rotated == (
        "signing",
        "sealing",
        "oprf",
        "tls",
    )
    assert pki.rotate("police-1").rotated == ("signing", "sealing", "tls")
    assert pki.rotate("broker").rotated == ("sealing", "tls")


def test_rotation_refuses_what_it_cannot_do(pki: PkiFolder) -> None:
    serial = pki.directory().serial
    with pytest.raises(PkiError, match="holds no OPRF key"):
        pki.rotate("broker", oprf=True)
    with pytest.raises(PkiError, match="needs an OPRF key factory"):
        pki.rotate("bank-a", oprf=True)
    with pytest.raises(PkiError, match="broker's signing key signs the audit log"):
        pki.rotate("broker", signing=True)
    with pytest.raises(PkiError, match="no member"):
        pki.rotate("ghost-1")
    pki.revoke("police-1")
    with pytest.raises(PkiError, match="revoked"):
        pki.rotate("police-1")
    assert pki.directory().serial == serial + 1  # the revocation only


def test_concurrent_changes_each_get_their_own_serial(pki: PkiFolder) -> None:
    serial = pki.directory().serial
    errors: list[BaseException] = []

    def rotate(node_id: str) -> None:
        try:
            for _ in range(3):
                pki.rotate(node_id, sealing=True)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=rotate, args=(n,)) for n in ("police-1", "bank-a")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    directory = pki.directory()
    assert directory.serial == serial + 6
    versions = {m.node_id: m.key_version for m in directory.members}
    assert versions["police-1"] == versions["bank-a"] == 4  # no rotation was lost


def test_cli_rotate(pki: PkiFolder) -> None:
    runner = CliRunner()
    old = pki.directory().get("bank-a")
    result = runner.invoke(
        app, ["pki", "rotate", "--node", "bank-a", "--sealing", "--tls", "--dir", str(pki.root)]
    )
    assert result.exit_code == 0, result.output
    assert "rotated sealing, tls of bank-a (v2)" in result.output
    new = pki.directory().get("bank-a")
    assert old is not None and new is not None
    assert new.key_version == old.key_version + 1 and new.sign_key == old.sign_key

    result = runner.invoke(
        app, ["pki", "rotate", "--node", "broker", "--oprf", "--dir", str(pki.root)]
    )
    assert result.exit_code == 1
    assert "holds no OPRF key" in result.output
    # a police node issued without one gets one for the watchlist (docs/watchlist.md)
    result = runner.invoke(
        app, ["pki", "rotate", "--node", "police-1", "--oprf", "--dir", str(pki.root)]
    )
    assert result.exit_code == 0, result.output
    assert len(pki.directory().get("police-1").oprf_key) == 32  # type: ignore[union-attr]
