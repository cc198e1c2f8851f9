"""A broker in the middle that alters what the node's own submission earns.

The node holds the broker to its audit log through the receipt each Submit returns (a
C2SP tlog-proof under a signed checkpoint) and through the checkpoints it asks for. The
cheapest lies need no broken signature: the receipt of an earlier submission replayed
for this one, an index past the end of the signed tree, a checkpoint re-signed by a
key that is not the broker's, an answer addressed to another node. Each is refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.audit.checkpoint import parse_checkpoint
from gateway.audit.note import Ed25519Signer, parse_note, sign_note
from gateway.audit.tlog_proof import TlogProof, format_tlog_proof, parse_tlog_proof
from gateway.envelope.build import Draft
from gateway.localnet import Consortium
from gateway.v1 import gateway_pb2 as pb
from gateway.v1 import gateway_pb2_grpc as rpc
from nodes.broker_client import AnswerError, LogIntegrityError
from tests.nodes.test_cheap_attacks import Relay, ping, relayed_client


def resigned(note: str | bytes) -> str:
    """The same checkpoint text, signed under the broker's key name by a key of our own."""
    parsed = parse_note(note)
    [signature] = parsed.signatures
    return sign_note(parsed.text, [Ed25519Signer.generate(signature.name)]).decode()


class ReceiptRelay(Relay):
    """A `Relay` that may also rewrite the receipt and re-sign the latest checkpoint."""

    def __init__(self, upstream: rpc.BrokerStub) -> None:
        super().__init__(upstream)
        self.rewrite: Callable[[pb.Receipt], None] | None = None
        """Applied to each real receipt before it is relayed, when set."""
        self.forge_checkpoint = False

    def Submit(self, request: pb.Envelope, context: object) -> pb.SubmitReply:
        reply = super().Submit(request, context)
        if self.rewrite is not None:
            self.rewrite(reply.receipt)
        return reply

    def GetCheckpoint(self, request: pb.CheckpointRequest, context: object) -> pb.CheckpointReply:
        reply = super().GetCheckpoint(request, context)
        if self.forge_checkpoint:
            reply.checkpoint = resigned(reply.checkpoint)
        return reply


def relay_of(relay: Relay) -> ReceiptRelay:
    assert isinstance(relay, ReceiptRelay)
    return relay


def test_the_proof_of_an_earlier_submission_is_refused(network: Consortium, tmp_path: Path) -> None:
    with relayed_client(network, tmp_path, ReceiptRelay) as (relay, police):
        earlier = police.submit(ping("bank-a")).tlog_proof
        # The next submission's receipt carries the first one's proof: every signature
        # in it is genuine, only it proves another leaf.
        relay_of(relay).rewrite = lambda receipt: setattr(receipt, "tlog_proof", earlier)
        with pytest.raises(LogIntegrityError, match="differs from the reply's leaf index"):
            police.submit(ping("bank-a"))


def test_a_receipt_past_the_end_of_its_signed_tree_is_refused(
    network: Consortium, tmp_path: Path
) -> None:
    def beyond(receipt: pb.Receipt) -> None:
        proof = parse_tlog_proof(receipt.tlog_proof)
        size = parse_checkpoint(parse_note(proof.checkpoint).text).size
        assert proof.index < size  # the honest receipt lies inside its tree
        moved = TlogProof(index=size, hashes=proof.hashes, checkpoint=proof.checkpoint)
        receipt.leaf_index = size
        receipt.tlog_proof = format_tlog_proof(moved)

    with relayed_client(network, tmp_path, ReceiptRelay) as (relay, police):
        relay_of(relay).rewrite = beyond
        with pytest.raises(LogIntegrityError, match="outside its checkpoint's tree"):
            police.submit(ping("bank-a"))


def test_a_receipt_under_a_checkpoint_the_broker_did_not_sign_is_refused(
    network: Consortium, tmp_path: Path
) -> None:
    def forged(receipt: pb.Receipt) -> None:
        proof = parse_tlog_proof(receipt.tlog_proof)
        note = resigned(proof.checkpoint).encode()
        receipt.tlog_proof = format_tlog_proof(
            TlogProof(index=proof.index, hashes=proof.hashes, checkpoint=note)
        )

    with relayed_client(network, tmp_path, ReceiptRelay) as (relay, police):
        police.submit(ping("bank-a"))  # the genuine receipt passes through the relay
        relay_of(relay).rewrite = forged
        with pytest.raises(LogIntegrityError, match="receipt refused"):
            police.submit(ping("bank-a"))


def test_a_latest_checkpoint_the_broker_did_not_sign_is_refused(
    network: Consortium, tmp_path: Path
) -> None:
    with relayed_client(network, tmp_path, ReceiptRelay) as (relay, police):
        police.latest_checkpoint()  # the genuine one passes through the relay
        relay_of(relay).forge_checkpoint = True
        with pytest.raises(LogIntegrityError, match="checkpoint refused"):
            police.latest_checkpoint()


def test_an_answer_addressed_to_another_node_is_refused(
    network: Consortium, tmp_path: Path
) -> None:
    bank_a = network.pki.bundle("bank-a").keys().signing
    with relayed_client(network, tmp_path) as (relay, police):
        draft = ping("bank-a")
        # bank-a, asked, signs an answer naming our request but addressed to bank-b.
        relay.answers = [
            Draft(
                sender="bank-a",
                recipients=["bank-b"],
                kind="PONG",
                payload=json.dumps({"node": "bank-a", "role": "bank"}).encode(),
                reply_to=draft.message_id,
            ).sign(bank_a)
        ]
        with pytest.raises(AnswerError, match="answer refused"):
            police.submit(draft)
