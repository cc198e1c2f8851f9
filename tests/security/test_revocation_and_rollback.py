"""Revoked members are refused everywhere; nobody can roll the directory back.

The directory is the root of every identity check, so a broker (or whoever sits in its
place) serving an older directory (one that still lists a rotated key or a revoked
member) must be refused by nodes, and the broker itself must not step back when the
files do.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine

from gateway.broker.delivery import DeliveryError
from gateway.envelope.build import Draft
from gateway.pki.directory import DirectoryError, SignedDirectoryBlob, sign_directory
from gateway.pki.directory_source import FileDirectory
from gateway.pki.store import PkiError
from gateway.transport import server_credentials, server_options
from gateway.v1 import gateway_pb2 as pb
from gateway.v1 import gateway_pb2_grpc as rpc
from nodes.broker_client import BrokerClient
from tests.consortium import Consortium
from tests.security.net import Net, journalled, ping, serving, submit_error
from tests.waiting import wait_for


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    consortium = Consortium.create(tmp_path_factory.mktemp("revocation"))
    with serving(consortium, ("bank-a", "bank-b")) as network:
        yield network


def test_revoked_member_is_refused_by_broker_and_nodes(net: Net) -> None:
    pki = net.consortium.pki
    bank_b = net.signing_key("bank-b")
    stub = net.stub_as("bank-b")
    assert stub.Submit(ping("bank-b").sign(bank_b), timeout=10).decision == "ALLOW"

    pki.revoke("bank-b")
    net.reload_broker()
    net.refetch("bank-a")

    # Its calls: refused at the mTLS identity check, before any envelope is looked at.
    err = submit_error(stub, ping("bank-b").sign(bank_b))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert err.details() == "identity: member 'bank-b' is revoked"
    with pytest.raises(grpc.RpcError) as info:
        stub.GetDirectory(pb.DirectoryRequest(), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED

    # Messages to it: refused, nothing is routed to a revoked member.
    err = submit_error(
        net.stub_as("bank-a"), ping("bank-a", "bank-b").sign(net.signing_key("bank-a"))
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert err.details().startswith("recipient:")

    # Its signed envelopes, relayed by a broker that ignored the revocation: refused.
    relayed = ping("bank-b", "bank-a").sign(bank_b)
    with pytest.raises(DeliveryError, match="PERMISSION_DENIED sender: sender 'bank-b' is revoked"):
        net.as_broker("bank-a", relayed)
    assert (
        journalled(net.consortium, "bank-a", pb.Header.FromString(relayed.header).message_id) == 0
    )

    # Revocation is final: its keys cannot be rotated back into use.
    with pytest.raises(PkiError, match="revoked"):
        pki.rotate("bank-b")


def test_member_whose_certificate_is_not_pinned_is_refused(net: Net) -> None:
    # The CA signature alone never admits a peer: the directory must pin the certificate.
    pki = net.consortium.pki
    stub = net.stub_as("regulator-1")
    stub.GetDirectory(pb.DirectoryRequest(), timeout=10)
    directory = pki.directory()
    member = directory.get("regulator-1")
    assert member is not None
    blob = sign_directory(
        directory.with_member(replace(member, cert_sha256="")), pki.directory_key()
    )
    (pki.root / "directory.json").write_bytes(blob.directory)
    (pki.root / "directory.sig").write_bytes(blob.signature)
    net.reload_broker()
    with pytest.raises(grpc.RpcError) as info:
        stub.GetDirectory(pb.DirectoryRequest(), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert info.value.details() == "identity: the directory pins no certificate for 'regulator-1'"
    pki.rotate("regulator-1", tls=True)  # pins a new certificate again
    net.reload_broker()
    net.stub_as("regulator-1").GetDirectory(pb.DirectoryRequest(), timeout=10)


def test_outbox_does_not_deliver_to_a_member_revoked_meanwhile(net: Net) -> None:
    # carrier-1 is not serving: the suspension waits in the outbox, retried with backoff.
    pki = net.consortium.pki
    carrier = pki.directory().get("carrier-1")
    assert carrier is not None
    draft = Draft(
        sender="police-1",
        recipients=["carrier-1"],
        kind="SUSPEND_NUMBER",
        payload=b'{"identifier_kind": "phone", "value": "+8613812345678"}',
        seal_to=carrier.seal_key,
        case_ref="C-2026-REV",
        legal_basis="Anti-Telecom-Fraud Law art. 11",
        terms=pb.ActionTerms(
            action="SUSPEND_NUMBER",
            duration_hours=24,
            issuing_officer="officer-7",
            approving_officer="chief-2",
        ),
    )
    stub = net.stub_as("police-1")
    assert stub.Submit(draft.sign(net.signing_key("police-1")), timeout=10).decision == "ALLOW"
    pki.revoke("carrier-1")
    net.reload_broker()

    def state() -> str:
        reply = stub.Status(pb.StatusRequest(message_id=draft.message_id), timeout=10)
        return str(reply.state)

    wait_for(lambda: state() == "failed")
    events = stub.Status(pb.StatusRequest(message_id=draft.message_id), timeout=10).events
    assert [e.detail for e in events if e.state == "failed:carrier-1"] == ["recipient left"]


class DirectoryOnly(rpc.BrokerServicer):
    """A broker (or an impostor with the broker's certificate) that serves any directory."""

    def __init__(self, blob: SignedDirectoryBlob) -> None:
        self.blob = blob

    def GetDirectory(
        self, request: pb.DirectoryRequest, context: grpc.ServicerContext
    ) -> pb.SignedDirectory:
        return pb.SignedDirectory(directory=self.blob.directory, signature=self.blob.signature)


@contextmanager
def rogue_broker(net: Net, blob: SignedDirectoryBlob) -> Iterator[tuple[DirectoryOnly, int]]:
    servicer = DirectoryOnly(blob)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=server_options())
    rpc.add_BrokerServicer_to_server(servicer, server)
    port = server.add_secure_port("127.0.0.1:0", server_credentials(net.tls("broker")))
    server.start()
    try:
        yield servicer, port
    finally:
        server.stop(0)


