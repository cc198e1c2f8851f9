"""Which ACTION_RECEIPTs the broker accepts, and what accepting one changes.

A receipt moves money: once the broker records "executed", the hold's expiry is
watched and the police see the outcome. So the broker accepts a receipt only as the
answer to an action request that it delivered to the receipt's sender, addressed back
to the request's sender, and only while that request still awaits its receipt. Anything
else (a made-up request id, a request that went to another bank, a second receipt) is
stored as a denied decision with the reason and routed nowhere.

The receipt, the request's new state and the close of the bank's outbox row are staged
in one transaction (`stage_receipt_effects`), so a crash leaves either all of them or
none; a bank re-sending the same receipt afterwards is answered with the first outcome.
"""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.audit.log import Append
from gateway.broker.lifecycle import apply_receipt, close_delivery
from gateway.broker.models import DeliveryRow, MessageRow
from gateway.kinds import ACTIONS, Kind
from gateway.v1 import gateway_pb2 as pb

AWAITING = ("requested", "delivered")
"""States of an action request that has had no receipt yet."""
OUTCOMES = ("EXECUTED", "PARTIAL", "REJECTED")
"""What a receipt may say was done; each moves the request out of AWAITING, so a request
takes one receipt from its recipient."""


def receipt_problem(session: Session, receipt: pb.Header, *, submitted: bool) -> str:
    """Why `receipt` may not be accepted, or "" if it may.

    `submitted`: the receipt came by `Submit` rather than as the recipient's direct
    answer to a delivery; then the broker must already have tried to deliver the request
    to that sender (a direct answer is by construction the answer to a delivery).
    """
    request = session.get(MessageRow, receipt.reply_to) if receipt.reply_to else None
    if request is None:
        return "receipt: reply_to names no request the broker holds"
    if Kind(request.kind) not in ACTIONS:
        return "receipt: reply_to names a message that is not an action request"
    if receipt.sender not in json.loads(request.recipients):
        return "receipt: the request was not addressed to the receipt's sender"
    if list(receipt.recipients) != [request.sender]:
        return "receipt: must be addressed to the request's sender only"
    delivery = session.scalars(
        select(DeliveryRow)
        .where(DeliveryRow.message_id == request.message_id)
        .where(DeliveryRow.recipient == receipt.sender)
    ).first()
    if delivery is None or delivery.state not in ("pending", "delivered"):
        return "receipt: the request was never delivered to the receipt's sender"
    if submitted and delivery.state == "pending" and delivery.attempts == 0:
        return "receipt: the request was never delivered to the receipt's sender"
    if request.state not in AWAITING:
        return f"receipt: the request awaits no receipt (it is {request.state})"
    if receipt.outcome not in OUTCOMES:
        return f"receipt: the outcome must be one of {', '.join(OUTCOMES)}"
    return ""


def stage_receipt_effects(
    session: Session, append: Append, receipt: pb.Header, detail: str, at_ms: int
) -> None:
    """The request's new state, and its outbox row to the sender closed as answered."""
    apply_receipt(session, append, receipt.reply_to, receipt, at_ms)
    delivery = session.scalars(
        select(DeliveryRow)
        .where(DeliveryRow.message_id == receipt.reply_to)
        .where(DeliveryRow.recipient == receipt.sender)
    ).first()
    if delivery is not None:
        close_delivery(session, append, delivery, "delivered", detail, at_ms)
