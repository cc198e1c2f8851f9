"""A consortium whose CA, directory key, broker log key and a node's signing key stay in
an HSM (SoftHSM2), set up with the CLI, and checked by the verifiers that already exist:
OpenSSL for the certificates, the node's preflight for its bundle against the signed
directory, and the node's note verifier for the broker's checkpoints.

The cheapest moves against HSM-held keys: copy the PKI folder (its key files hold only
URIs), or use it without the token's PIN.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.audit.checkpoint import open_checkpoint
from gateway.audit.log import AuditLog
from gateway.audit.note import Ed25519Signer, Ed25519Verifier
from gateway.cli import app
from gateway.config import NodeConfig
from gateway.db import make_engine
from gateway.migrate import upgrade
from gateway.pki.key_files import plain_key_files
from gateway.pki.pkcs11_signer import Pkcs11Ed25519Signer
from gateway.pki.store import PkiFolder
from nodes.preflight.pki import BundleFacts, check_bundle, check_member
from tests.pki.softhsm import SoftHsm

runner = CliRunner()
CONSORTIUM = "hsm-ca.example"


def keygen(softhsm: SoftHsm, label: str, key_type: str = "ed25519") -> str:
    uri = softhsm.uri(label)
    done = runner.invoke(app, ["pki", "hsm-keygen", "--uri", uri, "--type", key_type])
    assert done.exit_code == 0, done.output
    public = bytes.fromhex(done.output.strip())
    assert len(public) == (32 if key_type == "ed25519" else 65)  # raw / SEC1 uncompressed
    return uri


@pytest.fixture(scope="module")
def pki(softhsm: SoftHsm, tmp_path_factory: pytest.TempPathFactory) -> PkiFolder:
    root = tmp_path_factory.mktemp("hsm-pki") / "pki"
    ca_uri, dir_uri = keygen(softhsm, "ca", "p256"), keygen(softhsm, "dir")
    broker_uri, police_uri = keygen(softhsm, "broker-log"), keygen(softhsm, "police-1")
    argv = ["pki", "init", "--consortium", CONSORTIUM, "--dir", str(root)]
    done = runner.invoke(app, [*argv, "--ca-key-uri", ca_uri, "--directory-key-uri", dir_uri])
    assert done.exit_code == 0, done.output
    for node, role, uri in (("broker", "broker", broker_uri), ("police-1", "police", police_uri)):
        argv = ["pki", "issue", "--node", node, "--role", role, "--dir", str(root)]
        done = runner.invoke(app, [*argv, "--signing-key-uri", uri])
        assert done.exit_code == 0, done.output
    done = runner.invoke(
        app, ["pki", "issue", "--node", "bank-a", "--role", "bank", "--dir", str(root)]
    )
    assert done.exit_code == 0, done.output
    return PkiFolder(root)


def node_config(pki: PkiFolder, node_id: str, role: str) -> NodeConfig:
    return NodeConfig(
        node_id=node_id,
        role=role,
        listen="127.0.0.1:0",
        broker_endpoint="127.0.0.1:1",
        database="sqlite:///unused.db",
        pki_bundle=pki.bundle(node_id).folder,
    )


def test_the_pki_folder_holds_no_private_key_only_uris(pki: PkiFolder) -> None:
    for path in (pki.root / "ca.key", pki.root / "directory.key"):
        assert path.read_text().startswith("pkcs11:token="), path
        assert "pin-value" not in path.read_text()
    assert (pki.bundle("police-1").folder / "sign.key").read_text().startswith("pkcs11:")
    assert plain_key_files(pki.root) == []
    assert plain_key_files(pki.bundle("police-1").folder) == []


def test_certificates_signed_in_the_hsm_verify_with_openssl(pki: PkiFolder) -> None:
    ca = str(pki.root / "ca.crt")
    for node in ("broker", "police-1", "bank-a"):
        cert = str(pki.bundle(node).tls_cert)
        done = subprocess.run(
            ["openssl", "verify", "-CAfile", ca, cert], capture_output=True, text=True
        )
        assert done.returncode == 0 and done.stdout.strip().endswith(": OK"), done
    rogue = subprocess.run(  # a certificate is not accepted under another root
        ["openssl", "verify", "-CAfile", str(pki.bundle("bank-a").tls_cert), ca],
        capture_output=True,
    )
    assert rogue.returncode != 0


def test_the_node_preflight_accepts_an_hsm_held_signing_key(pki: PkiFolder) -> None:
    config = node_config(pki, "police-1", "police")
    bundle_check, facts = check_bundle(config)
    assert bundle_check.status == "OK", bundle_check
    assert isinstance(facts, BundleFacts)
    assert isinstance(facts.keys.signing, Pkcs11Ed25519Signer)
    member = check_member(config, pki.directory(), facts)  # directory verified by directory.pub
    assert member.status == "OK", member


def test_the_broker_log_key_in_the_hsm_signs_checkpoints_nodes_accept(
    pki: PkiFolder, tmp_path: Path
) -> None:
    keys = pki.bundle("broker").keys()
    assert isinstance(keys.signing, Pkcs11Ed25519Signer)
    origin = f"{CONSORTIUM}/gateway-audit"  # as `build_broker` names it
    engine = make_engine(f"sqlite:///{tmp_path / 'broker.db'}")
    upgrade(engine, "broker")
    log = AuditLog(engine, Ed25519Signer(origin, keys.signing), origin)
    log.run(lambda _session, append: append({"type": "decision", "at_ms": 1, "kind": "PING"}))
    note = log.checkpoint()
    log.close()
    engine.dispose()
    listed = pki.directory().get("broker")
    assert listed is not None
    checkpoint, _ = open_checkpoint(note, [Ed25519Verifier(origin, listed.sign_key)], origin=origin)
    assert checkpoint.size == 1


def test_a_copied_pki_folder_without_the_pin_cannot_issue(
    pki: PkiFolder, softhsm: SoftHsm, tmp_path: Path
) -> None:
    pin = softhsm.pin_file.read_text()
    softhsm.pin_file.unlink()  # the thief has the folder and the token, not the PIN
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "gateway",
                "pki",
                "issue",
                "--node",
                "police-9",
                "--role",
                "police",
                "--dir",
                str(pki.root),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "GATEWAY_HSM_PIN": ""},
        )
    finally:
        softhsm.pin_file.write_text(pin)
    assert done.returncode == 1, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "the HSM PIN file" in lines[0] and "cannot be read" in lines[0]
    assert pki.directory().get("police-9") is None
    assert not pki.bundle("police-9").folder.exists()


def test_hsm_keygen_refuses_to_overwrite_a_key_file(softhsm: SoftHsm, tmp_path: Path) -> None:
    existing = tmp_path / "sign.key"
    existing.write_text("00" * 32 + "\n")
    done = runner.invoke(
        app, ["pki", "hsm-keygen", "--uri", softhsm.uri("fresh"), "--out", str(existing)]
    )
    assert done.exit_code == 1 and "exists; move it away first" in done.output
    assert existing.read_text() == "00" * 32 + "\n"
    out = tmp_path / "new.key"
    done = runner.invoke(
        app, ["pki", "hsm-keygen", "--uri", softhsm.uri("fresh"), "--out", str(out)]
    )
    assert done.exit_code == 0, done.output
    assert out.read_text().strip() == softhsm.uri("fresh")
    assert Pkcs11Ed25519Signer.from_uri(
        out.read_text().strip()
    ).public_key().public_bytes_raw() == (bytes.fromhex(done.output.strip()))
