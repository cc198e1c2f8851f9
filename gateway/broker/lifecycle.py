"""Each action request's lifecycle at the broker, and the deadlines it watches.

requested → delivered → executed | rejected | partial → extended → released | expired.
The broker learns outcomes from the recipient's signed ACTION_RECEIPT header (the
payload is sealed to the police), so it can flag an unanswered stop-payment and mark
a hold expired without reading anything it should not. Every transition is an event
and an audit entry, written in one transaction.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.audit.log import Append, AuditLog
from gateway.broker.models import DeliveryRow, EventRow, MessageRow
from gateway.kinds import ACTIONS, Kind
from gateway.v1 import gateway_pb2 as pb

log = logging.getLogger(__name__)

HOLDING = ("executed", "partial", "extended")
"""States in which the recipient holds something that can expire."""
FOLLOW_UPS = {Kind.EXTEND: "extended", Kind.RELEASE: "released", Kind.RESTORE_NUMBER: "released"}
"""Follow-up requests that, once executed, change the state of the request they name."""


def answer_deadline_ms(kind: str, created_at_ms: int, stop_payment_s: int, other_s: int) -> int:
    if Kind(kind) not in ACTIONS:
        return 0
    seconds = stop_payment_s if kind == Kind.STOP_PAYMENT else other_s
    return created_at_ms + seconds * 1000


def _transition(
    append: Append,
    row: MessageRow,
    state: str,
    at_ms: int,
    detail: str,
) -> None:
    previous = row.state
    row.state = state
    append.row(EventRow, message_id=row.message_id, state=state, at_ms=at_ms, detail=detail)
    append(
        {
            "type": "lifecycle",
            "at_ms": at_ms,
            "message_id": row.message_id,
            "kind": row.kind,
            "case_ref": row.case_ref,
            "from": previous,
            "state": state,
            "detail": detail,
        }
    )


def apply_receipt(
    session: Session, append: Append, request_id: str, receipt: pb.Header, at_ms: int
) -> None:
    """Stage what a recipient's receipt says about the request it answers."""
    outcome = receipt.outcome.lower() or "answered"
    terms = receipt.terms
    request = session.get(MessageRow, request_id)
    if request is None:
        return
    _transition(append, request, outcome, at_ms, receipt.message_id)
    if outcome in ("executed", "partial"):
        request.hold_expires_at_ms = terms.hold_expires_at_ms
    kind = Kind(request.kind)
    if kind in FOLLOW_UPS and outcome == "executed":
        header = pb.Header.FromString(request.header)
        target = session.get(MessageRow, header.terms.target_request_id)
        if target is not None and target.state in HOLDING:
            _transition(append, target, FOLLOW_UPS[kind], at_ms, request_id)
            target.hold_expires_at_ms = terms.hold_expires_at_ms if kind == Kind.EXTEND else 0


def close_delivery(
    session: Session, append: Append, row: DeliveryRow, state: str, detail: str, at_ms: int
) -> None:
    """Close a pending outbox row and audit the delivery event, in the caller's commit."""
    if row.state != "pending":
        return
    row.state = state
    row.attempts += 1
    row.delivered_at_ms = at_ms if state == "delivered" else 0
    row.last_error = "" if state == "delivered" else detail[:500]
    record_delivery(append, row.message_id, row.recipient, state, detail, at_ms)
    message = session.get(MessageRow, row.message_id)
    if message is not None and message.state == "requested":
        message.state = state


def record_delivery(
    append: Append,
    message_id: str,
    recipient: str,
    state: str,
    detail: str,
    at_ms: int,
) -> int:
    """A delivery event: the lifecycle row and its audit entry, in the caller's commit."""
    append.row(
        EventRow, message_id=message_id, state=f"{state}:{recipient}", at_ms=at_ms, detail=detail
    )
    return append(
        {
            "type": "delivery",
            "at_ms": at_ms,
            "message_id": message_id,
            "recipient": recipient,
            "state": state,
            "detail": detail[:500],
        }
    )


def check_deadlines(audit: AuditLog, now_ms: int) -> tuple[int, int]:
    """Flag unanswered requests past their deadline; expire holds past theirs.

    Returns (newly overdue, newly expired). Each is flagged and audited once, also
    with several broker processes watching one database: a row is claimed by locking it
    in the transaction that flags it, rows another watcher has locked are skipped
    (`SKIP LOCKED`), and once that one commits the row no longer matches. A watcher that
    dies mid-check holds nothing: its transaction, and so its claim, ends with it.
    """

    def flag(session: Session, append: Append) -> tuple[int, int]:
        overdue = expired = 0
        late = session.scalars(
            select(MessageRow)
            .where(MessageRow.answer_due_at_ms > 0)
            .where(MessageRow.answer_due_at_ms <= now_ms)
            .where(MessageRow.overdue == 0)
            .where(MessageRow.state.in_(("requested", "delivered")))
            .with_for_update(skip_locked=True)
        ).all()
        for row in late:
            row.overdue = 1
            append.row(
                EventRow, message_id=row.message_id, state="overdue", at_ms=now_ms, detail=""
            )
            append(
                {
                    "type": "deadline",
                    "at_ms": now_ms,
                    "message_id": row.message_id,
                    "kind": row.kind,
                    "case_ref": row.case_ref,
                    "state": "overdue",
                    "detail": f"no answer by {row.answer_due_at_ms}",
                }
            )
            overdue += 1
        ended = session.scalars(
            select(MessageRow)
            .where(MessageRow.hold_expires_at_ms > 0)
            .where(MessageRow.hold_expires_at_ms <= now_ms)
            .where(MessageRow.state.in_(HOLDING))
            .with_for_update(skip_locked=True)
        ).all()
        for row in ended:
            _transition(append, row, "expired", now_ms, "hold reached its expiry")
            expired += 1
        return overdue, expired

    counts: tuple[int, int] = audit.run(flag)
    return counts


class DeadlineWatcher:
    """A background thread running `check_deadlines` every few seconds."""

    def __init__(
        self, audit: AuditLog, clock_ms: Callable[[], int], interval_s: float = 5.0
    ) -> None:
        self.audit = audit
        self.clock_ms = clock_ms
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="deadlines", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                overdue, expired = check_deadlines(self.audit, self.clock_ms())
            except Exception:  # keep watching; the error is in the log
                log.exception("deadline check failed")
                continue
            if overdue or expired:
                log.info("deadlines: %d overdue, %d expired", overdue, expired)
