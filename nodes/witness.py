"""A node witnessing the broker's log: cosigning checkpoints it has checked.

A node cosigns only a checkpoint signed by the broker's key and consistent with every
checkpoint it saw before (its broker client checks that against its journal, which
holds every checkpoint it cosigned), so a cosigned checkpoint tells a third party that
this member saw the same log, not a fork made for it.
"""

from __future__ import annotations

from gateway.audit.cosignature import CosignatureV1Signer, CosignatureV1Verifier, cosign_checkpoint
from gateway.audit.witnessed import witness_key_name
from nodes.broker_client import BrokerClient


def witness_name(client: BrokerClient) -> str:
    """The cosignature key name: the consortium's witness namespace and the node id."""
    return witness_key_name(client.bundle.consortium(), client.node_id)


def witness_verifier(client: BrokerClient, node_id: str) -> CosignatureV1Verifier:
    """The verifier of another member's cosignatures, from the signed directory."""
    member = client.directory().get(node_id)
    if member is None:
        raise ValueError(f"{node_id} is not a member")
    return CosignatureV1Verifier(
        witness_key_name(client.bundle.consortium(), node_id), member.sign_key
    )


def cosign_note(client: BrokerClient, note: str) -> str:
    """Our cosignature line for a broker checkpoint the client has already checked."""
    signer = CosignatureV1Signer(witness_name(client), client.keys.signing)
    return cosign_checkpoint(note, signer, [client.broker_note_verifier()])


def cosign_latest(client: BrokerClient) -> str:
    """The broker's latest checkpoint, checked for consistency, with our cosignature."""
    note = client.latest_checkpoint()
    return note + cosign_note(client, note)


def submit_latest(client: BrokerClient) -> int:
    """Cosign the broker's latest checkpoint and hand the cosignature to the broker.

    Returns the tree size cosigned. The broker serves it with that checkpoint from then on.
    """
    note = client.latest_checkpoint()
    return client.submit_cosignature(note, cosign_note(client, note))
