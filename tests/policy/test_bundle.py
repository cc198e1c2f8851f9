"""Signed policy bundles: only the bundle the directory key signed and the directory lists loads.

Each test takes the attacker's cheapest move against a server's policy: edit a policy file
in the bundle (one character), sign a bundle with a key of one's own, replay an older
bundle the same key signed, hand over a bundle of another consortium, or run with a
directory that lists no bundle.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.pki.store import PkiFolder
from gateway.policy import Party, PolicyLoadError, PolicyRequest, make_context
from gateway.policy.bundle import (
    BundleError,
    PolicyBundle,
    listing_problem,
    load_signed_engine,
    read_policy_folder,
    sign_bundle,
    verify_bundle,
)
from gateway.resources import POLICIES

CONSORTIUM = "bundle.example"


@pytest.fixture
def pki(tmp_path: Path) -> PkiFolder:
    folder = PkiFolder(tmp_path / "pki")
    folder.init(CONSORTIUM)
    return folder


def _inner(signed: bytes) -> bytes:
    return base64.b64decode(json.loads(signed)["bundle"])


def _load(pki: PkiFolder, name: str = "broker.cedar") -> object:
    return load_signed_engine(
        pki.root / "policy-bundle.json",
        name,
        pki.directory_key().public_key(),
        consortium=CONSORTIUM,
        listed_sha256=pki.directory().policy_bundle,
    )


def test_init_signs_the_shipped_policies_and_the_directory_lists_their_hash(
    pki: PkiFolder,
) -> None:
    signed = (pki.root / "policy-bundle.json").read_bytes()
    inner = _inner(signed)
    assert pki.directory().policy_bundle == hashlib.sha256(inner).hexdigest()
    files = json.loads(inner)["files"]
    shipped = {p.name for p in POLICIES.iterdir() if p.suffix in (".cedar", ".cedarschema")}
    assert set(files) == shipped
    for name in shipped:
        assert files[name] == (POLICIES / name).read_text(encoding="utf-8")


def test_decisions_name_the_bundle_hash_which_covers_the_schema(pki: PkiFolder) -> None:
    engine = _load(pki)
    listed = pki.directory().policy_bundle
    request = PolicyRequest(
        Party("police-1", "police", "p"),
        Party("bank-a", "bank", "b"),
        "PING",
        make_context(sender_kind_last_hour=1, sender_actions_last_hour=0, sender_bytes_last_hour=0),
    )
    assert engine.decide(request).policy_set_hash == listed  # type: ignore[attr-defined]

    folder = pki.root.parent / "policies"
    shutil.copytree(POLICIES, folder)
    schema = folder / "schema.cedarschema"
    schema.write_text(schema.read_text() + "\n// comment only\n")
    pki.sign_policies(folder)
    assert pki.directory().policy_bundle != listed  # a schema change is a new bundle


def test_a_one_character_edit_of_the_signed_bundle_is_refused(pki: PkiFolder) -> None:
    path = pki.root / "policy-bundle.json"
    doc = json.loads(path.read_bytes())
    inner = json.loads(base64.b64decode(doc["bundle"]))
    inner["files"]["broker.cedar"] = inner["files"]["broker.cedar"].replace("100", "900", 1)
    edited = json.dumps(inner, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    doc["bundle"] = base64.b64encode(edited.encode()).decode()
    path.write_text(json.dumps(doc))
    with pytest.raises(BundleError, match="signature does not verify"):
        _load(pki)


def test_a_bundle_signed_with_another_key_is_refused(pki: PkiFolder) -> None:
    bundle = read_policy_folder(POLICIES, CONSORTIUM)
    (pki.root / "policy-bundle.json").write_bytes(sign_bundle(bundle, Ed25519PrivateKey.generate()))
    with pytest.raises(BundleError, match="signature does not verify"):
        _load(pki)


def test_an_older_bundle_signed_by_the_same_key_is_refused(pki: PkiFolder, tmp_path: Path) -> None:
    old = (pki.root / "policy-bundle.json").read_bytes()
    folder = tmp_path / "stricter"
    shutil.copytree(POLICIES, folder)
    text = (folder / "broker.cedar").read_text()
    assert "context.sender_kind_last_hour > 100 }" in text
    (folder / "broker.cedar").write_text(
        text.replace(
            "context.sender_kind_last_hour > 100 }", "context.sender_kind_last_hour > 10 }"
        )
    )
    new_hash = pki.sign_policies(folder)
    assert _load(pki).policy_set_hash == new_hash  # type: ignore[attr-defined]
    (pki.root / "policy-bundle.json").write_bytes(old)  # replay the earlier, laxer one
    with pytest.raises(BundleError, match="not the one the directory lists"):
        _load(pki)


def test_sign_policies_copies_the_bundle_to_every_node_and_raises_the_serial(
    pki: PkiFolder, tmp_path: Path
) -> None:
    bundle = pki.issue("police-1", "police")
    before = pki.directory().serial
    assert bundle.policy_bundle.read_bytes() == (pki.root / "policy-bundle.json").read_bytes()
    folder = tmp_path / "p"
    shutil.copytree(POLICIES, folder)
    (folder / "node-police.cedar").write_text((folder / "node-police.cedar").read_text() + "\n")
    digest = pki.sign_policies(folder)
    assert pki.directory().serial == before + 1
    assert hashlib.sha256(_inner(bundle.policy_bundle.read_bytes())).hexdigest() == digest
    assert pki.sign_policies(folder) == digest
    assert pki.directory().serial == before + 1  # the same bundle again changes nothing


def test_a_bundle_of_another_consortium_is_refused(pki: PkiFolder) -> None:
    other = read_policy_folder(POLICIES, "other.example")
    signed = sign_bundle(other, pki.directory_key())
    with pytest.raises(BundleError, match=r"consortium 'other\.example'"):
        verify_bundle(signed, pki.directory_key().public_key(), consortium=CONSORTIUM)


def test_a_directory_listing_no_bundle_refuses_every_bundle() -> None:
    assert listing_problem("ab" * 32, "") is not None
    assert listing_problem("ab" * 32, "cd" * 32) is not None
    assert listing_problem("ab" * 32, "ab" * 32) is None


def test_a_policy_set_that_does_not_validate_cannot_be_signed(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    shutil.copytree(POLICIES, folder)
    (folder / "broker.cedar").write_text(
        '@id("x") permit(principal, action, resource) when { context.no_such_field };\n'
    )
    with pytest.raises(PolicyLoadError) as info:
        read_policy_folder(folder, CONSORTIUM)
    assert "broker.cedar" in str(info.value)


def test_bundle_bytes_are_canonical_json_sorted_without_spaces() -> None:
    bundle = PolicyBundle("c", {"z.cedar": "b", "schema.cedarschema": "a"})
    assert (
        bundle.to_bytes() == b'{"consortium":"c","files":{"schema.cedarschema":"a","z.cedar":"b"}}'
    )
    assert bundle.sha256 == hashlib.sha256(bundle.to_bytes()).hexdigest()
