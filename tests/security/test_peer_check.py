"""The broker delivers only to a server presenting the node's pinned certificate.

The cheapest move: whoever kept bank-a's previous TLS key after a rotation (a former
administrator, a backup tape) answers at bank-a's endpoint. Its certificate is signed
by the consortium CA and names bank-a, so gRPC's own checks (CA, DNS name) accept it;
only the pin in the signed directory tells it apart. Likewise a certificate that the
CA issued to another member with bank-a as an extra DNS name passes the name check
but not the SPIFFE id check. In each case no envelope reaches the server.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from gateway.broker import delivery
from gateway.broker.delivery import DeliveryError, NodeDialer
from gateway.cli.pki_cmd import oprf_key_pair
from gateway.pki.ca import issue_node_certificate
from gateway.pki.directory import Member
from gateway.pki.store import PkiFolder
from gateway.transport import TlsFiles, new_server, server_credentials
from gateway.v1 import gateway_pb2 as pb
from tests.consortium import free_port

CONSORTIUM = "peer.test"


def _tls(folder: Path) -> TlsFiles:
    return TlsFiles(folder / "tls.crt", folder / "tls.key", folder / "ca.crt")


@pytest.fixture
def pki(tmp_path: Path) -> PkiFolder:
    folder = PkiFolder(tmp_path / "pki")
    folder.init(CONSORTIUM)
    folder.issue("broker", "broker")
    folder.issue("bank-a", "bank", oprf_key_factory=oprf_key_pair)
    folder.issue("bank-b", "bank", oprf_key_factory=oprf_key_pair)
    return folder


@pytest.fixture
def old_bank_a(pki: PkiFolder, tmp_path: Path) -> TlsFiles:
    """bank-a's certificate and key as they were before its TLS rotation."""
    kept = tmp_path / "kept"
    shutil.copytree(pki.bundle("bank-a").folder, kept)
    pki.rotate("bank-a", tls=True)
    return _tls(kept)


@pytest.fixture
def lookalike(pki: PkiFolder, tmp_path: Path) -> TlsFiles:
    """A certificate the CA issued to bank-b that also names bank-a as a DNS name."""
    issued = issue_node_certificate(pki.ca(), CONSORTIUM, "bank-b", hostnames=("bank-a",))
    folder = tmp_path / "lookalike"
    folder.mkdir()
    (folder / "tls.crt").write_bytes(issued.cert_pem)
    (folder / "tls.key").write_bytes(issued.key_pem)
    shutil.copy(pki.root / "ca.crt", folder / "ca.crt")
    return _tls(folder)


@contextmanager
def node_server(tls: TlsFiles, port: int, delivered: list[bytes]) -> Iterator[None]:
    """A node's Deliver method on `port`, serving `tls`; records what reaches it."""

    def deliver(request: bytes, context: grpc.ServicerContext) -> bytes:
        delivered.append(request)
        return pb.DeliverReply().SerializeToString()

    server = new_server(2, [])
    handler = grpc.method_handlers_generic_handler(
        "gateway.v1.Node", {"Deliver": grpc.unary_unary_rpc_method_handler(deliver)}
    )
    server.add_generic_rpc_handlers((handler,))
    assert server.add_secure_port(f"127.0.0.1:{port}", server_credentials(tls)) == port
    server.start()
    try:
        yield
    finally:
        server.stop(0).wait()


def _member(pki: PkiFolder, port: int) -> Member:
    member = pki.directory().get("bank-a")
    assert member is not None
    return replace(member, endpoint=f"127.0.0.1:{port}")


@pytest.fixture
def dialer(pki: PkiFolder) -> Iterator[NodeDialer]:
    d = NodeDialer(_tls(pki.bundle("broker").folder), timeout_s=10)
    yield d
    d.close()


ENVELOPE = pb.Envelope(header=b"h", payload=b"p", signature=b"s")


def test_the_pinned_certificate_gets_the_delivery(pki: PkiFolder, dialer: NodeDialer) -> None:
    port, delivered = free_port(), []
    with node_server(_tls(pki.bundle("bank-a").folder), port, delivered):
        dialer.deliver(_member(pki, port), ENVELOPE)
    assert delivered == [ENVELOPE.SerializeToString()]


def test_a_rotated_away_certificate_gets_nothing(
    pki: PkiFolder, dialer: NodeDialer, old_bank_a: TlsFiles
) -> None:
    port, delivered = free_port(), []
    with node_server(old_bank_a, port, delivered), pytest.raises(DeliveryError) as info:
        dialer.deliver(_member(pki, port), ENVELOPE)
    assert str(info.value) == (
        f"bank-a at 127.0.0.1:{port}: certificate is not the one the directory lists"
    )
    assert not info.value.permanent  # the node may not have installed its new one yet
    assert delivered == []


def test_another_members_certificate_naming_the_node_gets_nothing(
    pki: PkiFolder, dialer: NodeDialer, lookalike: TlsFiles
) -> None:
    port, delivered = free_port(), []
    with node_server(lookalike, port, delivered), pytest.raises(DeliveryError) as info:
        dialer.deliver(_member(pki, port), ENVELOPE)
    assert str(info.value) == (
        f"bank-a at 127.0.0.1:{port}: certificate does not name spiffe://{CONSORTIUM}/node/bank-a"
    )
    assert delivered == []


def test_another_member_at_the_endpoint_gets_nothing(pki: PkiFolder, dialer: NodeDialer) -> None:
    port, delivered = free_port(), []
    bank_b = _tls(pki.bundle("bank-b").folder)
    with (
        node_server(bank_b, port, delivered),
        pytest.raises(DeliveryError, match=r"^bank-a at 127\.0\.0\.1:\d+: Hostname mismatch"),
    ):
        dialer.deliver(_member(pki, port), ENVELOPE)
    assert delivered == []


def test_a_server_swapped_behind_an_open_channel_is_caught_at_the_recheck(
    pki: PkiFolder, dialer: NodeDialer, old_bank_a: TlsFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, genuine, rogue = free_port(), [], []
    member = _member(pki, port)
    with node_server(_tls(pki.bundle("bank-a").folder), port, genuine):
        dialer.deliver(member, ENVELOPE)
    monkeypatch.setattr(delivery, "RECHECK_S", 0.0)  # as if RECHECK_S had passed
    with (
        node_server(old_bank_a, port, rogue),
        pytest.raises(DeliveryError, match="not the one the directory lists"),
    ):
        dialer.deliver(member, ENVELOPE)
    assert len(genuine) == 1 and rogue == []
