"""The draft form's fund-control fields: a stop-payment's statement (holder, transaction),
a freeze's renewal, a return of funds and an inquiry.

The console reads the fields and leaves every rule to `nodes.actions.fund`, which builds
the same `ActionSpec` as `gateway freeze renew|return|inquire` does; the spec is then
stored as a draft for a second person to approve. Times are typed in the node's zone.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from gateway.console.formatting import parse_yuan
from gateway.console.i18n import gettext_ as _
from gateway.identifiers import IdentifierKind, InvalidIdentifier, normalise
from nodes.actions.fund import inquiry_spec, renewal_spec, return_spec
from nodes.actions.ledger import StatedTransaction
from nodes.actions.orders import Victim
from nodes.actions.police import ActionRequestRow, ActionSpec

if TYPE_CHECKING:
    from nodes.runtime import NodeContext

FUND_FIELDS = (
    "account_name",
    "txn_time",
    "txn_amount",
    "txn_from",
    "victim_bank",
    "victim_account",
    "victim_name",
    "window_from",
    "window_until",
)
"""Form fields beyond the common ones; all optional until an action needs them."""


def local_ms(text: str, zone: str, label: str) -> int:
    """A date and time typed in the node's zone (or with an offset), in Unix ms."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            _("%(field)s: give a date and time, e.g. 2026-06-01T10:15") % {"field": _(label)}
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return int(moment.timestamp() * 1000)


def positive_fen(text: str, label: str) -> int:
    try:
        fen = parse_yuan(text)
    except ValueError:
        fen = 0
    if fen <= 0:
        raise ValueError(
            _("%(field)s: give a positive amount in yuan with at most two decimals, e.g. 5000.00.")
            % {"field": _(label)}
        )
    return fen


def _stop_payment(spec: ActionSpec, values: dict[str, str], zone: str) -> ActionSpec:
    if not (values["account_name"] and values["txn_time"] and values["txn_amount"]):
        raise ValueError(
            _(
                "A stop-payment states the holder's name and the transaction: "
                "give the holder, the transaction's time and its amount."
            )
        )
    transaction = StatedTransaction(
        local_ms(values["txn_time"], zone, "Transaction time"),
        positive_fen(values["txn_amount"], "Transaction amount"),
        values["txn_from"],
    )
    return replace(spec, account_name=values["account_name"], transaction=transaction)


def _inquiry(spec: ActionSpec, values: dict[str, str], zone: str) -> ActionSpec:
    if not spec.identifier:
        raise ValueError(_("An inquiry names the account, card or number it asks about."))
    if not (values["window_from"] and values["window_until"]):
        raise ValueError(_("An inquiry states its window: give its start and its end."))
    window = (
        local_ms(values["window_from"], zone, "Window from"),
        local_ms(values["window_until"], zone, "Window until"),
    )
    built = inquiry_spec(
        spec.recipient,
        spec.identifier_kind,
        spec.identifier,
        window,
        spec.case_ref,
        spec.legal_basis,
    )
    return replace(built, purpose=spec.purpose)


def _return(ctx: NodeContext, spec: ActionSpec, values: dict[str, str]) -> ActionSpec:
    if not spec.target_request_id:
        raise ValueError(_("A return follows a freeze: draft it from the freeze's page."))
    amount = positive_fen(values["amount"], "Amount in yuan")
    try:
        account = normalise(
            IdentifierKind.BANK_ACCOUNT,
            values["victim_account"],
            default_region=ctx.config.default_region,
        ).value
    except InvalidIdentifier as exc:
        raise ValueError(_("Victim's account: %(reason)s") % {"reason": exc}) from None
    if not values["victim_bank"] or not values["victim_name"]:
        raise ValueError(_("Give the victim's bank and the name on the victim's account."))
    victim = Victim(values["victim_bank"], account, values["victim_name"])
    built = return_spec(
        ctx, spec.target_request_id, amount, victim, spec.legal_basis, spec.case_ref
    )
    return replace(built, purpose=spec.purpose)


def _renewal(ctx: NodeContext, spec: ActionSpec) -> ActionSpec:
    with Session(ctx.engine) as session:
        target = session.get(ActionRequestRow, spec.target_request_id)
    if target is None or target.action != "FREEZE":
        return spec
    if spec.duration_hours <= 0:
        raise ValueError(_("Duration: a renewal adds at least one hour."))
    built = renewal_spec(
        ctx, spec.target_request_id, spec.duration_hours, spec.legal_basis, spec.case_ref
    )
    return replace(built, purpose=spec.purpose)


def fund_spec(ctx: NodeContext, spec: ActionSpec, values: dict[str, str]) -> ActionSpec:
    """`spec` as the common fields give it, completed for its action by
    `nodes.actions.fund`; ValueError (a FundControlError among them) says what is wrong."""
    zone = ctx.config.time_zone
    if spec.action == "STOP_PAYMENT":
        return _stop_payment(spec, values, zone)
    if spec.action == "FREEZE" and values["account_name"]:
        return replace(spec, account_name=values["account_name"])
    if spec.action == "INQUIRY":
        return _inquiry(spec, values, zone)
    if spec.action == "RETURN_FUNDS":
        return _return(ctx, spec, values)
    if spec.action == "EXTEND" and spec.target_request_id:
        return _renewal(ctx, spec)
    return spec
