"""`gateway node check` says how the signing key is kept, and warns about a plain one."""

from __future__ import annotations

from pathlib import Path

from gateway.config import NodeConfig
from gateway.pki.key_files import protect_key_files
from gateway.pki.keys import NodeKeys
from nodes.preflight.key_storage import check_key_storage

PASSPHRASE = b"u7Rk2mWq9ZxC4vBn1LpT8sHe"


def config(bundle: Path) -> NodeConfig:
    return NodeConfig(
        node_id="police-1",
        role="police",
        listen="127.0.0.1:0",
        broker_endpoint="127.0.0.1:1",
        database="sqlite:///unused.db",
        pki_bundle=bundle,
    )


def test_plain_signing_key_warns_with_the_command_that_encrypts_it(tmp_path: Path) -> None:
    NodeKeys.generate().save(tmp_path)
    check = check_key_storage(config(tmp_path))
    assert check.status == "WARN" and not check.failed
    assert "sign.key unencrypted" in check.detail
    assert f"gateway pki protect-keys --dir {tmp_path}" in check.detail


def test_encrypted_or_hsm_signing_key_passes(tmp_path: Path) -> None:
    NodeKeys.generate().save(tmp_path)
    protect_key_files(tmp_path, PASSPHRASE)
    assert check_key_storage(config(tmp_path)).line() == (
        "OK   key storage: signing key encrypted PKCS#8"
    )
    (tmp_path / "sign.key").write_text("pkcs11:token=t;object=o?module-path=/m.so\n")
    assert check_key_storage(config(tmp_path)).detail == "signing key in an HSM (PKCS#11)"