def test_node_refuses_a_directory_rolled_back_to_a_lower_serial(net: Net) -> None:
    pki = net.consortium.pki
    old = pki.signed_directory()
    pki.rotate("bank-a", sealing=True)
    new = pki.signed_directory()
    with rogue_broker(net, new) as (rogue, port):
        client = BrokerClient(
            node_id="bank-a",
            bundle=pki.bundle("bank-a"),
            broker_endpoint=f"127.0.0.1:{port}",
            broker_id="broker",
            engine=create_engine("sqlite://"),
            directory_ttl_s=0,
        )
        try:
            serial = client.refresh_directory().serial
            rogue.blob = old  # genuinely signed, but older: lists bank-a's old sealing key
            with pytest.raises(DirectoryError, match=f"serial {serial - 1} is older"):
                client.refresh_directory()
            with pytest.raises(DirectoryError, match="older"):
                client.directory()  # fails closed: nothing verifies against a rollback
            rogue.blob = new
            assert client.directory().serial == serial
        finally:
            client.close()


def test_node_refuses_a_directory_not_signed_by_the_consortium_key(net: Net) -> None:
    pki = net.consortium.pki
    genuine = pki.signed_directory()
    directory = pki.directory()
    bank_a = directory.get("bank-a")
    assert bank_a is not None
    # The broker's own idea of a member (or of a key) does not count: it lacks the key.
    forged = sign_directory(
        replace(directory, serial=directory.serial + 1).with_member(
            replace(bank_a, sign_key=bytes(32))
        ),
        Ed25519PrivateKey.generate(),
    )
    tampered = SignedDirectoryBlob(genuine.directory + b" ", genuine.signature)
    with rogue_broker(net, forged) as (rogue, port):
        client = BrokerClient(
            node_id="bank-a",
            bundle=pki.bundle("bank-a"),
            broker_endpoint=f"127.0.0.1:{port}",
            broker_id="broker",
            engine=create_engine("sqlite://"),
        )
        try:
            with pytest.raises(DirectoryError, match="signature does not verify"):
                client.refresh_directory()
            rogue.blob = tampered
            with pytest.raises(DirectoryError, match="signature does not verify"):
                client.refresh_directory()
        finally:
            client.close()


def test_broker_keeps_the_newer_directory_when_its_files_roll_back(
    net: Net, tmp_path: Path
) -> None:
    pki = net.consortium.pki
    old = pki.signed_directory()
    pki.rotate("bank-a", tls=True)
    for name in ("directory.json", "directory.sig"):
        shutil.copy(pki.root / name, tmp_path / name)
    held = FileDirectory(tmp_path, pki.directory_key().public_key())
    serial = held.current().serial
    (tmp_path / "directory.json").write_bytes(old.directory)
    (tmp_path / "directory.sig").write_bytes(old.signature)
    assert held.refresh().serial == serial
    assert held.signed().directory != old.directory
