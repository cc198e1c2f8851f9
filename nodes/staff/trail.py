"""The node's own staff audit trail: who logged in, drafted, approved or was refused.

Each event is chained to the one before by SHA-256 over its fields and the previous
event's hash, so an edited, inserted or deleted event (anywhere but at the very end) is
found by `verify_trail`. Appends take a lock, so event numbers stay consecutive; and
`prev_hash` is unique, so even a writer that skipped the lock could not fork the chain.

Detail text is free but must never hold an identifier (a phone, account, card or ID
number); draft ids, request ids and case references are fine.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import BigInteger, Engine, Integer, String, Text, false, select, text, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from gateway.db import NodeBase
from gateway.envelope.build import now_ms

GENESIS = "0" * 64
"""The `prev_hash` of the first event."""

DETAIL_LIMIT = 500


class StaffEventRow(NodeBase):
    __tablename__ = "staff_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at_ms: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    event: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="")
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    entry_hash: Mapped[str] = mapped_column(String(64))


@dataclass(frozen=True)
class StaffEvent:
    """One event as the console and CLI show it."""

    id: int
    at_ms: int
    user_id: str
    event: str
    outcome: str
    detail: str


def entry_hash(
    id: int, at_ms: int, user_id: str, event: str, outcome: str, detail: str, prev_hash: str
) -> str:
    """SHA-256 (hex) over the event's fields as canonical JSON, chained to `prev_hash`."""
    fields = [id, at_ms, user_id, event, outcome, detail, prev_hash]
    encoded = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()


def _take_append_lock(session: Session) -> None:
    """Hold, until the transaction ends, the lock that makes appends one at a time:
    PostgreSQL's advisory lock named after this table and schema; elsewhere (SQLite) the
    database's write lock, which an UPDATE takes even when it matches no row."""
    if session.get_bind().dialect.name == "postgresql":
        schema = session.scalar(text("SELECT current_schema()")) or ""
        digest = hashlib.sha256(f"gateway-staff-trail:{schema}".encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    else:
        session.execute(update(StaffEventRow).where(false()).values(id=StaffEventRow.id))


def _append(session: Session, user_id: str, event: str, outcome: str, detail: str) -> None:
    _take_append_lock(session)
    last = session.execute(
        select(StaffEventRow.id, StaffEventRow.entry_hash)
        .order_by(StaffEventRow.id.desc())
        .limit(1)
    ).first()
    number, prev = (last[0] + 1, last[1]) if last is not None else (1, GENESIS)
    at = now_ms()
    session.add(
        StaffEventRow(
            id=number,
            at_ms=at,
            user_id=user_id,
            event=event,
            outcome=outcome,
            detail=detail,
            prev_hash=prev,
            entry_hash=entry_hash(number, at, user_id, event, outcome, detail, prev),
        )
    )
    session.flush()


def record(
    where: Session | Engine, user_id: str, event: str, outcome: str, detail: str = ""
) -> None:
    """Append one event. Given a session, it joins that transaction (so the event and
    the caller's change are kept or undone together); given an engine, it commits.

    Appends wait for each other, so keep the caller's transaction short after this call
    and make no remote call in it.
    """
    detail = detail[:DETAIL_LIMIT]
    if isinstance(where, Session):
        _append(where, user_id, event, outcome, detail)
        return
    with Session(where) as session, session.begin():
        _append(session, user_id, event, outcome, detail)


def verify_trail(engine: Engine) -> list[str]:
    """Every problem found in the chain, in order; empty when it is intact."""
    problems: list[str] = []
    expected_id, prev = 1, GENESIS
    with Session(engine) as session:
        for row in session.scalars(select(StaffEventRow).order_by(StaffEventRow.id)):
            if row.id != expected_id:
                problems.append(f"event {expected_id} to {row.id - 1} missing")
            if row.prev_hash != prev:
                problems.append(f"event {row.id}: does not follow the event before it")
            again = entry_hash(
                row.id, row.at_ms, row.user_id, row.event, row.outcome, row.detail, row.prev_hash
            )
            if again != row.entry_hash:
                problems.append(f"event {row.id}: content does not match its hash")
            expected_id, prev = row.id + 1, row.entry_hash
    return problems


def recent(engine: Engine, limit: int = 100, user_id: str | None = None) -> list[StaffEvent]:
    """The latest `limit` events, newest first, optionally of one user only."""
    query = select(StaffEventRow).order_by(StaffEventRow.id.desc()).limit(limit)
    if user_id is not None:
        query = query.where(StaffEventRow.user_id == user_id)
    with Session(engine) as session:
        return [
            StaffEvent(r.id, r.at_ms, r.user_id, r.event, r.outcome, r.detail)
            for r in session.scalars(query)
        ]
