"""Two threads shown forked checkpoints at the same moment: the node accepts only one.

A broker holding two trees that share a prefix shows one thread a checkpoint of the
first and another thread a checkpoint of the second, and proves each consistent with
the prefix the node saw. Both threads check at the same time (the broker answers
neither until both have asked), with no lock held; the one recording second must find
that the largest checkpoint changed meanwhile, check again against it, and refuse.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import migrate
from gateway.audit.checkpoint import Checkpoint, format_checkpoint
from gateway.audit.merkle import MerkleTree, leaf_hash
from gateway.audit.note import Ed25519Signer, sign_note
from gateway.db import make_engine
from gateway.localnet import Consortium
from gateway.v1 import gateway_pb2 as pb
from gateway.v1 import gateway_pb2_grpc as rpc
from nodes.broker_client import BrokerClient, LogIntegrityError
from tests.nodes.rogue import as_broker
from tests.watchdog import Watchdog, run_threads

PREFIX = 5
SHARED = [leaf_hash(f"entry {i}".encode()) for i in range(PREFIX)]
FORK_A = MerkleTree([*SHARED, leaf_hash(b"A")])
FORK_B = MerkleTree([*SHARED, leaf_hash(b"B1"), leaf_hash(b"B2")])


class Equivocating(rpc.BrokerServicer):
    """Serves the genuine directory, and proves whichever fork the asked size belongs to."""

    def __init__(self, consortium: Consortium) -> None:
        self.blob = consortium.pki.signed_directory()
        self.both_asked = threading.Barrier(2)

    def GetDirectory(self, request: pb.DirectoryRequest, context: object) -> pb.SignedDirectory:
        return pb.SignedDirectory(directory=self.blob.directory, signature=self.blob.signature)

    def GetConsistency(
        self, request: pb.ConsistencyRequest, context: object
    ) -> pb.ConsistencyReply:
        tree = FORK_A if request.new_size == FORK_A.size else FORK_B
        if request.old_size == PREFIX:
            # Both threads must ask before either is answered; if one asks alone, the
            # barrier breaks and the test says the race was not set up.
            with contextlib.suppress(threading.BrokenBarrierError):
                self.both_asked.wait(timeout=10)
        return pb.ConsistencyReply(proof=tree.consistency_proof(request.old_size, request.new_size))


@pytest.fixture
def node(consortium: Consortium, tmp_path: Path) -> Iterator[tuple[Equivocating, BrokerClient]]:
    servicer = Equivocating(consortium)
    engine = make_engine(str(tmp_path / "bank.db"))
    migrate.upgrade(engine, "node")
    with as_broker(consortium, servicer) as port:
        client = BrokerClient(
            node_id="bank-a",
            bundle=consortium.pki.bundle("bank-a"),
            broker_endpoint=f"127.0.0.1:{port}",
            broker_id="broker",
            engine=engine,
            timeout_s=15.0,
        )
        try:
            yield servicer, client
        finally:
            client.close()
            engine.dispose()


def signed(consortium: Consortium, tree: MerkleTree, size: int) -> tuple[str, Checkpoint]:
    """A checkpoint of `tree` at `size`, signed with the broker's own log key."""
    origin = f"{consortium.pki.consortium}/gateway-audit"
    body = Checkpoint(origin=origin, size=size, root_hash=tree.root(size))
    signer = Ed25519Signer(origin, consortium.pki.bundle("broker").keys().signing)
    return sign_note(format_checkpoint(body), [signer]).decode(), body


def test_forked_checkpoints_shown_at_once_are_not_both_accepted(
    consortium: Consortium, node: tuple[Equivocating, BrokerClient]
) -> None:
    servicer, client = node
    client.observe_checkpoint(*signed(consortium, FORK_A, PREFIX))  # the shared prefix
    shown = {"A": signed(consortium, FORK_A, FORK_A.size), "B": signed(consortium, FORK_B, 7)}
    outcomes: dict[str, str] = {}

    def observer(name: str) -> None:
        try:
            client.observe_checkpoint(*shown[name])
            outcomes[name] = "accepted"
        except LogIntegrityError as exc:
            outcomes[name] = f"refused: {exc}"

    with Watchdog() as watchdog:

        def run(name: str) -> None:
            with watchdog.call(f"observe fork {name}", 30):
                observer(name)

        errors = run_threads(watchdog, [lambda: run("A"), lambda: run("B")], timeout_s=60)
    assert errors == []
    assert not servicer.both_asked.broken  # both checked against the prefix at once
    assert sorted(o.split(":")[0] for o in outcomes.values()) == ["accepted", "refused"]
    accepted = next(n for n, o in outcomes.items() if o == "accepted")
    sizes = [c.size for c in client.seen_checkpoints()]
    assert sizes == [PREFIX, shown[accepted][1].size]
