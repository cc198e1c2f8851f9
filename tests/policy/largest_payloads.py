"""The largest payload a well-behaved node can send of each kind, built from the real
encoders and sealed as sent, so that the size bounds in gateway/policies/broker.cedar are checked
against traffic, not against numbers copied from the policy file."""

from __future__ import annotations

import json

from nacl.public import PrivateKey

from gateway.bulk_psi.plan import MAX_CHUNK_SIZE, Mode
from gateway.bulk_psi.wire import (
    MAX_SELECTION_ENTRIES,
    ChunkRequest,
    ChunkResponse,
    Opening,
    encode_request,
    encode_response,
)
from gateway.envelope.sealing import seal
from gateway.identifiers import IdentifierKind
from gateway.matching.derive import MAX_BUCKET_BITS
from gateway.matching.wire import MAX_PARTS, VERSION, mpb

MESSAGE_ID = "f" * 32
_KEY = bytes(PrivateKey.generate().public_key)
_WIDE = "\U0010ffff"
"""A selection value may be any printable character: the widest takes 4 bytes in UTF-8."""


def sealed(payload: bytes) -> bytes:
    return seal(payload, MESSAGE_ID, _KEY)


def match_query(items: int) -> bytes:
    """`items` items in the highest bucket, split into the most parts."""
    parts = [items // MAX_PARTS] * (MAX_PARTS - 1)
    parts.append(items - sum(parts))
    query = mpb.MatchQuery(
        version=VERSION,
        bucket_bits=MAX_BUCKET_BITS,
        items=[
            mpb.MatchItem(bucket=(1 << MAX_BUCKET_BITS) - 1, blinded=b"\xff" * 32)
            for _ in range(items)
        ],
        parts=parts,
    )
    return sealed(query.SerializeToString())


def psi_request(elements: int) -> bytes:
    """The opening exchange with the longest names, the widest selection and `elements`."""
    opening = Opening(
        kind=max(IdentifierKind, key=lambda k: len(k.value)),
        responder_set="s" * 64,
        mode=Mode.CARDINALITY,
        querier_size=2**63,
        chunk_size=MAX_CHUNK_SIZE,
        selection={f"{i:02d}" + "k" * 62: _WIDE * 64 for i in range(MAX_SELECTION_ENTRIES)},
    )
    opened = encode_request(ChunkRequest(b"", 0, opening, b"\xff" * 32 * elements))
    later = encode_request(ChunkRequest(b"\xff" * 16, 2**32 - 1, None, b"\xff" * 32 * elements))
    return sealed(max(opened, later, key=len))


def psi_response() -> bytes:
    """A full chunk each way, with every counter at its widest."""
    response = ChunkResponse(
        session_id=b"\xff" * 16,
        exchange=2**32 - 1,
        responder_size=2**64 - 1,
        double_masked=b"\xff" * 32 * MAX_CHUNK_SIZE,
        responder_chunk=2**32 - 1,
        responder_elements=b"\xff" * 32 * MAX_CHUNK_SIZE,
    )
    return sealed(encode_response(response))


def action_request() -> bytes:
    """nodes.actions.orders.request_payload at its longest: the longest identifier a kind
    accepts (an IBAN, 34), and a stop-payment's holder name (MAX_NAME characters of 4
    UTF-8 bytes) and transaction, or a return's victim (a 128-character member id)."""
    from nodes.actions.ledger import StatedTransaction
    from nodes.actions.orders import MAX_NAME, Victim, request_payload

    longest_name = "\U00020000" * MAX_NAME  # a CJK Extension B character: 4 bytes in UTF-8
    stop = request_payload(
        "bank_account",
        "9" * 34,
        account_name=longest_name,
        transaction=StatedTransaction(2**63 - 1, 2**63 - 1, "9" * 34),
    )
    back = request_payload(
        "bank_account", "9" * 34, victim=Victim("n" * 128, "9" * 34, longest_name)
    )
    window = request_payload("bank_account", "9" * 34, window=(2**63 - 1, 2**63 - 1))
    return sealed(max(stop, back, window, key=len))


def pong() -> bytes:
    """nodes.roles.base.pong with a node id of the directory's longest (128)."""
    return json.dumps({"node": "n" * 128, "role": "regulator"}).encode()
