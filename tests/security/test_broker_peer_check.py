"""A node calls only a broker presenting the certificate the signed directory pins.

The cheapest move: whoever kept the broker's previous TLS key after its rotation stands
up a server at an address the node calls. Its certificate is CA-signed and names the
broker, so gRPC's own checks accept it; the pin in the directory does not, and the
node's call never reaches it. The directory itself proves itself (signature, no
rollback), so the node fetches it even before it knows the new pin.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest

from gateway.peer_check import PeerRefused
from gateway.pki.ca import issue_node_certificate
from gateway.transport import TlsFiles, new_server, server_credentials
from gateway.v1 import gateway_pb2 as pb
from gateway.v1 import gateway_pb2_grpc as rpc
from tests.consortium import Consortium
from tests.security.net import Net, copy_tls, serving


class Recording(rpc.BrokerServicer):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def GetCheckpoint(self, request: pb.CheckpointRequest, context: object) -> pb.CheckpointReply:
        self.calls.append("GetCheckpoint")
        return pb.CheckpointReply(checkpoint="forged")

    def GetDirectory(self, request: pb.DirectoryRequest, context: object) -> pb.SignedDirectory:
        self.calls.append("GetDirectory")
        return pb.SignedDirectory()


@contextmanager
def rogue_broker(tls: TlsFiles, servicer: Recording) -> Iterator[int]:
    server = new_server(2, [])
    rpc.add_BrokerServicer_to_server(servicer, server)
    port = server.add_secure_port("127.0.0.1:0", server_credentials(tls))
    server.start()
    try:
        yield port
    finally:
        server.stop(0)


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    with serving(Consortium.create(tmp_path / "c"), ()) as network:
        yield network


def test_a_node_refuses_a_server_holding_the_brokers_rotated_away_certificate(
    net: Net, tmp_path: Path
) -> None:
    old = copy_tls(net.tls("broker"), tmp_path / "old-broker")
    net.consortium.pki.rotate("broker", tls=True)
    net.restart_broker()
    police = net.client("police-1").client
    police.refresh_directory()  # over the SPIFFE id check alone: the directory is signed
    genuine = f"127.0.0.1:{net.consortium.broker_port}"

    rogue = Recording()
    with rogue_broker(old, rogue) as port:
        police.brokers.use([f"127.0.0.1:{port}"])
        with pytest.raises(PeerRefused) as info:
            police.brokers.call("GetCheckpoint", pb.CheckpointRequest(), 5)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert info.value.details() == (
        f"peer check: broker at 127.0.0.1:{port}: certificate is not the one the directory lists"
    )
    assert rogue.calls == []

    police.brokers.use([genuine])
    reply = police.brokers.call("GetCheckpoint", pb.CheckpointRequest(), 5)
    assert reply.checkpoint.startswith(f"{net.consortium.pki.consortium}/gateway-audit")


def test_a_member_certificate_naming_the_broker_is_refused_even_for_the_directory(
    net: Net, tmp_path: Path
) -> None:
    pki = net.consortium.pki
    issued = issue_node_certificate(pki.ca(), pki.consortium, "bank-a", hostnames=("broker",))
    folder = tmp_path / "lookalike"
    folder.mkdir()
    (folder / "tls.crt").write_bytes(issued.cert_pem)
    (folder / "tls.key").write_bytes(issued.key_pem)
    (folder / "ca.crt").write_bytes(pki.bundle("broker").ca_cert.read_bytes())
    rogue = Recording()
    with rogue_broker(
        TlsFiles(folder / "tls.crt", folder / "tls.key", folder / "ca.crt"), rogue
    ) as port:
        police = net.client("police-1").client
        police.brokers.use([f"127.0.0.1:{port}"])
        with pytest.raises(PeerRefused, match="certificate does not name spiffe://"):
            police.brokers.call("GetDirectory", pb.DirectoryRequest(), 5)
    assert rogue.calls == []
