"""A node witnessing the broker's log: cosigning checkpoints it has checked.

A node cosigns only a checkpoint signed by the broker's key and consistent with every
checkpoint it saw before (its broker client checks that), so a cosigned checkpoint
tells a third party that this member saw the same log, not a fork made for it.
"""

from __future__ import annotations

from gateway.audit.cosignature import CosignatureV1Signer, CosignatureV1Verifier, cosign_checkpoint
from nodes.broker_client import BrokerClient


def witness_name(client: BrokerClient) -> str:
    """The cosignature key name: the consortium's witness namespace and the node id."""
    return f"{client.bundle.consortium()}/witness/{client.node_id}"


def witness_verifier(client: BrokerClient, node_id: str) -> CosignatureV1Verifier:
    """The verifier of another member's cosignatures, from the signed directory."""
    member = client.directory().get(node_id)
    if member is None:
        raise ValueError(f"{node_id} is not a member")
    return CosignatureV1Verifier(f"{client.bundle.consortium()}/witness/{node_id}", member.sign_key)


def cosign_latest(client: BrokerClient) -> str:
    """The broker's latest checkpoint, checked for consistency, with our cosignature."""
    note = client.latest_checkpoint()
    signer = CosignatureV1Signer(witness_name(client), client.keys.signing)
    line = cosign_checkpoint(note, signer, [client.broker_note_verifier()])
    return note + line
