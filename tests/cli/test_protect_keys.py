"""`gateway pki protect-keys` converts plain key files; `pki init` encrypts from the start.

The migration path for a consortium issued before keys were encrypted: its plain files
keep working (with a warning from `gateway node check`), and one command per folder
encrypts them. Every mistake is one `error:` line.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.pki.key_files import PASSPHRASE_ENV, PASSPHRASE_FILE_ENV, key_file_format
from gateway.pki.store import PkiFolder

runner = CliRunner()
PASSPHRASE = "Jc8wQp2LxV4nR7tYz1Ka6sDm"


@pytest.fixture
def passphrase_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    monkeypatch.delenv(PASSPHRASE_FILE_ENV, raising=False)
    path = tmp_path / "passphrase"
    path.write_text(PASSPHRASE + "\n")
    return path


def one_error(result: object, text: str) -> None:
    output = getattr(result, "output", "")
    assert getattr(result, "exit_code", 0) == 1, output
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], lines
    assert "Traceback" not in output


def test_protect_keys_encrypts_a_plain_pki_folder_and_its_bundles(
    tmp_path: Path, passphrase_file: Path
) -> None:
    pki = PkiFolder(tmp_path / "pki")
    pki.init("plain.example")
    bundle = pki.issue("police-1", "police")
    signing_before = bundle.keys().sign_public

    one_error(
        runner.invoke(app, ["pki", "protect-keys", "--dir", str(pki.root)]),
        f"no passphrase: set {PASSPHRASE_FILE_ENV}",
    )
    assert key_file_format(pki.root / "directory.key") == "plain hex"

    env = {PASSPHRASE_FILE_ENV: str(passphrase_file)}
    done = runner.invoke(app, ["pki", "protect-keys", "--dir", str(pki.root)], env=env)
    assert done.exit_code == 0, done.output
    assert "directory.key" in done.output and "ca.key" in done.output
    done = runner.invoke(app, ["pki", "protect-keys", "--dir", str(bundle.folder)], env=env)
    assert done.exit_code == 0 and "sign.key" in done.output, done.output
    for path in (pki.root / "directory.key", pki.root / "ca.key", bundle.folder / "sign.key"):
        assert key_file_format(path) == "encrypted", path

    issued = runner.invoke(
        app,
        ["pki", "issue", "--node", "police-2", "--role", "police", "--dir", str(pki.root)],
        env=env,
    )
    assert issued.exit_code == 0, issued.output
    assert key_file_format(pki.root / "nodes" / "police-2" / "sign.key") == "encrypted"
    one_error(
        runner.invoke(
            app, ["pki", "issue", "--node", "police-3", "--role", "police", "--dir", str(pki.root)]
        ),
        "ca.key is encrypted: give its passphrase",
    )
    encrypted = PkiFolder(pki.root, key_passphrase=PASSPHRASE.encode())
    assert encrypted.bundle("police-1").keys(PASSPHRASE.encode()).sign_public == signing_before
    assert encrypted.directory().get("police-3") is None


def test_a_wrong_passphrase_or_folder_is_one_error_line(
    tmp_path: Path, passphrase_file: Path
) -> None:
    one_error(
        runner.invoke(app, ["pki", "protect-keys", "--dir", str(tmp_path / "none")]),
        "is not a folder",
    )
    short = tmp_path / "short"
    short.write_text("hunter2\n")
    one_error(
        runner.invoke(
            app,
            ["pki", "protect-keys", "--dir", str(tmp_path)],
            env={PASSPHRASE_FILE_ENV: str(short)},
        ),
        "use a random one of at least 20",
    )
    env = {PASSPHRASE_FILE_ENV: str(passphrase_file)}
    assert (
        runner.invoke(
            app,
            ["pki", "init", "--consortium", "c.example", "--dir", str(tmp_path / "pki")],
            env=env,
        ).exit_code
        == 0
    )
    one_error(
        runner.invoke(
            app,
            [
                "pki",
                "issue",
                "--node",
                "bank-a",
                "--role",
                "police",
                "--dir",
                str(tmp_path / "pki"),
            ],
            env={PASSPHRASE_ENV: "a-wrong-passphrase-of-some-length"},
        ),
        "cannot be decrypted: the passphrase is wrong",
    )
