"""The signed directory lists every broker process's endpoint; nodes take them from it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from gateway.localnet import gateway_command
from gateway.pki.directory import Directory, DirectoryError, Member
from gateway.pki.store import PkiError, PkiFolder


@pytest.fixture
def pki(tmp_path: Path) -> PkiFolder:
    folder = PkiFolder(tmp_path / "pki")
    folder.init("example.org")
    folder.issue("broker", "broker", endpoint="10.0.0.1:7100")
    return folder


def test_endpoints_are_signed_into_the_directory_first_one_as_endpoint(pki: PkiFolder) -> None:
    serial = pki.directory().serial
    pki.set_endpoints("broker", ["10.0.0.1:7100", "10.0.0.2:7100", "broker-3.example:7100"])
    directory = pki.directory()  # verified against the consortium key
    broker = directory.get("broker")
    assert broker is not None
    assert directory.serial == serial + 1
    assert broker.endpoint == "10.0.0.1:7100"
    assert broker.endpoints == ("10.0.0.1:7100", "10.0.0.2:7100", "broker-3.example:7100")
    listed = json.loads((pki.root / "directory.json").read_bytes())
    [member] = [m for m in listed["members"] if m["node_id"] == "broker"]
    assert member["replicas"] == ["10.0.0.2:7100", "broker-3.example:7100"]


def test_a_member_with_one_endpoint_keeps_the_old_directory_bytes(pki: PkiFolder) -> None:
    listed = json.loads((pki.root / "directory.json").read_bytes())
    assert all("replicas" not in m for m in listed["members"])
    before = pki.directory().to_bytes()
    assert Directory.from_bytes(before).to_bytes() == before


@pytest.mark.parametrize(
    ("endpoints", "message"),
    [
        ([], "at least one endpoint"),
        (["10.0.0.1"], "'10.0.0.1' is not host:port"),
        (["10.0.0.1:0"], "is not host:port"),
        (["a:1", "a:1"], "listed twice"),
    ],
)
def test_bad_endpoint_lists_are_refused_and_the_directory_is_unchanged(
    pki: PkiFolder, endpoints: list[str], message: str
) -> None:
    before = (pki.root / "directory.json").read_bytes()
    with pytest.raises(PkiError, match=message):
        pki.set_endpoints("broker", endpoints)
    assert (pki.root / "directory.json").read_bytes() == before


def test_replicas_that_are_not_a_list_of_strings_are_refused() -> None:
    member = Member("broker", "broker", "b", "h:1", b"k" * 32, b"s" * 32).to_dict()
    for bad in ("h:2", [1], [""]):
        with pytest.raises(DirectoryError, match="replicas is not a list"):
            Member.from_dict({**member, "replicas": bad})


def test_cli_lists_endpoints_and_refuses_a_bad_one_in_one_line(pki: PkiFolder) -> None:
    pki_dir = str(pki.root)
    done = subprocess.run(
        gateway_command(
            "pki", "endpoints", "--dir", pki_dir, "--node", "broker",
            "--endpoint", "10.0.0.1:7100", "--endpoint", "10.0.0.2:7100",
        ),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "10.0.0.1:7100, 10.0.0.2:7100" in done.stdout
    bad = subprocess.run(
        gateway_command(
            "pki", "endpoints", "--dir", pki_dir, "--node", "nobody", "--endpoint", "h:1"
        ),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    lines = (bad.stdout + bad.stderr).strip().splitlines()
    assert bad.returncode != 0
    assert lines == ["error: no member nobody in the directory"]
