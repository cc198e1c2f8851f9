"""Bulk Diffie-Hellman PSI between two nodes, in chunked sessions through the broker.

For balanced sets, such as a bank's mule-account holders against a carrier's flagged
subscribers: each side masks its set with a fresh key (gateway.crypto.psi), and the
querier learns the intersection, or in cardinality mode only its size; the responder
learns the querier's set size and nothing else. A session is a run of PSI_REQUEST /
PSI_RESPONSE exchanges, each carrying at most one chunk each way (`plan`), encoded as
gateway.v1.psi protobufs (`wire`). `querier` and `responder` are the two state machines;
`offers` holds what a node agrees to match on; `nodes.bulk_psi` wires them to the broker.
"""

from __future__ import annotations

from gateway.bulk_psi.errors import BulkPsiError
from gateway.bulk_psi.offers import find_offer, list_offers, remove_offer, save_offer
from gateway.bulk_psi.plan import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_MAX_SET_SIZE,
    MAX_CHUNK_SIZE,
    Mode,
    SessionPlan,
)
from gateway.bulk_psi.querier import PsiResult, QuerierSession, Transport, run_querier
from gateway.bulk_psi.responder import Offer, Peer, Responder
from gateway.bulk_psi.wire import REQUEST_PAYLOAD_TYPE, RESPONSE_PAYLOAD_TYPE

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_MAX_SET_SIZE",
    "MAX_CHUNK_SIZE",
    "REQUEST_PAYLOAD_TYPE",
    "RESPONSE_PAYLOAD_TYPE",
    "BulkPsiError",
    "Mode",
    "Offer",
    "Peer",
    "PsiResult",
    "QuerierSession",
    "Responder",
    "SessionPlan",
    "Transport",
    "find_offer",
    "list_offers",
    "remove_offer",
    "run_querier",
    "save_offer",
]
