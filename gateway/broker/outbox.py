"""The delivery worker: drains the outbox until every recipient has answered.

Rows stay in the outbox until the recipient acknowledged them, so a broker that is
killed between acknowledgement and delivery delivers on restart; a node that is down
gets the message when it comes back. Recipients are idempotent by message id, so the
at-least-once delivery here has exactly one effect.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.audit.log import Append
from gateway.broker.core import Broker, BrokerRefusal
from gateway.broker.delivery import DeliveryError
from gateway.broker.lifecycle import close_delivery
from gateway.broker.models import DeliveryRow, MessageRow
from gateway.broker.receipts import receipt_problem, stage_receipt_effects
from gateway.envelope.verify import Rejected
from gateway.faults import crash_point
from gateway.kinds import Kind
from gateway.logs import event
from gateway.policy import PolicyDecision
from gateway.telemetry import context_from, span
from gateway.v1 import gateway_pb2 as pb

log = logging.getLogger(__name__)

BACKOFF_BASE_MS = 500
BACKOFF_MAX_MS = 30_000


def backoff_ms(attempts: int) -> int:
    """Exponential backoff, 0.5 s doubling up to 30 s."""
    return int(min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** max(0, attempts - 1)))


class OutboxWorker:
    """A background thread that delivers due outbox rows."""

    def __init__(self, broker: Broker, *, batch: int = 50, idle_s: float = 0.5) -> None:
        self.broker = broker
        self.batch = batch
        self.idle_s = idle_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.broker.outbox_wakeup.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.drain_once()
            except Exception:  # keep delivering; the error is in the log, not fatal
                log.exception("outbox pass failed")
                worked = 0
            if not worked:
                self.broker.outbox_wakeup.wait(self.idle_s)
                self.broker.outbox_wakeup.clear()

    def depth(self) -> int:
        with self.broker.audit.session() as session:
            return len(
                session.scalars(select(DeliveryRow.id).where(DeliveryRow.state == "pending")).all()
            )

    def drain_once(self) -> int:
        """Attempt every due delivery once; returns how many were attempted."""
        now = self.broker.clock_ms()
        with self.broker.audit.session() as session:
            due = session.execute(
                select(
                    DeliveryRow.id,
                    DeliveryRow.message_id,
                    DeliveryRow.recipient,
                    DeliveryRow.traceparent,
                )
                .where(DeliveryRow.state == "pending")
                .where(DeliveryRow.next_attempt_at_ms <= now)
                .order_by(DeliveryRow.next_attempt_at_ms, DeliveryRow.id)
                .limit(self.batch)
            ).all()
        for delivery_id, message_id, recipient, traceparent in due:
            with span(
                "outbox.deliver",
                {"gateway.message_id": str(message_id), "gateway.recipient": str(recipient)},
                context=context_from(traceparent),
            ):
                self._attempt(int(delivery_id), str(message_id), str(recipient))
        return len(due)

    def _attempt(self, delivery_id: int, message_id: str, recipient: str) -> None:
        broker = self.broker
        with broker.audit.session() as session:
            message = session.get(MessageRow, message_id)
            if message is None:
                return
            envelope = pb.Envelope(
                header=message.header, payload=message.payload, signature=message.signature
            )
            expires_at = message.expires_at_ms
            kind = message.kind
        now = broker.clock_ms()
        if expires_at <= now:
            self._finish(delivery_id, message_id, recipient, "expired", "expired before delivery")
            return
        member = broker.directory().get(recipient)
        if member is None or not member.active:
            self._finish(delivery_id, message_id, recipient, "failed", "recipient left")
            return
        try:
            reply = broker.dialer.deliver(member, envelope)
        except DeliveryError as exc:
            if exc.permanent:
                self._finish(delivery_id, message_id, recipient, "failed", str(exc))
            else:
                self._retry(delivery_id, str(exc))
            return
        if not reply.accepted:
            self._finish(delivery_id, message_id, recipient, "refused", reply.reason)
            return
        if reply.HasField("response"):
            self._take_receipt(delivery_id, message_id, recipient, reply.response)
            return
        if kind == Kind.ACTION_RECEIPT:
            crash_point("receipt.forwarded")
        self._finish(delivery_id, message_id, recipient, "delivered", "")

    def _take_receipt(
        self, delivery_id: int, message_id: str, recipient: str, answer: pb.Envelope
    ) -> None:
        """Record a recipient's receipt and route it back to the requester.

        The receipt, the request's new state and this outbox row's close commit together
        (`receipts.stage_receipt_effects`); a receipt the broker may not accept closes
        the row with the reason and goes nowhere.
        """
        broker = self.broker
        crash_point("receipt.received")
        verdict = broker.verifier.verify(answer, peer_node_id=recipient)
        if isinstance(verdict, Rejected):
            self._finish(
                delivery_id, message_id, recipient, "delivered", f"receipt refused: {verdict}"
            )
            return
        header = verdict.header
        if header.reply_to != message_id or Kind(header.kind) != Kind.ACTION_RECEIPT:
            refusal = "receipt refused: not an ACTION_RECEIPT for this request"
            self._finish(delivery_id, message_id, recipient, "delivered", refusal)
            return
        decision = broker._decide(verdict, answer)
        now = broker.clock_ms()

        def effects(session: Session, append: Append, final: PolicyDecision) -> None:
            if final.allowed:
                stage_receipt_effects(session, append, header, header.message_id, now)
            else:
                row = session.get(DeliveryRow, delivery_id)
                if row is not None:
                    refusal = f"receipt refused: {final.reason}"
                    close_delivery(session, append, row, "delivered", refusal, now)
            crash_point("receipt.staged")

        try:
            routed = broker._record(
                answer,
                verdict,
                decision,
                durable=True,
                gate=lambda session: receipt_problem(session, header, submitted=False),
                then=effects,
            )
        except BrokerRefusal as exc:
            refusal = f"receipt refused: {exc.reason}"
            self._finish(delivery_id, message_id, recipient, "delivered", refusal)
            return
        if routed.resent:  # recorded before, by another broker process or by Submit
            self._finish(delivery_id, message_id, recipient, "delivered", header.message_id)
        else:  # closed in the receipt's own transaction
            detail = header.message_id if routed.decision.allowed else "receipt refused"
            event(
                log,
                "delivery",
                message_id=message_id,
                recipient=recipient,
                state="delivered",
                detail=detail,
            )
        crash_point("receipt.committed")
        broker.outbox_wakeup.set()

    def _retry(self, delivery_id: int, error: str) -> None:
        with self.broker.audit.session() as session:
            row = session.get(DeliveryRow, delivery_id)
            if row is None:
                return
            row.attempts += 1
            wait_ms = backoff_ms(row.attempts)
            row.next_attempt_at_ms = self.broker.clock_ms() + wait_ms
            row.last_error = error[:500]
            session.commit()
            message_id, recipient, attempts = row.message_id, row.recipient, row.attempts
        event(
            log,
            "retry",
            message_id=message_id,
            recipient=recipient,
            attempt=attempts,
            next_in_ms=wait_ms,
            error=error[:500],
        )

    def _finish(
        self, delivery_id: int, message_id: str, recipient: str, state: str, detail: str
    ) -> None:
        """Close an outbox row and audit the delivery event in one transaction."""
        broker = self.broker
        now = broker.clock_ms()

        def close_row(session: Session, append: Append) -> None:
            row = session.get(DeliveryRow, delivery_id)
            if row is not None:
                close_delivery(session, append, row, state, detail, now)

        broker.audit.run(close_row)
        event(
            log, "delivery", message_id=message_id, recipient=recipient, state=state, detail=detail
        )
