"""What the broker tells a requester about a recipient that gave no answer.

A recipient refuses an interactive message (a match query, a PSI exchange) by aborting
its Deliver with a status and a reason of its own, made from fixed texts with counts
and limits (`nodes/matching.py`, `nodes/bulk_psi.py`). Those reasons go back to the
requester in `SubmitReply.refusals`. Anything else is cut down before it leaves: a
recipient that failed without deciding to (UNKNOWN, INTERNAL: gRPC then carries the
exception's text) is named by its status alone, and any long run of digits or hex
digits, the shape of an account, card, phone or ID number or of an encoded element,
is blanked, so that no reason can carry an identifier whatever a recipient writes.
"""

from __future__ import annotations

import re
from typing import Final

import grpc

STATED: Final = frozenset(
    code.name
    for code in (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.UNAUTHENTICATED,
    )
)
"""Statuses a recipient refuses with on purpose, with a reason written for the requester."""
STATUSES: Final = frozenset(code.name for code in grpc.StatusCode)
MAX_REASON: Final = 300
"""Characters of a reason passed on; the refusals are one short sentence."""
_LONG_NUMBER = re.compile(r"[0-9A-Fa-f]{9,}")


def recipient_reason(node_id: str, text: str) -> str:
    """The reason to pass on for `text`, a delivery failure ('node: STATUS details', as
    `NodeDialer` words it) or a recipient's own refusal reason."""
    body = text.removeprefix(f"{node_id}: ")
    status = body.partition(" ")[0]
    if status in STATUSES and status not in STATED:
        return status
    return _LONG_NUMBER.sub("…", body)[:MAX_REASON]
