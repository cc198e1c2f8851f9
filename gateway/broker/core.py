"""What the broker does with one envelope: verify, decide, audit, then route.

A reader following a message moves down this file: `submit` verifies the envelope,
asks the policy engine, writes the decision to the audit log in the same transaction
that stores the message (so an allowed message is audited before it is delivered, and
a replayed id is refused by the primary key), then either delivers at once (queries)
or leaves the message in the outbox for the delivery worker (actions, receipts).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NoReturn

import grpc
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.audit.log import Append, AuditLog
from gateway.broker.append_budget import AppendBudget
from gateway.broker.delivery import DeliveryError, NodeDialer
from gateway.broker.lifecycle import answer_deadline_ms, record_delivery
from gateway.broker.models import DeliveryRow, EventRow, MessageRow
from gateway.broker.quotas import QuotaCounter
from gateway.broker.receipts import receipt_problem, stage_receipt_effects
from gateway.broker.slots import RecipientSlots
from gateway.envelope.build import now_ms
from gateway.envelope.verify import EnvelopeVerifier, Rejected, Verified
from gateway.kinds import ANSWER_TO, ANSWERS, CALLS, DURABLE, INTERACTIVE, Kind
from gateway.logs import event
from gateway.pki.directory import Directory, Member
from gateway.policy import Party, PolicyDecision, PolicyEngine, PolicyRequest
from gateway.policy.bundle import listing_problem
from gateway.telemetry import current_traceparent, instruments, span
from gateway.v1 import gateway_pb2 as pb

log = logging.getLogger(__name__)


class BrokerRefusal(Exception):
    """A refusal to answer with a gRPC status; the text names the check."""

    def __init__(self, status: grpc.StatusCode, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Routed:
    """The outcome of one accepted submission."""

    message_id: str
    decision: PolicyDecision
    audit_index: int
    kind: str = ""
    responses: list[pb.Envelope] = field(default_factory=list)
    undelivered: list[str] = field(default_factory=list)
    resent: bool = False
    """An identical copy of a durable message stored before: this is its first outcome."""
    reason: str = ""
    """Why it was denied, as first decided (empty when allowed)."""
    refusals: dict[str, str] = field(default_factory=dict)
    """Why an undelivered recipient gave no answer: its refusal or the delivery failure."""


def header_entry(header: pb.Header, header_bytes: bytes, payload: bytes) -> dict[str, object]:
    """The metadata of a message that may go into the audit log: never the payload."""
    entry: dict[str, object] = {
        "message_id": header.message_id,
        "sender": header.sender,
        "recipients": list(header.recipients),
        "kind": header.kind,
        "case_ref": header.case_ref,
        "purpose": header.purpose,
        "legal_basis": header.legal_basis,
        "reply_to": header.reply_to,
        "created_at_ms": header.created_at_ms,
        "expires_at_ms": header.expires_at_ms,
        "batch_size": header.batch_size,
        "payload_type": header.payload_type,
        "payload_sha256": header.payload_sha256.hex(),
        "payload_bytes": len(payload),
        "header_sha256": hashlib.sha256(header_bytes).hexdigest(),
    }
    if header.HasField("terms"):
        t = header.terms
        entry["terms"] = {
            "action": t.action,
            "amount_minor": t.amount_minor,
            "whole_balance": t.whole_balance,
            "duration_hours": t.duration_hours,
            "currency": t.currency,
            "issuing_officer": t.issuing_officer,
            "approving_officer": t.approving_officer,
            "target_request_id": t.target_request_id,
        }
    return entry


def policy_context(
    header: pb.Header,
    rate: int,
    *,
    actions_last_hour: int = 0,
    bytes_last_hour: int = 0,
    payload_bytes: int = 0,
) -> dict[str, str | int | bool]:
    """The facts a policy decides on. The broker passes every count (`Broker._decide_all`);
    a node deciding its inbound messages passes none, as it keeps no quotas."""
    terms = header.terms
    return {
        "purpose": header.purpose,
        "legal_basis": header.legal_basis,
        "case_ref": header.case_ref,
        "batch_size": header.batch_size,
        "amount_minor": terms.amount_minor,
        "whole_balance": terms.whole_balance,
        "duration_hours": terms.duration_hours,
        "reply_to": header.reply_to,
        "payload_bytes": payload_bytes,
        "sender_kind_last_hour": rate,
        "sender_actions_last_hour": actions_last_hour,
        "sender_bytes_last_hour": bytes_last_hour,
        "account_stop_payments": 0,
        "issuing_officer": terms.issuing_officer,
        "approving_officer": terms.approving_officer,
    }


def refused_by_broker(decision: PolicyDecision, problem: str) -> PolicyDecision:
    """A denial by one of the broker's own checks of its records, with the reason."""
    return PolicyDecision(
        allowed=False,
        policy_ids=(),
        errors=(problem,),
        policy_set_hash=decision.policy_set_hash,
        subject=decision.subject,
    )


