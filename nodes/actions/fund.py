"""Fund control at the police desk: renewing freezes, returning funds, and what is due.

Plain functions over the police node's journal, for the CLI and the console alike. They
check what the police node can know before anything is sent (a freeze that has expired
cannot be renewed; a return needs a freeze in force and names the victim's account),
and build the request's `ActionSpec`: the CLI and the console store it as a draft that a
second officer approves (`nodes/staff/drafts.py`); `renew_freeze`, `return_funds` and
`inquire` send it at once in the name of two given officers (tests, the demo's tools).
Either way it goes through `issue_action` and carries both officers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from gateway.envelope.build import now_ms
from gateway.workdays import WorkingCalendar
from nodes.actions.orders import Victim
from nodes.actions.police import ActionRequestRow, ActionSpec, issue_action

if TYPE_CHECKING:
    from gateway.config import NodeConfig
    from nodes.broker_client import Submitted
    from nodes.runtime import NodeContext

HOUR_MS = 3_600_000
IN_FORCE = ("executed", "partial", "extended")
"""States of a stop-payment or freeze whose hold the bank still keeps (until it expires)."""


class FundControlError(ValueError):
    """A request the police node refuses to send; the text says why and what to do."""


@dataclass(frozen=True)
class Officers:
    """Who issues a request and who approved it (both travel in the signed header)."""

    issuing: str
    approving: str


def _original(ctx: NodeContext, request_id: str) -> ActionRequestRow:
    with Session(ctx.engine) as session:
        row = session.get(ActionRequestRow, request_id)
    if row is None:
        raise FundControlError(f"no request {request_id} in this node's journal")
    return row


def _freeze_in_force(row: ActionRequestRow, now: int, doing: str) -> None:
    if row.action != "FREEZE":
        raise FundControlError(f"{doing}: request {row.request_id} is a {row.action}, not a freeze")
    if row.state not in IN_FORCE:
        raise FundControlError(f"{doing}: the freeze is {row.state}, not in force")
    if row.hold_expires_at_ms and row.hold_expires_at_ms <= now:
        raise FundControlError(f"{doing}: the freeze has expired; issue a new freeze")


def renewal_spec(
    ctx: NodeContext, freeze_request_id: str, hours: int, legal_basis: str, case_ref: str = ""
) -> ActionSpec:
    """The renewal of a freeze in force by `hours` (at most 180 days each time, without
    limit of renewals); the bank refuses too if it has expired when the request arrives.
    Officers are left empty: a draft's are its drafter and approver."""
    row = _original(ctx, freeze_request_id)
    _freeze_in_force(row, now_ms(), "renew")
    return ActionSpec(
        recipient=row.recipient,
        action="EXTEND",
        case_ref=case_ref or row.case_ref,
        legal_basis=legal_basis,
        issuing_officer="",
        approving_officer="",
        duration_hours=hours,
        target_request_id=row.request_id,
    )


def return_spec(
    ctx: NodeContext,
    freeze_request_id: str,
    amount_minor: int,
    victim: Victim,
    legal_basis: str,
    case_ref: str = "",
) -> ActionSpec:
    """The order to return `amount_minor` of a freeze to the victim's account (扣划/返还),
    due within the configured working days of now."""
    row = _original(ctx, freeze_request_id)
    now = now_ms()
    _freeze_in_force(row, now, "return")
    if amount_minor <= 0:
        raise FundControlError("return: the amount must be positive")
    if row.executed_amount_minor and amount_minor > row.executed_amount_minor:
        raise FundControlError(
            f"return: larger than the frozen amount ({row.executed_amount_minor / 100:.2f})"
        )
    calendar = WorkingCalendar.load(ctx.config.holiday_calendar)
    return ActionSpec(
        recipient=row.recipient,
        action="RETURN_FUNDS",
        case_ref=case_ref or row.case_ref,
        legal_basis=legal_basis,
        issuing_officer="",
        approving_officer="",
        amount_minor=amount_minor,
        target_request_id=row.request_id,
        victim=victim,
        due_at_ms=calendar.due_after(now, ctx.config.return_working_days),
    )


