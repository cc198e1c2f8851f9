"""A police node's OPRF key for the watchlist: issued by the CLI's factory, added later by
rotation to a police node issued without one, and never given to the regulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli.pki_cmd import oprf_key_pair
from gateway.crypto.blinded import OprfServer
from gateway.pki.keys import read_hex
from gateway.pki.store import PkiError, PkiFolder


@pytest.fixture
def pki(tmp_path: Path) -> PkiFolder:
    folder = PkiFolder(tmp_path / "pki")
    folder.init("example.org")
    return folder


def test_a_police_node_issued_with_a_factory_publishes_its_oprf_key(pki: PkiFolder) -> None:
    bundle = pki.issue("police-1", "police", oprf_key_factory=oprf_key_pair)
    listed = pki.directory().get("police-1")
    assert listed is not None
    assert listed.oprf_key == OprfServer(read_hex(bundle.oprf_key, 32)).public_key


def test_a_police_node_without_one_gets_it_by_rotation(pki: PkiFolder) -> None:
    bundle = pki.issue("police-1", "police")
    assert not bundle.oprf_key.exists()
    assert pki.directory().get("police-1").oprf_key == b""  # type: ignore[union-attr]
    pki.rotate("police-1", oprf=True, oprf_key_factory=oprf_key_pair)
    listed = pki.directory().get("police-1")
    assert listed is not None
    assert listed.oprf_key == OprfServer(read_hex(bundle.oprf_key, 32)).public_key


def test_a_regulator_holds_no_oprf_key(pki: PkiFolder) -> None:
    pki.issue("regulator-1", "regulator", oprf_key_factory=oprf_key_pair)
    assert pki.directory().get("regulator-1").oprf_key == b""  # type: ignore[union-attr]
    with pytest.raises(PkiError, match="holds no OPRF key"):
        pki.rotate("regulator-1", oprf=True, oprf_key_factory=oprf_key_pair)
