"""`pki issue` never replaces a member's keys; re-keying is `pki rotate`, which says what next.

Issuing a listed node again used to overwrite its bundle and directory entry, so the
running node held keys the directory no longer named ("sealed payload does not open").
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.cli.pki_cmd import oprf_key_pair
from gateway.pki.store import PkiError, PkiFolder

runner = CliRunner()


@pytest.fixture
def pki(tmp_path: Path) -> PkiFolder:
    folder = PkiFolder(tmp_path / "pki")
    folder.init("example.org")
    folder.issue("broker", "broker")
    folder.issue("bank-a", "bank", endpoint="127.0.0.1:1", oprf_key_factory=oprf_key_pair)
    return folder


def snapshot(pki: PkiFolder) -> dict[str, bytes]:
    """Every file of the PKI folder but the lock, by path."""
    return {
        str(p.relative_to(pki.root)): p.read_bytes()
        for p in sorted(pki.root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def test_issuing_a_listed_node_again_is_refused_and_changes_nothing(pki: PkiFolder) -> None:
    before = snapshot(pki)
    with pytest.raises(PkiError, match=r"gateway pki rotate --node bank-a"):
        pki.issue("bank-a", "bank", oprf_key_factory=oprf_key_pair)
    assert snapshot(pki) == before


def test_cli_refuses_with_one_error_line_naming_rotate(pki: PkiFolder) -> None:
    before = snapshot(pki)
    args = ["pki", "issue", "--node", "bank-a", "--role", "bank", "--dir", str(pki.root)]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: bank-a is already issued (keys v1)")
    assert "gateway pki rotate --node bank-a" in lines[0]
    assert snapshot(pki) == before


def test_a_revoked_node_is_readmitted_with_new_keys(pki: PkiFolder) -> None:
    old_keys = pki.bundle("bank-a").keys()
    pki.revoke("bank-a")
    pki.issue("bank-a", "bank", oprf_key_factory=oprf_key_pair)
    member = pki.directory().get("bank-a")
    assert member is not None and member.active and member.key_version == 2
    assert member.sign_key != old_keys.sign_public
    assert member.sign_key == pki.bundle("bank-a").keys().sign_public


def rotate(pki: PkiFolder, *args: str) -> list[str]:
    result = runner.invoke(
        app, ["pki", "rotate", *args, "--dir", str(pki.root)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_rotate_says_what_each_member_does_next(pki: PkiFolder) -> None:
    lines = rotate(pki, "--node", "bank-a", "--sealing", "--oprf")
    bundle = pki.root / "nodes" / "bank-a"
    assert f"  bank-a: copy {bundle} to it, then restart it (`gateway node serve`)" in lines
    assert any(line.startswith("  bank-a: then rebuild its match index") for line in lines)
    assert any(line.startswith("  broker: nothing") for line in lines)
    assert any(line.startswith("  other nodes: nothing") for line in lines)
    assert any("failed:bank-a" in line for line in lines if line.startswith("  senders:"))

    lines = rotate(pki, "--node", "bank-a", "--tls")
    assert not any("reindex" in line or line.startswith("  senders:") for line in lines)

    lines = rotate(pki, "--node", "broker", "--tls")
    assert any(
        line.startswith("  broker: copy") and "gateway broker serve" in line for line in lines
    )
    assert not any(line.startswith("  broker: nothing") for line in lines)
