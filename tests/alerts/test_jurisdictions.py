"""Police jurisdictions in the signed directory: a deployer's mistake is caught when the
directory is signed or loaded, or when a node starts, never by the first alert."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.localnet import Consortium
from gateway.pki.directory import Directory, DirectoryError
from gateway.pki.store import PkiError
from gateway.regions import UnknownRegion, enclosing, responsible
from nodes.preflight.alerts import check_alerts

runner = CliRunner()


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Consortium:
    return Consortium.create(tmp_path_factory.mktemp("regions"))


def test_a_region_goes_to_the_most_specific_jurisdiction() -> None:
    held = [("police-sh", ("310000",)), ("police-hp", ("310101",)), ("police-bj", ("110000",))]
    assert enclosing("310101") == ("310101", "310100", "310000")
    assert enclosing("310000") == ("310000",)
    assert responsible("310101", held) == "police-hp"  # the county's own node
    assert responsible("310115", held) == "police-sh"  # Pudong: the province's
    assert responsible("110105", held) == "police-bj"
    with pytest.raises(UnknownRegion, match="region 440300: no police node"):
        responsible("440300", held)
    with pytest.raises(ValueError, match="six-digit GB/T 2260"):
        responsible("31000", held)


def test_the_directory_refuses_a_region_held_twice_or_a_bank_with_a_jurisdiction(
    net: Consortium,
) -> None:
    directory = net.pki.directory()
    police = directory.get("police-1")
    assert police is not None and police.jurisdictions == ("310000",)
    twice = directory.with_member(replace(police, node_id="police-2"))
    with pytest.raises(DirectoryError, match="region 310000 is in the jurisdiction of both"):
        Directory.from_bytes(twice.to_bytes())
    doc = json.loads(directory.to_bytes())
    for member in doc["members"]:
        if member["node_id"] == "bank-a":
            member["jurisdictions"] = ["310000"]
    with pytest.raises(DirectoryError, match="only police have jurisdictions"):
        Directory.from_bytes(json.dumps(doc).encode())
    for member in doc["members"]:
        member.pop("jurisdictions", None)
        if member["node_id"] == "police-1":
            member["jurisdictions"] = ["3100"]
    with pytest.raises(DirectoryError, match="police-1 jurisdictions: region '3100'"):
        Directory.from_bytes(json.dumps(doc).encode())


def test_the_administrator_cannot_sign_a_region_twice(net: Consortium) -> None:
    serial = net.pki.directory().serial
    with pytest.raises(PkiError, match="only police have a jurisdiction"):
        net.pki.set_jurisdictions("bank-a", ["310000"])
    with pytest.raises(PkiError, match="only police nodes have a jurisdiction"):
        net.pki.issue("bank-z", "bank", jurisdictions=("310000",))
    net.pki.issue("police-2", "police", jurisdictions=("110000",))
    with pytest.raises(PkiError, match="region 310000 is in the jurisdiction of both"):
        net.pki.set_jurisdictions("police-2", ["110000", "310000"])
    pki = ["--dir", str(net.root / "pki"), "--node", "police-2"]
    refused = runner.invoke(app, ["pki", "jurisdiction", *pki, "--region", "31x000"])
    assert refused.exit_code == 1
    assert refused.stderr.strip().startswith("error: region '31x000' is not a six-digit")
    done = runner.invoke(
        app, ["pki", "jurisdiction", *pki, "--region", "110000", "--region", "120000"]
    )
    assert done.exit_code == 0, done.output
    member = net.pki.directory().get("police-2")
    assert member is not None and member.jurisdictions == ("110000", "120000")
    assert net.pki.directory().serial > serial


def test_a_node_with_a_region_nobody_covers_does_not_start(net: Consortium, tmp_path: Path) -> None:
    directory = net.pki.directory()
    bank = net.node_config("bank-a")
    assert check_alerts(bank, directory) is None  # no alert_region: nothing to check
    good = check_alerts(replace(bank, alert_region="310101"), directory)
    assert good is not None and (good.status, good.detail) == (
        "OK",
        "alerts for 310101 go to police-1",
    )
    nobody = check_alerts(replace(bank, alert_region="440300"), directory)
    assert nobody is not None and nobody.failed
    assert "region 440300: no police node" in nobody.detail
    malformed = check_alerts(replace(bank, alert_region="31 0000"), directory)
    assert malformed is not None and malformed.failed
    regulator = check_alerts(
        replace(net.node_config("regulator-1"), alert_region="310000"), directory
    )
    assert regulator is not None and regulator.failed
    police = check_alerts(net.node_config("police-1"), directory)
    assert police is not None and (police.status, police.detail) == (
        "OK",
        "receives alerts for 310000",
    )
