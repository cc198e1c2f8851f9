"""The default carrier adapter: suspending and restoring numbers in a SQL table.

Like the bank adapter, it works on the built-in `numbers` table or the carrier's own
table (`adapter_table`) with its columns mapped (`adapter_columns`: identifier, status).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Column, MetaData, String, Table, select, update
from sqlalchemy.orm import Session

from gateway.db import NodeBase
from nodes.actions import columns
from nodes.actions.holds import ACTIVE, EXPIRED, RELEASED, HoldRow, active_hold, due_holds
from nodes.actions.orders import EXECUTED, IDENTIFIER_KINDS, Order, Outcome
from nodes.records import sync_attribute

HOUR_MS = 3_600_000
ACTIVE_STATUS, SUSPENDED_STATUS = "active", "suspended"
CARRIER_KINDS = tuple(kind.value for kind in IDENTIFIER_KINDS["carrier"])


@dataclass(frozen=True)
class NumberColumns:
    identifier: str = "number"
    status: str = "status"

    @classmethod
    def from_config(cls, mapping: Mapping[str, str]) -> NumberColumns:
        return columns.from_config(cls, mapping)


BUILTIN_NUMBERS = Table(
    "numbers",
    NodeBase.metadata,
    Column("number", String(32), primary_key=True),
    Column("status", String(16), nullable=False, default=ACTIVE_STATUS),
)


def number_table(name: str, columns: NumberColumns) -> Table:
    if not name:
        return BUILTIN_NUMBERS
    return Table(
        name,
        MetaData(),
        Column(columns.identifier, String, primary_key=True),
        Column(columns.status, String),
    )


class SqlNumberAdapter:
    """SUSPEND_NUMBER, RESTORE_NUMBER and EXTEND on a numbers table."""

    def __init__(self, table: Table, columns: NumberColumns) -> None:
        self.table = table
        self.key = table.c[columns.identifier]
        self.status = table.c[columns.status]

    def _status(self, session: Session, number: str) -> str | None:
        value = session.execute(select(self.status).where(self.key == number)).scalar()
        return None if value is None else str(value)

    def _set_status(self, session: Session, number: str, status: str) -> None:
        session.execute(update(self.table).where(self.key == number).values({self.status: status}))
        sync_attribute(session.connection(), CARRIER_KINDS, number, "status", status)  # the label

    def execute(self, session: Session, order: Order, now_ms: int) -> Outcome:
        if order.action == "SUSPEND_NUMBER":
            return self._suspend(session, order, now_ms)
        if order.action == "EXTEND":
            hold = active_hold(session, order.target_request_id)
            if hold is None:
                return Outcome.rejected("no active suspension for the target request")
            if order.duration_hours <= 0:
                return Outcome.rejected("duration must be at least one hour")
            base = max(hold.expires_at_ms, now_ms)
            hold.expires_at_ms = base + order.duration_hours * HOUR_MS
            return Outcome(EXECUTED, "", 0, now_ms, hold.expires_at_ms)
        if order.action == "RESTORE_NUMBER":
            return self._end(session, order.target_request_id, RELEASED, now_ms)
        return Outcome.rejected(f"a carrier does not execute {order.action}")

    def _suspend(self, session: Session, order: Order, now_ms: int) -> Outcome:
        status = self._status(session, order.identifier)
        if status is None:
            return Outcome.rejected("unknown number")
        if status == SUSPENDED_STATUS:
            return Outcome.rejected("number is already suspended")
        expires = now_ms + order.duration_hours * HOUR_MS if order.duration_hours > 0 else 0
        self._set_status(session, order.identifier, SUSPENDED_STATUS)
        session.add(
            HoldRow(
                request_id=order.request_id,
                action=order.action,
                identifier=order.identifier,
                amount_minor=0,
                created_at_ms=now_ms,
                expires_at_ms=expires,
                state=ACTIVE,
                freezes=1,
            )
        )
        return Outcome(EXECUTED, "", 0, now_ms, expires)

    def _end(self, session: Session, request_id: str, state: str, now_ms: int) -> Outcome:
        hold = active_hold(session, request_id)
        if hold is None:
            return Outcome.rejected("no active suspension for the target request")
        hold.state, hold.ended_at_ms = state, now_ms
        self._set_status(session, hold.identifier, ACTIVE_STATUS)
        return Outcome(EXECUTED, "", 0, now_ms, 0)

    def release_expired(self, session: Session, now_ms: int) -> int:
        expired = due_holds(session, now_ms)
        for hold in expired:
            self._end(session, hold.request_id, EXPIRED, now_ms)
        return len(expired)
