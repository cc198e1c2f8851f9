"""The cheapest attacks on a node, by a broker that relays or an operator who edits its log.

Tampered bytes are caught by signatures; these attacks need none broken. A broker (or
whoever holds its certificate) relays a genuine answer to another request, or an answer
a member nobody asked signed; an operator rewrites the log's last entry (the broker then
signs a second tree of the same size: a fork) or deletes its tail (a rollback). Each
must be refused by the node.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from gateway import migrate
from gateway.audit.log import canonical_json
from gateway.audit.merkle import leaf_hash
from gateway.audit.store import AuditEntryRow, CheckpointRow
from gateway.db import make_engine
from gateway.envelope.build import Draft
from gateway.localnet import Consortium
from gateway.pki.store import NodeBundle
from gateway.transport import secure_channel
from gateway.v1 import gateway_pb2 as pb
from gateway.v1 import gateway_pb2_grpc as rpc
from nodes.broker_client import AnswerError, BrokerClient, LogIntegrityError
from tests.consortium import client, running
from tests.nodes.rogue import as_broker, tls
from tests.postgres import opened


def ping(*recipients: str) -> Draft:
    return Draft(sender="police-1", recipients=list(recipients), kind="PING", payload=b"{}")


class Relay(rpc.BrokerServicer):
    """A broker in the middle: forwards to the real one, and may swap the answers."""

    def __init__(self, upstream: rpc.BrokerStub) -> None:
        self.upstream = upstream
        self.answers: list[pb.Envelope] | None = None
        """Relayed in place of the real answers, when set."""
        self.last: pb.SubmitReply | None = None

    def GetDirectory(self, request: pb.DirectoryRequest, context: object) -> pb.SignedDirectory:
        reply: pb.SignedDirectory = self.upstream.GetDirectory(request, timeout=10)
        return reply

    def GetCheckpoint(self, request: pb.CheckpointRequest, context: object) -> pb.CheckpointReply:
        reply: pb.CheckpointReply = self.upstream.GetCheckpoint(request, timeout=10)
        return reply

    def GetConsistency(
        self, request: pb.ConsistencyRequest, context: object
    ) -> pb.ConsistencyReply:
        reply: pb.ConsistencyReply = self.upstream.GetConsistency(request, timeout=10)
        return reply

    def Submit(self, request: pb.Envelope, context: object) -> pb.SubmitReply:
        reply: pb.SubmitReply = self.upstream.Submit(request, timeout=10)
        self.last = pb.SubmitReply()
        self.last.CopyFrom(reply)
        if self.answers is not None:
            del reply.responses[:]
            reply.responses.extend(self.answers)
        return reply


@contextmanager
def relayed_client(network: Consortium, tmp_path: Path) -> Iterator[tuple[Relay, BrokerClient]]:
    """The police node's broker client, talking to the real broker through a `Relay`."""
    # The relay holds the broker's certificate towards the node and the police node's
    # towards the broker: the broker sees the police node, the node sees "the broker".
    upstream = secure_channel(
        f"127.0.0.1:{network.broker_port}", "broker", tls(network, "police-1")
    )
    relay = Relay(rpc.BrokerStub(upstream))
    engine = make_engine(str(tmp_path / "police.db"))
    migrate.upgrade(engine, "node")
    with as_broker(network, relay) as port:
        police = BrokerClient(
            node_id="police-1",
            bundle=NodeBundle(network.node_config("police-1").pki_bundle),
            broker_endpoint=f"127.0.0.1:{port}",
            broker_id="broker",
            engine=engine,
            timeout_s=10.0,
        )
        try:
            yield relay, police
        finally:
            police.close()
            upstream.close()
            engine.dispose()


