"""The gateway's own record of every hold or suspension it placed, by request id.

Kept beside (not inside) the agency's account or number table, so that an integration
team only maps a few columns of its own table, and so that extend, release and expiry
can find exactly what one request did.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from gateway.db import NodeBase

ACTIVE, RELEASED, EXPIRED, RETURNED = "active", "released", "expired", "returned"


class HoldRow(NodeBase):
    __tablename__ = "gateway_holds"

    request_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    action: Mapped[str] = mapped_column(String(32))
    identifier: Mapped[str] = mapped_column(String(64), index=True)
    """The agency's own account or number: this table lives in the agency's database."""
    amount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    expires_at_ms: Mapped[int] = mapped_column(BigInteger, index=True, default=0)
    """0: no expiry."""
    state: Mapped[str] = mapped_column(String(16), index=True, default=ACTIVE)
    ended_at_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    freezes: Mapped[int] = mapped_column(Integer, default=0)
    """1 if this hold froze the account or suspended the number (not only an amount)."""


def active_hold(session: Session, request_id: str) -> HoldRow | None:
    hold = session.get(HoldRow, request_id)
    return hold if hold is not None and hold.state == ACTIVE else None


def other_active(session: Session, identifier: str, request_id: str) -> list[HoldRow]:
    return list(
        session.scalars(
            select(HoldRow)
            .where(HoldRow.identifier == identifier)
            .where(HoldRow.state == ACTIVE)
            .where(HoldRow.request_id != request_id)
        ).all()
    )


def stop_payments_on(session: Session, identifier: str) -> int:
    """Stop-payments this bank has placed on the account, whatever became of them."""
    found = session.scalar(
        select(func.count())
        .select_from(HoldRow)
        .where(HoldRow.identifier == identifier)
        .where(HoldRow.action == "STOP_PAYMENT")
    )
    return int(found or 0)


def due_holds(session: Session, now_ms: int) -> list[HoldRow]:
    return list(
        session.scalars(
            select(HoldRow)
            .where(HoldRow.state == ACTIVE)
            .where(HoldRow.expires_at_ms > 0)
            .where(HoldRow.expires_at_ms <= now_ms)
        ).all()
    )
