"""The police side of actions: issuing requests and keeping their receipts.

Each request is journalled with the broker's audit receipt when the broker acknowledges
it (only after storing it durably), and updated when the bank's or carrier's signed
ACTION_RECEIPT arrives through the broker's outbox.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
from sqlalchemy import BigInteger, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from gateway.db import NodeBase
from gateway.envelope.build import Draft, now_ms
from gateway.identifiers import IdentifierKind, normalise
from gateway.telemetry import span
from gateway.v1 import gateway_pb2 as pb
from nodes.actions.orders import request_payload
from nodes.roles.base import Inbound, RoleRefusal

if TYPE_CHECKING:
    from nodes.broker_client import Submitted
    from nodes.runtime import NodeContext

ACTION_LIFETIME_MS = 24 * 3600 * 1000
"""How long the broker keeps trying to deliver an action request."""


class ActionRequestRow(NodeBase):
    __tablename__ = "action_requests"

    request_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    recipient: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    case_ref: Mapped[str] = mapped_column(String(128), index=True)
    target_request_id: Mapped[str] = mapped_column(String(32), default="")
    requested_at_ms: Mapped[int] = mapped_column(BigInteger)
    leaf_index: Mapped[int] = mapped_column(BigInteger, default=-1)
    state: Mapped[str] = mapped_column(String(16), default="requested")
    reason: Mapped[str] = mapped_column(Text, default="")
    executed_amount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    effective_at_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    hold_expires_at_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    receipt_id: Mapped[str] = mapped_column(String(32), default="")
    receipt: Mapped[bytes] = mapped_column(default=b"")
    """The signed receipt envelope, kept as evidence."""


@dataclass(frozen=True)
class ActionSpec:
    """What the officer asks for; the identifier is sealed to the recipient."""

    recipient: str
    action: str
    case_ref: str
    legal_basis: str
    issuing_officer: str
    approving_officer: str
    identifier_kind: str = ""
    identifier: str = ""
    amount_minor: int = 0
    whole_balance: bool = False
    duration_hours: int = 0
    currency: str = "CNY"
    target_request_id: str = ""
    purpose: str = "telecom fraud"


def issue_action(ctx: NodeContext, spec: ActionSpec) -> Submitted:
    """Normalise, seal, sign and submit; journal the acknowledged request."""
    draft = action_draft(ctx, spec)
    return send_action(ctx, spec, draft.sign(ctx.keys.signing))


def action_draft(
    ctx: NodeContext, spec: ActionSpec, *, message_id: str = "", created_at_ms: int | None = None
) -> Draft:
    """The unsigned message for `spec`, its identifier normalised and sealed to the
    recipient; `message_id` and `created_at_ms` fix what a later resend must repeat."""
    payload = b""
    if spec.identifier:
        kind = IdentifierKind(spec.identifier_kind)
        value = normalise(kind, spec.identifier, default_region=ctx.config.default_region).value
        payload = request_payload(kind, value)
    member = ctx.client.directory().get(spec.recipient)
    if member is None:
        raise ValueError(f"{spec.recipient} is not a member of the consortium")
    draft = Draft(
        sender=ctx.node_id,
        recipients=[spec.recipient],
        kind=spec.action,
        payload=payload,
        case_ref=spec.case_ref,
        purpose=spec.purpose,
        legal_basis=spec.legal_basis,
        seal_to=member.seal_key,
        lifetime_ms=ACTION_LIFETIME_MS,
        terms=pb.ActionTerms(
            action=spec.action,
            amount_minor=spec.amount_minor,
            whole_balance=spec.whole_balance,
            duration_hours=spec.duration_hours,
            issuing_officer=spec.issuing_officer,
            approving_officer=spec.approving_officer,
            currency=spec.currency,
            target_request_id=spec.target_request_id,
        ),
        created_at_ms=created_at_ms,
    )
    if message_id:
        draft.message_id = message_id
    return draft


def send_action(ctx: NodeContext, spec: ActionSpec, envelope: pb.Envelope) -> Submitted:
    """Submit the signed request (again, if it was sent before) and journal it once."""
    header = pb.Header.FromString(envelope.header)
    sent = Draft(
        sender=header.sender,
        recipients=list(header.recipients),
        kind=header.kind,
        payload=b"",
        case_ref=header.case_ref,
        message_id=header.message_id,
    )
    with span("freeze.request", {"gateway.kind": spec.action, "gateway.recipient": spec.recipient}):
        result = ctx.client.submit_signed(sent, envelope)
    with contextlib.suppress(IntegrityError), Session(ctx.engine) as session:
        if session.get(ActionRequestRow, header.message_id) is None:
            session.add(
                ActionRequestRow(
                    request_id=header.message_id,
                    recipient=spec.recipient,
                    action=spec.action,
                    case_ref=spec.case_ref,
                    target_request_id=spec.target_request_id,
                    requested_at_ms=now_ms(),
                    leaf_index=result.leaf_index,
                )
            )
            session.commit()
    return result


def keep_receipt(inbound: Inbound, ctx: NodeContext) -> None:
    """An ACTION_RECEIPT reached us: record the outcome against our request."""
    if inbound.session is None:
        raise RoleRefusal(grpc.StatusCode.INTERNAL, "receipt delivered outside a transaction")
    header = inbound.header
    request = inbound.session.get(ActionRequestRow, header.reply_to)
    if request is None:
        raise RoleRefusal(grpc.StatusCode.NOT_FOUND, "receipt: no request of ours has that id")
    if header.sender != request.recipient:
        raise RoleRefusal(
            grpc.StatusCode.PERMISSION_DENIED, "receipt: sender is not the request's recipient"
        )
    if request.receipt_id and request.receipt_id != header.message_id:
        raise RoleRefusal(
            grpc.StatusCode.ALREADY_EXISTS, "receipt: the request has its receipt already"
        )
    try:
        body = json.loads(inbound.payload)
    except (ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        raise RoleRefusal(grpc.StatusCode.INVALID_ARGUMENT, "receipt: payload is not a JSON object")
    request.state = header.outcome.lower()
    request.reason = str(body.get("reason", ""))[:500]
    request.executed_amount_minor = header.terms.executed_amount_minor
    request.effective_at_ms = header.terms.effective_at_ms
    request.hold_expires_at_ms = header.terms.hold_expires_at_ms
    request.receipt_id = header.message_id
    request.receipt = inbound.envelope.SerializeToString()
    if request.target_request_id and request.state == "executed":
        target = inbound.session.get(ActionRequestRow, request.target_request_id)
        if target is not None:
            if request.action == "EXTEND":
                target.state = "extended"
                target.hold_expires_at_ms = header.terms.hold_expires_at_ms
            else:
                target.state = "released"
                target.hold_expires_at_ms = 0
    return None


def requests_for_case(ctx: NodeContext, case_ref: str | None) -> list[ActionRequestRow]:
    with Session(ctx.engine) as session:
        query = select(ActionRequestRow).order_by(ActionRequestRow.requested_at_ms)
        if case_ref:
            query = query.where(ActionRequestRow.case_ref == case_ref)
        return list(session.scalars(query).all())
