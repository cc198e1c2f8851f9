"""The bank and carrier desk: incoming requests, what was done and why, holds, flags sent.

Read from the node's own journal (what the broker delivered and the signed receipt the
node answered with) and its hold records; nothing here changes anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.console.framework import ALL_STAFF, NavItem, Page, page
from gateway.envelope.build import now_ms
from gateway.kinds import ACTIONS, Kind
from gateway.v1 import gateway_pb2 as pb
from nodes.actions.holds import ACTIVE, HoldRow
from nodes.actions.inquiry import (
    TRANSACTIONS_FIELD,
    InquiryConfigError,
    allowed_fields,
    answer_columns,
)
from nodes.actions.outcomes import ActionOutcomeRow
from nodes.journal import InboundRow, OutboundRow

RESPONDERS = ("bank", "carrier")
LIMIT = 500


@dataclass(frozen=True)
class Incoming:
    """One delivered action request and the receipt this node answered with."""

    message_id: str
    sender: str
    kind: str
    case_ref: str
    legal_basis: str
    received_at_ms: int
    issuing_officer: str
    approving_officer: str
    amount_minor: int
    whole_balance: bool
    duration_hours: int
    outcome: str
    reason: str
    executed_amount_minor: int
    hold_expires_at_ms: int


def incoming(row: InboundRow, decided: ActionOutcomeRow | None) -> Incoming:
    header = pb.Header.FromString(row.header)
    answer = pb.Envelope.FromString(row.answer) if row.answer else None
    answered = pb.Header.FromString(answer.header) if answer is not None else pb.Header()
    terms = header.terms
    return Incoming(
        message_id=row.message_id,
        sender=row.sender,
        kind=row.kind,
        case_ref=row.case_ref,
        legal_basis=header.legal_basis,
        received_at_ms=row.received_at_ms,
        issuing_officer=terms.issuing_officer,
        approving_officer=terms.approving_officer,
        amount_minor=terms.amount_minor,
        whole_balance=terms.whole_balance,
        duration_hours=terms.duration_hours,
        outcome=answered.outcome.lower(),
        reason=decided.reason if decided is not None else "",
        executed_amount_minor=answered.terms.executed_amount_minor,
        hold_expires_at_ms=answered.terms.hold_expires_at_ms,
    )


def masked(identifier: str) -> str:
    """An account or number with all but its last four characters hidden: the desk
    monitors requests, and the agency's own systems hold the full record."""
    return "•" * max(len(identifier) - 4, 0) + identifier[-4:]


FUND_KINDS = ("RETURN_FUNDS", "INQUIRY")


def answered_fields(page: Page, senders: set[str]) -> dict[str, list[str]]:
    """Sender -> the names of the fields this node answers its inquiries with (by the
    sender's role, as `nodes.actions.inquiry` decides); never the values."""
    directory = page.ctx.client.directory()
    config = page.ctx.config
    found: dict[str, list[str]] = {}
    for sender in senders:
        member = directory.get(sender)
        try:
            _table, _key, columns = answer_columns(config)
            known = set(columns) | ({TRANSACTIONS_FIELD} if config.role == "bank" else set())
            found[sender] = allowed_fields(config, member.role if member else "", known)
        except InquiryConfigError:
            found[sender] = []
    return found


@page(ALL_STAFF, RESPONDERS)
def desk(page: Page) -> Response:
    with Session(page.ctx.engine) as session:
        requests = [
            incoming(row, decided)
            for row, decided in session.execute(
                select(InboundRow, ActionOutcomeRow)
                .outerjoin(ActionOutcomeRow, ActionOutcomeRow.request_id == InboundRow.message_id)
                .where(InboundRow.kind.in_(sorted(ACTIONS)))
                .order_by(InboundRow.received_at_ms.desc())
                .limit(LIMIT)
            ).all()
        ]
        holds = list(
            session.scalars(
                select(HoldRow).order_by(HoldRow.state, HoldRow.expires_at_ms).limit(LIMIT)
            ).all()
        )
        flagged = list(
            session.scalars(
                select(OutboundRow)
                .where(OutboundRow.kind == Kind.FLAGGED_NUMBERS)
                .order_by(OutboundRow.sent_at_ms.desc())
                .limit(LIMIT)
            ).all()
        )
    fund = [r for r in requests if r.kind in FUND_KINDS]
    return page.render(
        "desk/desk.html",
        requests=requests,
        fund=fund,
        fields=answered_fields(page, {r.sender for r in fund if r.kind == "INQUIRY"}),
        holds=holds,
        flagged=flagged,
        masked=masked,
        active=ACTIVE,
        now_ms=now_ms(),
    )


ROUTES: list[BaseRoute] = [Route("/desk", desk, methods=["GET"])]
NAV = [NavItem("Requests and holds", "/desk", ALL_STAFF, RESPONDERS)]
