"""What the police desk shows of fund control: expiry warnings, a return's due date and
whether it was met, and an inquiry's answer with its fields named in the user's language.

Whether to warn is `nodes.actions.fund.warning`'s decision (the same as `freeze list`);
this module only words it. An inquiry's answer is shown to the officer and never logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.console.i18n import gettext_ as _
from nodes.actions.fund import HOUR_MS, inquiry_answer, warning

if TYPE_CHECKING:
    from gateway.config import NodeConfig
    from nodes.actions.police import ActionRequestRow
    from nodes.runtime import NodeContext

FIELD_LABELS = {
    "holder_name": "Holder's name",
    "status": "Status",
    "balance_minor": "Balance",
    "held_minor": "Amount held",
    "transactions": "Transactions",
}
"""Answer fields as users name them; fields a bank adds by configuration show as named."""
MONEY_FIELDS = ("balance_minor", "held_minor")


def warning_text(row: ActionRequestRow, config: NodeConfig, now: int) -> str:
    """The desk's warning for `row` in the user's language, or ""."""
    found = warning(row, config, now)
    if not found:
        return ""
    if found == "expired":
        return _("Expired")
    if row.action == "RETURN_FUNDS":
        return _("Return overdue: not completed within its working days")
    left = max(row.hold_expires_at_ms - now, 0)
    hours = left // HOUR_MS
    span = (
        _("%(days)d d %(hours)d h") % {"days": hours // 24, "hours": hours % 24}
        if hours >= 24
        else _("%(hours)d h %(minutes)d min")
        % {"hours": hours, "minutes": left % HOUR_MS // 60_000}
    )
    if row.action == "FREEZE":
        return _("Expires in %(span)s: renew it before then") % {"span": span}
    return _("Expires in %(span)s: freeze the account before then") % {"span": span}


def due_state(row: ActionRequestRow, now: int) -> str:
    """A return against its working-day due date: met, late, overdue, pending or ""."""
    if row.action != "RETURN_FUNDS" or not row.due_at_ms:
        return ""
    if row.state == "executed":
        done = row.effective_at_ms or now
        return "met" if done <= row.due_at_ms else "late"
    if row.state in ("requested", "delivered"):
        return "overdue" if now >= row.due_at_ms else "pending"
    return ""


@dataclass(frozen=True)
class AnswerField:
    name: str
    label: str
    value: str
    money: bool


@dataclass(frozen=True)
class AnsweredTransaction:
    at_ms: int
    amount_minor: int
    counterparty: str
    txn_id: str


@dataclass(frozen=True)
class Answer:
    """An inquiry's answer as the action page shows it."""

    fields: list[AnswerField]
    transactions: list[AnsweredTransaction] | None
    more_transactions: bool
    window_from_ms: int
    window_until_ms: int


def answer_of(ctx: NodeContext, row: ActionRequestRow) -> Answer | None:
    """The answer to an inquiry of ours once its receipt brought one, else None."""
    if row.action != "INQUIRY" or not row.answer:
        return None
    found = inquiry_answer(ctx, row.request_id)
    if found is None:
        return None
    raw_fields = found.get("fields")
    fields = [
        AnswerField(
            str(name),
            _(FIELD_LABELS.get(str(name), str(name))),
            "" if value is None else str(value),
            str(name) in MONEY_FIELDS and isinstance(value, int),
        )
        for name, value in (raw_fields.items() if isinstance(raw_fields, dict) else ())
    ]
    posted = found.get("transactions")
    transactions = (
        [
            AnsweredTransaction(
                int(t.get("at_ms", 0) or 0),
                int(t.get("amount_minor", 0) or 0),
                str(t.get("counterparty_account", "") or ""),
                str(t.get("txn_id", "") or ""),
            )
            for t in posted
            if isinstance(t, dict)
        ]
        if isinstance(posted, list)
        else None
    )
    window = found.get("window")
    span = window if isinstance(window, dict) else {}
    return Answer(
        fields,
        transactions,
        bool(found.get("more_transactions")),
        int(span.get("from_ms", 0) or 0),
        int(span.get("until_ms", 0) or 0),
    )
