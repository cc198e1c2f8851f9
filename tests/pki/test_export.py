"""`gateway pki export` writes exactly one member's bundle and nothing of the roots, and
a broker or node refuses to serve where it can read keys that are not its own."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.cli.pki_cmd import oprf_key_pair
from gateway.pki.custody import CustodyError, keys_within_reach, refuse_foreign_keys
from gateway.pki.directory import verify_directory
from gateway.pki.export import export_bundle
from gateway.pki.store import NodeBundle, PkiError, PkiFolder

NODE_FILES = {
    "consortium.txt",
    "ca.crt",
    "directory.pub",
    "tls.crt",
    "tls.key",
    "node.txt",
    "policy-bundle.json",
}
NODE_FILES |= {"sign.key", "seal.key"}


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The usual umask, under which a plain write is world-readable."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def pki(tmp_path: Path) -> PkiFolder:
    folder = PkiFolder(tmp_path / "admin" / "pki")
    folder.init("example.org")
    folder.issue("broker", "broker")
    folder.issue("police-1", "police")
    folder.issue("bank-a", "bank", oprf_key_factory=oprf_key_pair)
    return folder


def secrets_of(pki: PkiFolder) -> dict[str, bytes]:
    """The root keys' bytes as the administrator's folder holds them."""
    return {name: (pki.root / name).read_bytes().strip() for name in ("ca.key", "directory.key")}


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ("police-1", NODE_FILES),
        ("bank-a", NODE_FILES | {"oprf.key"}),
        ("broker", NODE_FILES | {"directory.json", "directory.sig"}),
    ],
)
def test_export_writes_exactly_what_the_member_needs_and_no_root_key(
    pki: PkiFolder, tmp_path: Path, node: str, expected: set[str], loose_umask: None
) -> None:
    out = tmp_path / "srv" / node
    done = export_bundle(pki, node, out)
    assert set(done.files) == expected
    assert {p.name for p in out.iterdir()} == expected
    roots = secrets_of(pki)
    for path in out.iterdir():
        data = path.read_bytes()
        for name, secret in roots.items():
            assert secret not in data, f"{path.name} carries {name}"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    source = pki.bundle(node).folder
    for name in expected - {"node.txt", "directory.json", "directory.sig"}:
        assert (out / name).read_bytes() == (source / name).read_bytes()
    exported = NodeBundle(out)
    assert exported.keys().sign_public == NodeBundle(source).keys().sign_public
    if node == "broker":
        blob = (out / "directory.json").read_bytes(), (out / "directory.sig").read_bytes()
        assert blob == (pki.signed_directory().directory, pki.signed_directory().signature)
        directory = verify_directory(pki.signed_directory(), exported.directory_verify_key())
        assert {m.node_id for m in directory.members} == {"broker", "police-1", "bank-a"}


def test_exporting_the_broker_again_publishes_a_revocation(pki: PkiFolder, tmp_path: Path) -> None:
    out = tmp_path / "srv" / "broker"
    export_bundle(pki, "broker", out)
    pki.revoke("police-1")
    export_bundle(pki, "broker", out)
    blob = pki.signed_directory()
    assert (out / "directory.json").read_bytes() == blob.directory
    member = verify_directory(blob, NodeBundle(out).directory_verify_key()).get("police-1")
    assert member is not None and not member.active


def test_export_refuses_to_mix_custodies(pki: PkiFolder, tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="inside the PKI folder"):
        export_bundle(pki, "bank-a", pki.root / "out")
    export_bundle(pki, "bank-a", tmp_path / "srv" / "bank-a")
    with pytest.raises(PkiError, match="holds the export of bank-a"):
        export_bundle(pki, "police-1", tmp_path / "srv" / "bank-a")
    beside_root = tmp_path / "oops"
    beside_root.mkdir()
    (beside_root / "ca.key").write_bytes((pki.root / "ca.key").read_bytes())
    with pytest.raises(PkiError, match="beside a root key"):
        export_bundle(pki, "bank-a", beside_root)
    with pytest.raises(PkiError, match="no member nobody"):
        export_bundle(pki, "nobody", tmp_path / "srv" / "nobody")
    pki.revoke("police-1")
    with pytest.raises(PkiError, match="revoked"):
        export_bundle(pki, "police-1", tmp_path / "srv" / "police-1")
    assert not (tmp_path / "srv" / "police-1").exists()


def test_a_bundle_inside_the_pki_folder_has_the_roots_within_reach(pki: PkiFolder) -> None:
    """The cheapest move of whoever holds a server: read ../../ca.key."""
    bundle = pki.bundle("bank-a").folder
    found = {p.name for p in keys_within_reach(bundle)}
    assert {"ca.key", "directory.key"} <= found
    assert {"sign.key", "seal.key", "tls.key"} <= found  # police-1's and the broker's
    with pytest.raises(CustodyError, match=r"root key .*ca\.key"):
        refuse_foreign_keys(bundle)


def test_an_exported_bundle_has_nothing_foreign_within_reach(
    pki: PkiFolder, tmp_path: Path
) -> None:
    out = export_bundle(pki, "broker", tmp_path / "run" / "broker").folder
    assert keys_within_reach(out, out) == []
    refuse_foreign_keys(out, out)
    (tmp_path / "run" / "stray").mkdir()
    (tmp_path / "run" / "stray" / "sign.key").write_text("00")
    with pytest.raises(CustodyError, match="another member's key"):
        refuse_foreign_keys(out, out)


def test_broker_serve_from_the_admin_folder_is_refused_in_one_line(pki: PkiFolder) -> None:
    result = CliRunner().invoke(
        app, ["broker", "serve", "--pki", str(pki.root), "--listen", "127.0.0.1:0"]
    )
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: refusing to start")
    assert "ca.key" in lines[0] and "Traceback" not in result.output


def test_node_serve_with_its_bundle_in_the_admin_folder_is_refused(
    pki: PkiFolder, tmp_path: Path
) -> None:
    config = tmp_path / "bank-a.toml"
    made = CliRunner().invoke(
        app,
        [
            "node", "init", "--node", "bank-a", "--role", "bank", "--pki", str(pki.root),
            "--broker", "127.0.0.1:1", "--out", str(config),
        ],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    result = CliRunner().invoke(app, ["node", "serve", "--config", str(config)])
    assert result.exit_code != 0
    assert result.output.startswith("error: node bank-a refusing to start")
    assert "ca.key" in result.output and "Traceback" not in result.output


def test_pki_export_cli_says_what_it_wrote_and_errors_in_one_line(
    pki: PkiFolder, tmp_path: Path
) -> None:
    out = tmp_path / "srv" / "bank-a"
    ok = CliRunner().invoke(
        app, ["pki", "export", "--node", "bank-a", "--out", str(out), "--dir", str(pki.root)]
    )
    assert ok.exit_code == 0, ok.output
    assert "oprf.key" in ok.output and (out / "oprf.key").is_file()
    bad = CliRunner().invoke(
        app, ["pki", "export", "--node", "nobody", "--out", str(out), "--dir", str(pki.root)]
    )
    assert bad.exit_code != 0
    assert bad.output.strip().splitlines() == ["error: no member nobody in the directory"]
