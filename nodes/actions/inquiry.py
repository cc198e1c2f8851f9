"""A bank or carrier answering an inquiry (查询) from its own tables.

The answer holds only what the node's configuration lets the requesting role see:
`inquiry_fields` maps a role to the fields it may see (by default police see the
mapped columns of the adapter table and, at a bank, the account's transactions), and
`inquiry_columns` adds fields read from other columns of the agency's own table. The
answer travels in the receipt sealed to the police node; the broker sees only its
size and digest.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING

from sqlalchemy import Column, MetaData, String, Table, select
from sqlalchemy.orm import Session

from nodes.actions.accounts import bank_columns
from nodes.actions.ledger import ledger_for
from nodes.actions.numbers import NumberColumns
from nodes.actions.orders import EXECUTED, Order, Outcome

if TYPE_CHECKING:
    from gateway.config import NodeConfig

MAX_TRANSACTIONS = 80
"""Transactions in one answer; the answer says when more were left out (ask again with a
shorter window)."""
ANSWER_BYTES = 12_000
"""An answer's JSON stays below this, so that its receipt (with the outcome, sealing and
framing) stays within the broker's 16 KiB bound: later transactions are left out first,
then long field values are cut."""
FIELD_CHARS = 256
TRANSACTIONS_FIELD = "transactions"


class InquiryConfigError(ValueError):
    """The node's inquiry configuration names a field or column it cannot answer from."""


def answer_columns(config: NodeConfig) -> tuple[str, str, dict[str, str]]:
    """(table, identifier column, answer field -> column) as configured for this node."""
    if config.role == "bank":
        mapped = asdict(bank_columns(config.adapter_table, config.adapter_columns))
    elif config.role == "carrier":
        mapped = asdict(NumberColumns.from_config(config.adapter_columns))
    else:
        raise InquiryConfigError(f"a {config.role} node answers no inquiries")
    key = mapped.pop("identifier")
    fields = {name: column for name, column in mapped.items() if column}
    fields.pop("hold_expires_at_ms", None)
    if config.inquiry_columns and not config.adapter_table:
        raise InquiryConfigError("inquiry_columns: name columns of your own adapter_table")
    fields.update(config.inquiry_columns)
    default_table = "accounts" if config.role == "bank" else "numbers"
    return config.adapter_table or default_table, key, fields


def allowed_fields(config: NodeConfig, role: str, known: set[str]) -> list[str]:
    """The fields `role` may see: configured, or by default every field to the police."""
    if config.inquiry_fields:
        listed = [f.strip() for f in config.inquiry_fields.get(role, "").split(",") if f.strip()]
        unknown = sorted(set(listed) - known)
        if unknown:
            raise InquiryConfigError(f"inquiry_fields: {role}: unknown fields {', '.join(unknown)}")
        return listed
    return sorted(known) if role == "police" else []


def _plain(value: object) -> object:
    return value if isinstance(value, int | str) or value is None else str(value)


def answer_inquiry(session: Session, order: Order, config: NodeConfig, role: str) -> Outcome:
    """The holder's (subscriber's) details and, at a bank, the transactions in the window."""
    if order.window is None:
        return Outcome.rejected("window: an inquiry states its time window")
    if not order.identifier:
        return Outcome.rejected("payload: an inquiry names the account or number")
    try:
        name, key, columns = answer_columns(config)
        known = set(columns) | ({TRANSACTIONS_FIELD} if config.role == "bank" else set())
        wanted = allowed_fields(config, role, known)
    except InquiryConfigError as exc:
        return Outcome.rejected(f"inquiry: this node's configuration: {exc}")
    if not wanted:
        return Outcome.rejected(f"inquiry: this node answers a {role or 'sender'} no fields")
    plain = [f for f in wanted if f != TRANSACTIONS_FIELD]
    table = Table(name, MetaData(), Column(key, String), *(Column(columns[f]) for f in plain))
    query = select(*(table.c[columns[f]] for f in plain)).where(table.c[key] == order.identifier)
    row = (
        session.execute(query).first()
        if plain
        else session.execute(select(table.c[key]).where(table.c[key] == order.identifier)).first()
    )
    if row is None:
        return Outcome.rejected("unknown account" if config.role == "bank" else "unknown number")
    answer: dict[str, object] = {
        "fields": {f: _plain(v) for f, v in zip(plain, row, strict=False)} if plain else {},
        "window": {"from_ms": order.window[0], "until_ms": order.window[1]},
    }
    if TRANSACTIONS_FIELD in wanted:
        try:
            ledger = ledger_for(config)
        except ValueError as exc:
            return Outcome.rejected(f"inquiry: this node's configuration: {exc}")
        found = ledger.between(
            session, order.identifier, order.window[0], order.window[1], MAX_TRANSACTIONS + 1
        )
        answer[TRANSACTIONS_FIELD] = [
            {k: _plain(v) for k, v in t.items()} for t in found[:MAX_TRANSACTIONS]
        ]
        answer["more_transactions"] = len(found) > MAX_TRANSACTIONS
    return Outcome(EXECUTED, "", 0, 0, 0, within_budget(answer))


def within_budget(answer: dict[str, object]) -> dict[str, object]:
    """`answer`, with transactions left out from the end, then values cut, until its JSON
    (as the receipt encodes it) fits ANSWER_BYTES."""

    def size() -> int:
        return len(json.dumps(answer).encode())

    posted = answer.get(TRANSACTIONS_FIELD)
    while isinstance(posted, list) and posted and size() > ANSWER_BYTES:
        posted.pop()
        answer["more_transactions"] = True
    fields = answer.get("fields")
    if size() > ANSWER_BYTES and isinstance(fields, dict):
        for name, value in fields.items():
            if isinstance(value, str):
                fields[name] = value[:FIELD_CHARS]
    return answer
