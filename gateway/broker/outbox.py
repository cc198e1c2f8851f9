"""The delivery worker: drains the outbox until every recipient has answered.

Rows stay in the outbox until the recipient acknowledged them, so a broker that is
killed between acknowledgement and delivery delivers on restart; a node that is down
gets the message when it comes back. Recipients are idempotent by message id, so the
at-least-once delivery here has exactly one effect.

Several broker processes may drain one outbox (PostgreSQL): each claims due rows for a
lease (`FOR UPDATE SKIP LOCKED`, so two never claim the same row), and a row whose
claimant died is claimed again once its lease ends. A lease is longer than one delivery
attempt, and a row whose lease would run out before its attempt could finish is let go
instead of attempted, so two brokers deliver the same row at once only if one of them
stalls for longer than the lease; the recipient's idempotence covers even that.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from dataclasses import dataclass

from sqlalchemy import select, update
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
LEASE_S = 60.0
"""How long a claim on an outbox row holds: longer than any delivery attempt."""


def backoff_ms(attempts: int) -> int:
    """Exponential backoff, 0.5 s doubling up to 30 s."""
    return int(min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** max(0, attempts - 1)))


def process_name() -> str:
    """Names this broker process in the leases it holds: host, pid and a random tag
    (a pid can be reused by a later process on the same host)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Claim:
    """An outbox row this process claimed, until `until_ms`."""

    delivery_id: int
    message_id: str
    recipient: str
    traceparent: str
    until_ms: int


class OutboxWorker:
    """A background thread that claims due outbox rows and delivers them."""

    def __init__(
        self,
        broker: Broker,
        *,
        batch: int = 50,
        idle_s: float = 0.5,
        lease_s: float = LEASE_S,
        attempt_s: float = 10.0,
    ) -> None:
        if lease_s <= attempt_s:
            raise ValueError(
                f"outbox lease ({lease_s} s) must be longer than one delivery attempt "
                f"({attempt_s} s)"
            )
        self.broker = broker
        self.batch = batch
        self.idle_s = idle_s
        self.lease_ms = int(lease_s * 1000)
        self.attempt_ms = int(attempt_s * 1000)
        self.owner = process_name()
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
        """Claim due deliveries and attempt each once; returns how many were attempted."""
        claims = self.claim(self.broker.clock_ms())
        attempted = 0
        for index, claim in enumerate(claims):
            if self.broker.clock_ms() + self.attempt_ms >= claim.until_ms:
                self.release(claims[index:])
                break
            with span(
                "outbox.deliver",
                {"gateway.message_id": claim.message_id, "gateway.recipient": claim.recipient},
                context=context_from(claim.traceparent),
            ):
                self._attempt(claim.delivery_id, claim.message_id, claim.recipient)
            attempted += 1
        return attempted

    def claim(self, now: int) -> list[Claim]:
        """Lease up to `batch` due rows no other live process holds, in one transaction.

        Rows another transaction is claiming are skipped, not waited for (PostgreSQL's
        `SKIP LOCKED`; SQLite, one broker process, has no row locks and ignores it).
        """
        until = now + self.lease_ms
        with self.broker.audit.session() as session:
            rows = session.scalars(
                select(DeliveryRow)
                .where(DeliveryRow.state == "pending")
                .where(DeliveryRow.next_attempt_at_ms <= now)
                .where(DeliveryRow.lease_until_ms <= now)
                .order_by(DeliveryRow.next_attempt_at_ms, DeliveryRow.id)
                .limit(self.batch)
                .with_for_update(skip_locked=True)
            ).all()
            claims = []
            for row in rows:
                row.lease_owner, row.lease_until_ms = self.owner, until
                claims.append(Claim(row.id, row.message_id, row.recipient, row.traceparent, until))
            session.commit()
        return claims

    def release_every_claim(self) -> None:
        """Let go of every claim, whoever holds it: only for the sole broker process of a
        database (SQLite), whose earlier claims all belong to processes that ended."""
        with self.broker.audit.session() as session:
            session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.state == "pending")
                .where(DeliveryRow.lease_until_ms > 0)
                .values(lease_until_ms=0)
            )
            session.commit()

    def release(self, claims: list[Claim]) -> None:
        """Let go of claims not attempted, so that any broker may take them at once."""
        if not claims:
            return
        with self.broker.audit.session() as session:
            session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id.in_([c.delivery_id for c in claims]))
                .where(DeliveryRow.lease_owner == self.owner)
                .values(lease_until_ms=0)
            )
            session.commit()

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
            if row is None or row.state != "pending" or row.lease_owner != self.owner:
                return  # delivered meanwhile, or taken over by another broker
            row.attempts += 1
            wait_ms = backoff_ms(row.attempts)
            row.next_attempt_at_ms = self.broker.clock_ms() + wait_ms
            row.lease_until_ms = 0
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