def test_an_answer_to_another_request_is_refused(network: Consortium, tmp_path: Path) -> None:
    with relayed_client(network, tmp_path) as (relay, police):
        police.submit(ping("bank-a"))
        assert relay.last is not None
        earlier = list(relay.last.responses)  # bank-a's genuine answer to the first ping
        relay.answers = earlier
        with pytest.raises(AnswerError, match="reply_to does not name our request"):
            police.submit(ping("bank-a"))


def test_an_answer_from_a_member_nobody_asked_is_refused(
    network: Consortium, tmp_path: Path
) -> None:
    bank_b = network.pki.bundle("bank-b").keys().signing
    with relayed_client(network, tmp_path) as (relay, police):
        draft = ping("bank-a")
        # bank-b signs an answer naming our request; the relaying broker passes it on.
        forged = Draft(
            sender="bank-b",
            recipients=["police-1"],
            kind="PONG",
            payload=json.dumps({"node": "bank-b", "role": "bank"}).encode(),
            reply_to=draft.message_id,
        ).sign(bank_b)
        relay.answers = [forged]
        with pytest.raises(AnswerError, match="sender was not asked"):
            police.submit(draft)
        # The same answer, had bank-b been asked, is accepted: only the sender check refused.
        asked = ping("bank-a", "bank-b")
        relay.answers = [
            Draft(
                sender="bank-b",
                recipients=["police-1"],
                kind="PONG",
                payload=b"{}",
                reply_to=asked.message_id,
            ).sign(bank_b)
        ]
        assert [h.sender for h, _ in police.submit(asked).answers] == ["bank-b"]


def submit_pings(consortium: Consortium, count: int) -> int:
    """Submit `count` pings as the police node; the broker's log size afterwards."""
    with running(consortium, ("bank-a",)):
        ctx = client(consortium, "police-1")
        try:
            for _ in range(count):
                ctx.client.submit(ping("bank-a"))
        finally:
            ctx.client.close()
    return log_size(consortium)


def log_size(consortium: Consortium) -> int:
    with opened(consortium.broker_database) as broker, Session(broker) as s:
        return int(s.scalar(select(func.count()).select_from(AuditEntryRow)) or 0)


def test_a_second_tree_of_the_same_size_is_refused_as_a_fork(tmp_path: Path) -> None:
    consortium = Consortium.create(tmp_path)
    size = submit_pings(consortium, 2)
    police = client(consortium, "police-1")
    try:
        assert max(c.size for c in police.client.seen_checkpoints()) == size
    finally:
        police.client.close()

    # The last entry rewritten, and the checkpoints over it dropped: the broker signs anew.
    forged = canonical_json({"type": "decision", "kind": "PING", "decision": "DENY"})
    with opened(consortium.broker_database) as broker, Session(broker) as s:
        s.execute(
            update(AuditEntryRow)
            .where(AuditEntryRow.idx == size - 1)
            .values(leaf=forged, leaf_hash=leaf_hash(forged))
        )
        s.execute(delete(CheckpointRow).where(CheckpointRow.size >= size))
        s.commit()

    with running(consortium, ("bank-a",)):
        police = client(consortium, "police-1")
        try:
            with pytest.raises(LogIntegrityError, match=f"two checkpoints of size {size} "):
                police.client.latest_checkpoint()
        finally:
            police.client.close()


def test_a_log_cut_back_is_refused_as_a_rollback(tmp_path: Path) -> None:
    consortium = Consortium.create(tmp_path)
    size = submit_pings(consortium, 3)
    kept = size - 2
    with opened(consortium.broker_database) as broker, Session(broker) as s:
        s.execute(delete(AuditEntryRow).where(AuditEntryRow.idx >= kept))
        s.execute(delete(CheckpointRow).where(CheckpointRow.size > kept))
        s.commit()

    with running(consortium, ("bank-a",)):
        police = client(consortium, "police-1")
        try:
            with pytest.raises(
                LogIntegrityError, match=f"rolled back from size {size} to size {kept}:"
            ):
                police.client.latest_checkpoint()
        finally:
            police.client.close()
