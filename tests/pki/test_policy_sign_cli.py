"""`gateway policy sign`: the administrator signs a policy folder; mistakes are one line."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from gateway.cli import app
from gateway.pki.store import PkiFolder
from gateway.resources import POLICIES

runner = CliRunner()


def test_sign_lists_the_new_bundle_in_the_directory(tmp_path: Path) -> None:
    pki = PkiFolder(tmp_path / "pki")
    pki.init("cli.example")
    folder = tmp_path / "policies"
    shutil.copytree(POLICIES, folder)
    (folder / "node-bank.cedar").write_text((folder / "node-bank.cedar").read_text() + "\n")
    result = runner.invoke(
        app, ["policy", "sign", "--policies", str(folder), "--dir", str(pki.root)]
    )
    assert result.exit_code == 0, result.output
    signed = json.loads((pki.root / "policy-bundle.json").read_bytes())
    digest = hashlib.sha256(base64.b64decode(signed["bundle"])).hexdigest()
    assert pki.directory().policy_bundle == digest
    assert digest in result.output


def test_a_policy_that_does_not_validate_is_one_error_line(tmp_path: Path) -> None:
    pki = PkiFolder(tmp_path / "pki")
    pki.init("cli.example")
    before = (pki.root / "directory.json").read_bytes()
    folder = tmp_path / "policies"
    shutil.copytree(POLICIES, folder)
    (folder / "broker.cedar").write_text('@id("x") permit(principal, action, resource) when {')
    result = runner.invoke(
        app, ["policy", "sign", "--policies", str(folder), "--dir", str(pki.root)]
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "broker.cedar" in lines[0]
    assert (pki.root / "directory.json").read_bytes() == before


def test_a_missing_folder_is_one_error_line(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["policy", "sign", "--policies", str(tmp_path / "none"), "--dir", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert result.output.strip().startswith("error: ") and "--policies" in result.output