def party(member: Member) -> Party:
    return Party(node_id=member.node_id, role=member.role, agency=member.agency)


class Broker:
    """The broker's logic, independent of gRPC so that it reads top to bottom."""

    def __init__(
        self,
        *,
        node_id: str,
        directory: Callable[[], Directory],
        verifier: EnvelopeVerifier,
        policy: PolicyEngine,
        audit: AuditLog,
        dialer: NodeDialer,
        rates: QuotaCounter | None = None,
        clock_ms: Callable[[], int] = now_ms,
        stop_payment_answer_s: int = 15 * 60,
        action_answer_s: int = 24 * 3600,
        interactive_per_recipient: int = 4,
        audit_appends_per_minute: int = 300,
    ) -> None:
        self.node_id = node_id
        self.directory = directory
        self.verifier = verifier
        self.policy = policy
        self.audit = audit
        self.dialer = dialer
        self.rates = rates or QuotaCounter.beside(audit.engine, clock_ms=clock_ms)
        self.clock_ms = clock_ms
        self.stop_payment_answer_s = stop_payment_answer_s
        self.action_answer_s = action_answer_s
        self.outbox_wakeup = threading.Event()
        self._fanout = ThreadPoolExecutor(max_workers=16, thread_name_prefix="fanout")
        self._slots = RecipientSlots(interactive_per_recipient)
        self.append_budget = AppendBudget(audit_appends_per_minute)

    # -- submit ------------------------------------------------------------------------

    def submit(self, envelope: pb.Envelope, peer_node_id: str | None) -> Routed:
        started = time.perf_counter()
        kind_label = "?"
        try:
            routed = self._submit(envelope, peer_node_id)
            kind_label = routed.kind
            return routed
        finally:
            instruments().submit_latency.record(
                (time.perf_counter() - started) * 1000, {"gateway.kind": kind_label}
            )

    def _submit(self, envelope: pb.Envelope, peer_node_id: str | None) -> Routed:
        verdict = self.verifier.verify(envelope, peer_node_id=peer_node_id)
        if isinstance(verdict, Rejected):
            self._audit_rejection(envelope, verdict, peer_node_id)
            raise BrokerRefusal(verdict.status, str(verdict))
        header = verdict.header
        kind = Kind(header.kind)
        if kind in ANSWERS:
            self._refuse_routing(
                envelope, peer_node_id, f"{kind} travels only as a direct answer, not by Submit"
            )
        if kind in CALLS:
            self._refuse_routing(
                envelope, peer_node_id, f"{kind} is a call to the broker (ReadAudit), not a message"
            )
        decision = self._decide(verdict, envelope)
        if kind == Kind.ACTION_RECEIPT:
            routed = self._record_receipt(envelope, verdict, decision)
        else:
            routed = self._record(envelope, verdict, decision, durable=kind in DURABLE)
        if not routed.decision.allowed:
            raise BrokerRefusal(grpc.StatusCode.PERMISSION_DENIED, f"policy: {routed.reason}")
        if routed.resent:
            return routed
        if kind in INTERACTIVE:
            self._deliver_now(envelope, verdict, routed)
        else:
            self.outbox_wakeup.set()
        return routed

    def _refuse_routing(
        self, envelope: pb.Envelope, peer_node_id: str | None, why: str
    ) -> NoReturn:
        """Refuse a kind that is never routed by Submit; the refusal is audited."""
        reason = f"routing: {why}"
        self._audit_rejection(
            envelope, Rejected("routing", reason, grpc.StatusCode.INVALID_ARGUMENT), peer_node_id
        )
        raise BrokerRefusal(grpc.StatusCode.INVALID_ARGUMENT, reason)

    def _record_receipt(
        self, envelope: pb.Envelope, verdict: Verified, decision: PolicyDecision
    ) -> Routed:
        """A receipt sent by Submit: accepted only for a request awaiting it (`receipts`)."""
        header = verdict.header
        now = self.clock_ms()

        def effects(session: Session, append: Append, final: PolicyDecision) -> None:
            if final.allowed:
                stage_receipt_effects(session, append, header, header.message_id, now)

        return self._record(
            envelope,
            verdict,
            decision,
            durable=True,
            gate=lambda session: receipt_problem(session, header, submitted=True),
            then=effects,
        )

    def _decide(self, verdict: Verified, envelope: pb.Envelope) -> PolicyDecision:
        """Allowed only if the policy allows the message to every one of its recipients."""
        header = verdict.header
        with span(
            "policy.decide", {"gateway.kind": header.kind, "gateway.sender": header.sender}
        ) as current:
            decision = self._decide_all(verdict, envelope)
            current.set_attribute("gateway.decision", "ALLOW" if decision.allowed else "DENY")
            current.set_attribute("gateway.policy_ids", list(decision.policy_ids))
        outcome = "ALLOW" if decision.allowed else "DENY"
        metrics = instruments()
        metrics.messages.add(1, {"gateway.kind": header.kind, "gateway.decision": outcome})
        if not decision.allowed:
            metrics.denials.add(1, {"gateway.kind": header.kind})
        return decision

    def _decide_all(self, verdict: Verified, envelope: pb.Envelope) -> PolicyDecision:
        """Count the message in its sender's quotas, then decide it for each recipient."""
        header = verdict.header
        size = len(envelope.header) + len(envelope.payload) + len(envelope.signature)
        usage = self.rates.hit(header.sender, header.kind, size)
        context = policy_context(
            header,
            usage.kind_messages,
            actions_last_hour=usage.action_messages,
            bytes_last_hour=usage.bytes,
            payload_bytes=len(envelope.payload),
        )
        directory = self.directory()
        stale = listing_problem(self.policy.policy_set_hash, directory.policy_bundle)
        if stale is not None:
            return PolicyDecision(
                allowed=False,
                policy_ids=(),
                errors=(stale,),
                policy_set_hash=self.policy.policy_set_hash,
                subject=f"{header.kind} from {header.sender}",
            )
        decisions: list[PolicyDecision] = []
        for name in header.recipients:
            recipient = directory.get(name)
            assert recipient is not None  # the verifier checked every recipient
            decisions.append(
                self.policy.decide_together(
                    PolicyRequest(
                        sender=party(verdict.sender),
                        recipient=party(recipient),
                        kind=header.kind,
                        context=context,
                    )
                )
            )
        denied = [d for d in decisions if not d.allowed]
        return denied[0] if denied else decisions[0]

    def _record(
        self,
        envelope: pb.Envelope,
        verdict: Verified,
        decision: PolicyDecision,
        *,
        durable: bool,
        gate: Callable[[Session], str] | None = None,
        then: Callable[[Session, Append, PolicyDecision], object] | None = None,
    ) -> Routed:
        """Store the message and its audit entry in one transaction; a replay fails here.

        `gate` is a check that needs the broker's records (read in the same transaction):
        the reason it returns turns an allowed message into a denied one. `then` adds
        more writes to the same transaction (the delivery event an answer closes, the
        request state a receipt changes), so one commit covers all. An identical copy of
        a durable message stored before is answered with its first outcome (a sender
        re-sending after a crash or a lost reply); any other reuse of an id is a replay.
        """
        header = verdict.header
        now = self.clock_ms()
        traceparent = current_traceparent()
        due = (
            answer_deadline_ms(
                header.kind, header.created_at_ms, self.stop_payment_answer_s, self.action_answer_s
            )
            if decision.allowed
            else 0
        )

        def store(session: Session, append: Append) -> tuple[int, PolicyDecision]:
            final = decision
            problem = gate(session) if gate is not None and decision.allowed else ""
            if problem:
                final = refused_by_broker(decision, problem)
            entry = header_entry(header, envelope.header, envelope.payload)
            entry.update(
                type="decision",
                at_ms=now,
                decision="ALLOW" if final.allowed else "DENY",
                policy_ids=list(final.policy_ids),
                policy_set=final.policy_set_hash,
                reason="" if final.allowed else final.reason,
            )
            state = "requested" if final.allowed else "denied"
            message = append.row(
                MessageRow,
                message_id=header.message_id,
                sender=header.sender,
                kind=header.kind,
                case_ref=header.case_ref,
                recipients=json.dumps(list(header.recipients)),
                reply_to=header.reply_to,
                created_at_ms=header.created_at_ms,
                expires_at_ms=header.expires_at_ms,
                received_at_ms=now,
                header=envelope.header,
                payload=envelope.payload if final.allowed else b"",
                signature=envelope.signature,
                state=state,
                answer_due_at_ms=due if final.allowed else 0,
            )  # a replayed id fails at the group's commit, then alone
            index = append(entry)
            message["audit_index"] = index
            append.row(EventRow, message_id=header.message_id, state=state, at_ms=now, detail="")
            if final.allowed and durable:
                for name in header.recipients:
                    append.row(
                        DeliveryRow,
                        message_id=header.message_id,
                        recipient=name,
                        next_attempt_at_ms=now,
                        traceparent=traceparent,
                    )
            if then is not None:
                then(session, append, final)
            return index, final

        try:
            with span("audit.append", {"gateway.kind": header.kind}):
                index, final = self.audit.run(store)
        except IntegrityError:
            first = self._first_outcome(envelope, header) if durable else None
            if first is not None:
                return first
            self._audit_rejection(
                envelope,
                Rejected(
                    "replay",
                    "message id was seen before",
                    grpc.StatusCode.ALREADY_EXISTS,
                ),
                header.sender,
            )
            raise BrokerRefusal(
                grpc.StatusCode.ALREADY_EXISTS, "replay: message id was seen before"
            ) from None
        if final is not decision:
            instruments().denials.add(1, {"gateway.kind": header.kind})
        reason = "" if final.allowed else final.reason
        event(
            log,
            "routed" if final.allowed else "denied",
            message_id=header.message_id,
            kind=header.kind,
            sender=header.sender,
            recipients=list(header.recipients),
            audit_index=index,
            **({"policy_ids": list(final.policy_ids)} if final.allowed else {"reason": reason}),
        )
        return Routed(header.message_id, final, index, header.kind, reason=reason)

    def _first_outcome(self, envelope: pb.Envelope, header: pb.Header) -> Routed | None:
        """The outcome first given to this very envelope, if it was stored before."""
        with self.audit.session() as session:
            stored = session.get(MessageRow, header.message_id)
            if stored is None or (stored.header, stored.signature) != (
                envelope.header,
                envelope.signature,
            ):
                return None
            index = stored.audit_index
        [(_, leaf)] = self.audit.read(index, 1)
        first = json.loads(leaf)
        decision = PolicyDecision(
            allowed=first["decision"] == "ALLOW",
            policy_ids=tuple(first["policy_ids"]),
            errors=(),
            policy_set_hash=first["policy_set"],
        )
        return Routed(
            header.message_id, decision, index, header.kind, resent=True, reason=first["reason"]
        )

    def refuse_unparsable(self, data: bytes, peer_node_id: str | None) -> BrokerRefusal:
        """Audit request bytes that are not an Envelope like any refused envelope (by the
        digest of what arrived) and return the refusal: INVALID_ARGUMENT, naming what is
        wrong, where gRPC would answer INTERNAL for a request it cannot decode."""
        rejected = Rejected(
            "envelope",
            "request bytes do not decode as a gateway.v1.Envelope",
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        self._audit_rejection(pb.Envelope(header=data), rejected, peer_node_id, parsed=False)
        return BrokerRefusal(rejected.status, str(rejected))

    def _audit_rejection(
        self,
        envelope: pb.Envelope,
        rejected: Rejected,
        peer_node_id: str | None,
        *,
        parsed: bool = True,
    ) -> None:
        """One audit entry per refused envelope; `parsed=False`: `envelope.header` holds
        the undecodable request itself, recorded by its digest alone."""
        header = pb.Header()
        try:
            if parsed:
                header.ParseFromString(envelope.header)
        except Exception:  # a header that does not parse is audited by its digest alone
            header = pb.Header()
        entry: dict[str, object] = {
            "type": "rejection",
            "at_ms": self.clock_ms(),
            "peer": peer_node_id or "",
            "check": rejected.check,
            "reason": rejected.reason,
            "message_id": header.message_id[:32],
            "kind": header.kind[:32],
            "header_sha256": hashlib.sha256(envelope.header).hexdigest(),
        }
        suppressed = self.append_budget.take(peer_node_id or "")
        if suppressed:
            entry["suppressed"] = suppressed
        if suppressed is not None:
            self.audit.run(lambda _session, append: append(entry))
        event(
            log,
            "refused",
            message_id=entry["message_id"],
            kind=entry["kind"],
            peer=entry["peer"],
            check=rejected.check,
            reason=rejected.reason,
        )

    # -- interactive delivery -----------------------------------------------------------

    def _deliver_now(self, envelope: pb.Envelope, verdict: Verified, routed: Routed) -> None:
        directory = self.directory()
        members = [directory.get(name) for name in verdict.header.recipients]
        for node_id, outcome in self._deliver_to(
            [m for m in members if m is not None], envelope
        ).items():
            if isinstance(outcome, DeliveryError):
                self._delivery_event(verdict.header.message_id, node_id, "failed", str(outcome))
                routed.undelivered.append(node_id)
                routed.refusals[node_id] = str(outcome)
                continue
            answer = self._accept_answer(verdict.header, node_id, outcome)
            if answer is None:
                routed.undelivered.append(node_id)
                if not outcome.accepted:
                    routed.refusals[node_id] = outcome.reason
            else:
                routed.responses.append(answer)

    def _deliver_to(
        self, members: list[Member], envelope: pb.Envelope
    ) -> dict[str, pb.DeliverReply | DeliveryError]:
        """Deliver to every member at once; one recipient is served in this thread."""

        def attempt(member: Member) -> pb.DeliverReply | DeliveryError:
            with self._slots.take(member.node_id) as free:
                if not free:
                    return DeliveryError(
                        f"{member.node_id}: RESOURCE_EXHAUSTED {self._slots.per_recipient} "
                        "interactive deliveries already in flight"
                    )
                try:
                    return self.dialer.deliver(member, envelope)
                except DeliveryError as exc:
                    return exc

        if len(members) == 1:
            return {members[0].node_id: attempt(members[0])}
        futures = {m.node_id: self._fanout.submit(attempt, m) for m in members}
        return {node_id: future.result() for node_id, future in futures.items()}

    def _accept_answer(
        self, request: pb.Header, node_id: str, reply: pb.DeliverReply
    ) -> pb.Envelope | None:
        """Verify, decide and audit a recipient's direct answer before passing it on."""
        if not reply.accepted:
            self._delivery_event(request.message_id, node_id, "refused", reply.reason)
            return None
        if not reply.HasField("response"):
            self._delivery_event(request.message_id, node_id, "delivered", "")
            return None
        answer = reply.response
        verdict = self.verifier.verify(answer, peer_node_id=node_id)
        problem = ""
        if isinstance(verdict, Rejected):
            problem = str(verdict)
        elif verdict.header.kind != ANSWER_TO.get(Kind(request.kind)):
            problem = f"answer: a {request.kind} is answered by {ANSWER_TO.get(Kind(request.kind))}, not {verdict.header.kind}"
        elif verdict.header.reply_to != request.message_id:
            problem = "answer: reply_to does not name the request"
        elif list(verdict.header.recipients) != [request.sender]:
            problem = "answer: must be addressed to the requester only"
        if problem or not isinstance(verdict, Verified):
            self._delivery_event(request.message_id, node_id, "bad-answer", problem)
            return None
        decision = self._decide(verdict, answer)
        now = self.clock_ms()

        def answered(_session: Session, append: Append, _final: PolicyDecision) -> int:
            answer_id = verdict.header.message_id
            return record_delivery(append, request.message_id, node_id, "answered", answer_id, now)

        try:
            self._record(answer, verdict, decision, durable=False, then=answered)
        except BrokerRefusal as exc:
            self._delivery_event(request.message_id, node_id, "bad-answer", exc.reason)
            return None
        return answer if decision.allowed else None

    def _delivery_event(self, message_id: str, recipient: str, state: str, detail: str) -> int:
        """One audit entry per delivery event, written with the lifecycle event."""
        now = self.clock_ms()
        index: int = self.audit.run(
            lambda _session, append: record_delivery(
                append, message_id, recipient, state, detail, now
            )
        )
        event(
            log, "delivery", message_id=message_id, recipient=recipient, state=state, detail=detail
        )
        return index

    # -- status ------------------------------------------------------------------------

    def status(self, message_id: str, peer_node_id: str | None) -> pb.StatusReply:
        """A message's lifecycle, to its sender and recipients only."""
        with self.audit.session() as session:
            row = session.get(MessageRow, message_id)
            if row is None:
                raise BrokerRefusal(grpc.StatusCode.NOT_FOUND, "status: unknown message id")
            parties = {row.sender, *json.loads(row.recipients)}
            if peer_node_id not in parties:
                raise BrokerRefusal(
                    grpc.StatusCode.PERMISSION_DENIED,
                    "status: only the sender and recipients may follow a message",
                )
            events = session.scalars(
                select(EventRow).where(EventRow.message_id == message_id).order_by(EventRow.id)
            ).all()
            answers = session.scalars(
                select(MessageRow)
                .where(MessageRow.reply_to == message_id)
                .where(MessageRow.state != "denied")
                .order_by(MessageRow.received_at_ms)
            ).all()
            return pb.StatusReply(
                message_id=message_id,
                state=row.state,
                events=[
                    pb.StatusEvent(state=e.state, at_ms=e.at_ms, detail=e.detail) for e in events
                ],
                responses=[
                    pb.Envelope(header=a.header, payload=a.payload, signature=a.signature)
                    for a in answers
                ],
            )

    def close(self) -> None:
        self._fanout.shutdown(wait=False, cancel_futures=True)
        self.dialer.close()
        self.rates.close()
        self.audit.close()


def recipients_of(row: MessageRow) -> Sequence[str]:
    recipients: list[str] = json.loads(row.recipients)
    return recipients
