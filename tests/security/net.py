"""An in-process consortium that security tests can rotate, restart and attack.

Unlike `tests.consortium.running`, nodes can be restarted (to load rotated keys), the
broker's directory can be reloaded at once, and a test can speak as any party: as a
member over its own mTLS bundle, as a member holding stale certificate files, or as the
broker delivering straight to a node's `Deliver` (a broker gone bad).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.broker.delivery import NodeDialer
from gateway.broker.server import RunningBroker, serve_broker
from gateway.db import NodeBase, make_engine
from gateway.envelope.build import Draft
from gateway.identifiers import normalise
from gateway.pki.directory import Directory
from gateway.pki.directory_source import FileDirectory
from gateway.pki.keys import read_hex
from gateway.synthetic import generate_bank_records
from gateway.transport import TlsFiles, secure_channel
from gateway.v1 import gateway_pb2 as pb
from gateway.v1 import gateway_pb2_grpc as rpc
from nodes.index_build import update_index
from nodes.journal import InboundRow
from nodes.records import upsert_records
from nodes.runtime import NodeContext, RunningNode, open_node, serve_node
from tests.consortium import Consortium
from tests.postgres import opened

RECORDS = generate_bank_records(20, seed=41)
"""A responder's records for match queries (synthetic card and account numbers)."""


def build_index(consortium: Consortium, node_id: str) -> None:
    """Load RECORDS into a responder and build its match index under its OPRF key."""
    config = consortium.node_config(node_id)
    engine = make_engine(config.database)
    NodeBase.metadata.create_all(engine)
    upsert_records(engine, [(normalise(r.kind, r.value), r.attributes) for r in RECORDS])
    key = read_hex(consortium.pki.bundle(node_id).oprf_key, 32)
    update_index(
        engine, key, bucket_bits=config.match_bucket_bits, label_fields=config.label_attributes
    )
    engine.dispose()


@dataclass
class Net:
    """Broker and nodes serving in this process, with the means to attack them."""

    consortium: Consortium
    broker: RunningBroker
    nodes: dict[str, RunningNode] = field(default_factory=dict)
    broker_overrides: dict[str, object] = field(default_factory=dict)
    _channels: list[grpc.Channel] = field(default_factory=list)
    _clients: list[NodeContext] = field(default_factory=list)

    # -- parties ---------------------------------------------------------------------

    def tls(self, node_id: str) -> TlsFiles:
        bundle = self.consortium.pki.bundle(node_id)
        return TlsFiles(bundle.tls_cert, bundle.tls_key, bundle.ca_cert)

    def stub(self, tls: TlsFiles) -> rpc.BrokerStub:
        """A broker stub over the mTLS identity in `tls` (fresh channel, fresh handshake)."""
        channel = secure_channel(f"127.0.0.1:{self.consortium.broker_port}", "broker", tls)
        self._channels.append(channel)
        return rpc.BrokerStub(channel)

    def stub_as(self, node_id: str) -> rpc.BrokerStub:
        return self.stub(self.tls(node_id))

    def client(self, node_id: str) -> NodeContext:
        """A node's context (current keys from its bundle), closed with the network."""
        ctx = open_node(self.consortium.node_config(node_id))
        self._clients.append(ctx)
        return ctx

    def as_broker(
        self, node_id: str, envelope: pb.Envelope, tls: TlsFiles | None = None
    ) -> pb.DeliverReply:
        """Deliver `envelope` to `node_id` as the broker would, bypassing every broker check.

        `tls` defaults to the broker's current bundle; raises `DeliveryError` on refusal.
        """
        dialer = NodeDialer(tls or self.tls("broker"), timeout_s=10)
        member = self.consortium.pki.directory().get(node_id)
        assert member is not None
        try:
            return dialer.deliver(member, envelope)
        finally:
            dialer.close()

    def signing_key(self, node_id: str) -> Ed25519PrivateKey:
        return self.consortium.pki.bundle(node_id).keys().signing

    # -- key lifecycle ---------------------------------------------------------------

    def reload_broker(self) -> Directory:
        """Make the broker read the directory files now (it would within a second)."""
        directory = self.broker.broker.directory
        assert isinstance(directory, FileDirectory)
        return directory.refresh()

    def refetch(self, *node_ids: str) -> None:
        """Make serving nodes refetch the directory now (they would within their TTL)."""
        for node_id in node_ids or tuple(self.nodes):
            self.nodes[node_id].ctx.client.refresh_directory()

    def restart(self, node_id: str) -> None:
        """Stop a node and serve it again, so that it loads its (rotated) bundle."""
        self.nodes.pop(node_id).stop(0)
        self.nodes[node_id] = serve_node(self.consortium.node_config(node_id))

    def restart_broker(self) -> None:
        """Stop the broker and serve it again, so that it loads its (rotated) bundle."""
        self.broker.stop(0)
        self.broker = serve_broker(self.consortium.broker_config(**self.broker_overrides))

    def close(self) -> None:
        for ctx in self._clients:
            ctx.client.close()
        for channel in self._channels:
            channel.close()
        for node in self.nodes.values():
            node.stop(0)
        self.broker.stop(0)


@contextmanager
def serving(
    consortium: Consortium, nodes: tuple[str, ...], **broker_overrides: object
) -> Iterator[Net]:
    broker = serve_broker(consortium.broker_config(**broker_overrides))
    net = Net(consortium, broker, broker_overrides=dict(broker_overrides))
    try:
        for node_id in nodes:
            net.nodes[node_id] = serve_node(consortium.node_config(node_id))
        yield net
    finally:
        net.close()


def ping(sender: str = "police-1", recipient: str = "bank-a", payload: bytes = b"{}") -> Draft:
    return Draft(
        sender=sender,
        recipients=[recipient],
        kind="PING",
        payload=payload,
        purpose="security test",
    )


def submit_error(stub: rpc.BrokerStub, envelope: pb.Envelope) -> grpc.RpcError:
    """The refusal of a submission that must be refused."""
    try:
        stub.Submit(envelope, timeout=10)
    except grpc.RpcError as exc:
        return exc
    raise AssertionError("the broker accepted a submission it had to refuse")


def journalled(consortium: Consortium, node_id: str, message_id: str) -> int:
    """How many times a node recorded `message_id` as received."""
    with opened(consortium.node_config(node_id).database) as engine, Session(engine) as s:
        count = s.scalar(
            select(func.count()).select_from(InboundRow).where(InboundRow.message_id == message_id)
        )
    return int(count or 0)


def copy_tls(tls: TlsFiles, folder: Path) -> TlsFiles:
    """A copy of certificate, key and CA files: what a thief or a stale node still holds."""
    folder.mkdir(parents=True, exist_ok=True)
    copies = [folder / path.name for path in (tls.cert, tls.key, tls.ca)]
    for source, target in zip((tls.cert, tls.key, tls.ca), copies, strict=True):
        shutil.copy(source, target)
    return TlsFiles(*copies)