def inquiry_spec(
    recipient: str,
    identifier_kind: str,
    identifier: str,
    window: tuple[int, int],
    case_ref: str,
    legal_basis: str,
) -> ActionSpec:
    """An inquiry of a bank about an account (holder, transactions in `window`) or of a
    carrier about a number (subscriber, registration); answered sealed to this node."""
    start, end = window
    if end <= start:
        raise FundControlError("inquiry: the window's end must come after its start")
    return ActionSpec(
        recipient=recipient,
        action="INQUIRY",
        case_ref=case_ref,
        legal_basis=legal_basis,
        issuing_officer="",
        approving_officer="",
        identifier_kind=identifier_kind,
        identifier=identifier,
        duration_hours=-(-(end - start) // HOUR_MS),
        window=window,
    )


def signed_by(spec: ActionSpec, officers: Officers) -> ActionSpec:
    return replace(spec, issuing_officer=officers.issuing, approving_officer=officers.approving)


def renew_freeze(
    ctx: NodeContext,
    freeze_request_id: str,
    hours: int,
    legal_basis: str,
    officers: Officers,
    case_ref: str = "",
) -> Submitted:
    """Send `renewal_spec` now, in the name of both `officers`."""
    spec = renewal_spec(ctx, freeze_request_id, hours, legal_basis, case_ref)
    return issue_action(ctx, signed_by(spec, officers))


def return_funds(
    ctx: NodeContext,
    freeze_request_id: str,
    amount_minor: int,
    victim: Victim,
    legal_basis: str,
    officers: Officers,
    case_ref: str = "",
) -> Submitted:
    """Send `return_spec` now, in the name of both `officers`."""
    spec = return_spec(ctx, freeze_request_id, amount_minor, victim, legal_basis, case_ref)
    return issue_action(ctx, signed_by(spec, officers))


def inquire(
    ctx: NodeContext,
    recipient: str,
    identifier_kind: str,
    identifier: str,
    window: tuple[int, int],
    case_ref: str,
    legal_basis: str,
    officers: Officers,
) -> Submitted:
    """Send `inquiry_spec` now, in the name of both `officers`."""
    spec = inquiry_spec(recipient, identifier_kind, identifier, window, case_ref, legal_basis)
    return issue_action(ctx, signed_by(spec, officers))


def inquiry_answer(ctx: NodeContext, request_id: str) -> dict[str, object] | None:
    """The answer to one of our inquiries, None while it has none (or was refused)."""
    row = _original(ctx, request_id)
    if row.action != "INQUIRY":
        raise FundControlError(f"request {request_id} is a {row.action}, not an inquiry")
    if not row.answer:
        return None
    found: dict[str, object] = json.loads(row.answer)
    return found


def warning(row: ActionRequestRow, config: NodeConfig, now: int) -> str:
    """What the desk must act on for this request, or "": a hold about to expire, or a
    return past its working-day deadline."""
    if row.action == "RETURN_FUNDS":
        if row.due_at_ms and row.state in ("requested", "delivered") and now >= row.due_at_ms:
            return "return overdue: not completed within its working days"
        return ""
    ahead = {
        "FREEZE": config.freeze_warning_hours,
        "STOP_PAYMENT": config.stop_payment_warning_hours,
    }.get(row.action)
    if ahead is None or row.state not in IN_FORCE or not row.hold_expires_at_ms:
        return ""
    left = row.hold_expires_at_ms - now
    if left <= 0:
        return "expired"
    if left > ahead * HOUR_MS:
        return ""
    hours = left // HOUR_MS
    span = (
        f"{hours // 24} d {hours % 24} h"
        if hours >= 24
        else f"{hours} h {left % HOUR_MS // 60_000} min"
    )
    then = "renew it" if row.action == "FREEZE" else "freeze the account"
    return f"expires in {span}: {then} before then"
