"""The broker's gRPC server: mTLS, identity interceptor, health, reflection, outbox worker."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from sqlalchemy.orm import Session

from gateway import migrate
from gateway.audit.checkpoint import parse_checkpoint
from gateway.audit.cosignature import CosignatureV1Verifier
from gateway.audit.log import Append, AuditLog
from gateway.audit.note import Ed25519Signer, parse_note
from gateway.audit.store import CosignatureRow
from gateway.audit.tlog_proof import SEEN_SIZE_METADATA
from gateway.audit.witnessed import (
    CosignatureRefused,
    check_cosignature,
    newest_cosigned,
    stored_note,
    with_cosignatures,
    witness_key_name,
)
from gateway.broker.audit_reading import read_entries
from gateway.broker.core import Broker, BrokerRefusal, party
from gateway.broker.delivery import NodeDialer
from gateway.broker.lifecycle import DeadlineWatcher
from gateway.broker.outbox import OutboxWorker
from gateway.broker.reasons import recipient_reason
from gateway.broker.sole import SoleBroker, hold_sole_broker, lock_path
from gateway.config import BROKER_POLICY, BrokerConfig
from gateway.db import make_engine
from gateway.envelope.build import now_ms
from gateway.envelope.verify import EnvelopeVerifier, VerifierLimits
from gateway.kinds import Kind
from gateway.ops_http import OpsServer, database_readiness
from gateway.pki.directory_source import FileDirectory
from gateway.pki.key_files import plain_key_files
from gateway.pki.store import NodeBundle
from gateway.policy import PolicyRequest
from gateway.policy.bundle import load_signed_engine
from gateway.telemetry import observe_outbox, server_interceptors
from gateway.transport import (
    IdentityInterceptor,
    TlsFiles,
    current_peer,
    new_server,
    server_credentials,
)
from gateway.v1 import gateway_pb2 as pb
from gateway.v1 import gateway_pb2_grpc as rpc

log = logging.getLogger(__name__)

MAX_AUDIT_PAGE = 1000
MAX_AUDIT_SCAN = 50_000
"""Most entries one ReadAuditProven call looks through for a member's own entries."""


@dataclass(frozen=True)
class Undecodable:
    """Submit's request bytes that are not an Envelope, kept for the refusal's audit."""

    data: bytes


def envelope_or_undecodable(data: bytes) -> pb.Envelope | Undecodable:
    """Submit's request deserialiser: it never raises (gRPC would answer INTERNAL)."""
    try:
        return pb.Envelope.FromString(data)
    except DecodeError:
        return Undecodable(data)


class _Registrations:
    """Stands in for the server to collect what a generated `add_*_to_server` registers."""

    def __init__(self) -> None:
        self.service = ""
        self.handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def add_generic_rpc_handlers(self, _handlers: object) -> None:
        pass

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        self.service, self.handlers = service, dict(handlers)


def add_broker_servicer(servicer: BrokerServicer, server: grpc.Server) -> None:
    """The generated registration, but Submit decodes its request with
    `envelope_or_undecodable`, so that bytes that are not an Envelope are refused by name."""
    collected = _Registrations()
    rpc.add_BrokerServicer_to_server(servicer, collected)
    collected.handlers["Submit"] = grpc.unary_unary_rpc_method_handler(
        servicer.Submit,
        request_deserializer=envelope_or_undecodable,
        response_serializer=pb.SubmitReply.SerializeToString,
    )
    service, handlers = collected.service, collected.handlers
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    server.add_registered_method_handlers(service, handlers)  # type: ignore[attr-defined]


def seen_size(context: grpc.ServicerContext) -> int:
    """The submitter's `gateway-seen-size`, or 0 if it sent none (or not a number)."""
    for key, value in context.invocation_metadata() or ():
        if key == SEEN_SIZE_METADATA and isinstance(value, str) and value.isdigit():
            return int(value[:19])
    return 0


class BrokerServicer(rpc.BrokerServicer):
    """Thin gRPC adapter over `Broker`: refusals become statuses with named checks."""

    def __init__(self, broker: Broker, directory: FileDirectory) -> None:
        self.broker = broker
        self.directory = directory

    def Submit(
        self, request: pb.Envelope | Undecodable, context: grpc.ServicerContext
    ) -> pb.SubmitReply:
        if isinstance(request, Undecodable):
            refusal = self.broker.refuse_unparsable(request.data, current_peer())
            context.abort(refusal.status, refusal.reason)
        try:
            routed = self.broker.submit(request, current_peer())
        except BrokerRefusal as refusal:
            context.abort(refusal.status, refusal.reason)
        seen = seen_size(context)
        tlog_proof, extends = self.broker.audit.receipt_since(routed.audit_index, seen)
        return pb.SubmitReply(
            message_id=routed.message_id,
            decision="ALLOW" if routed.decision.allowed else "DENY",
            policy_ids=list(routed.decision.policy_ids),
            receipt=pb.AuditReceipt(
                leaf_index=routed.audit_index,
                tlog_proof=tlog_proof,
                consistency_from=seen if extends else 0,
                consistency=extends,
            ),
            responses=routed.responses,
            undelivered=routed.undelivered,
            refusals=[
                pb.Refusal(recipient=node_id, reason=recipient_reason(node_id, text))
                for node_id, text in routed.refusals.items()
            ],
        )

    def Status(self, request: pb.StatusRequest, context: grpc.ServicerContext) -> pb.StatusReply:
        try:
            return self.broker.status(request.message_id, current_peer())
        except BrokerRefusal as refusal:
            context.abort(refusal.status, refusal.reason)

    def GetDirectory(
        self, request: pb.DirectoryRequest, context: grpc.ServicerContext
    ) -> pb.SignedDirectory:
        blob = self.directory.signed()
        return pb.SignedDirectory(directory=blob.directory, signature=blob.signature)

    def ReadAudit(
        self, request: pb.AuditReadRequest, context: grpc.ServicerContext
    ) -> pb.AuditReadReply:
        self._authorise_audit_read(context, Kind.AUDIT_READ)
        limit = max(1, min(MAX_AUDIT_PAGE, request.limit or MAX_AUDIT_PAGE))
        entries = self.broker.audit.read(max(0, request.start), limit)
        return pb.AuditReadReply(
            entries=[pb.AuditEntry(index=i, leaf=leaf) for i, leaf in entries],
            checkpoint=self._cosigned(self.broker.audit.checkpoint()),
        )

    def ReadAuditProven(
        self, request: pb.AuditProvenRequest, context: grpc.ServicerContext
    ) -> pb.AuditProvenReply:
        """A page of entries, each with its inclusion proof under one signed checkpoint.

        The whole log for a reader the policy lets read it (AUDIT_READ); else only the
        entries that name the reader (AUDIT_READ_OWN), looking through at most
        MAX_AUDIT_SCAN entries per call: `next_start` says where to go on.
        """
        kind = Kind.AUDIT_READ if request.whole_log else Kind.AUDIT_READ_OWN
        reader = self._authorise_audit_read(context, kind)
        audit = self.broker.audit
        note = self._cosigned(audit.checkpoint())
        if request.cosigned:
            with audit.session() as session:
                witnessed = newest_cosigned(session)
            if witnessed is not None and _size(witnessed) > max(0, request.start):
                note = witnessed
        size = _size(note)
        end = min(size, request.end) if request.end > 0 else size
        rows, next_start = read_entries(
            audit,
            reader,
            whole_log=request.whole_log,
            start=max(0, request.start),
            end=end,
            limit=max(1, min(MAX_AUDIT_PAGE, request.limit or MAX_AUDIT_PAGE)),
            max_scan=MAX_AUDIT_SCAN,
        )
        entries = [
            pb.ProvenEntry(index=index, leaf=leaf, proof=audit.inclusion(index, size))
            for index, leaf in rows
        ]
        return pb.AuditProvenReply(entries=entries, checkpoint=note, next_start=next_start)

    def GetConsistency(
        self, request: pb.ConsistencyRequest, context: grpc.ServicerContext
    ) -> pb.ConsistencyReply:
        checkpoint = self.broker.audit.checkpoint()
        size = self.broker.audit.size
        new_size = request.new_size or size
        if not 0 < request.old_size <= new_size <= size:
            context.abort(
                grpc.StatusCode.OUT_OF_RANGE,
                f"consistency: sizes must satisfy 0 < old <= new <= {size}",
            )
        proof = self.broker.audit.consistency(request.old_size, new_size)
        return pb.ConsistencyReply(proof=proof, checkpoint=checkpoint)

    def GetCheckpoint(
        self, request: pb.CheckpointRequest, context: grpc.ServicerContext
    ) -> pb.CheckpointReply:
        """The latest signed checkpoint: a tree head only, no entries, for every member."""
        return pb.CheckpointReply(checkpoint=self._cosigned(self.broker.audit.checkpoint()))

    def AddCosignature(
        self, request: pb.CosignRequest, context: grpc.ServicerContext
    ) -> pb.CosignReply:
        """Keep a witness's cosignature of a checkpoint this broker signed.

        The policy decides who may witness (WITNESS_COSIGN); the cosignature must verify
        under the caller's key in the signed directory, for the exact text of a stored
        checkpoint. Every call is audited; the row is stored with its audit entry.
        """
        directory = self.directory.current()
        witness = directory.get(current_peer() or "")
        broker = directory.get(self.broker.node_id)
        if witness is None or broker is None or not witness.active:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "policy: unknown witness")
        decision = self.broker.policy.decide(
            PolicyRequest(
                sender=party(witness),
                recipient=party(broker),
                kind=Kind.WITNESS_COSIGN,
                context=_empty_context(),
            )
        )
        entry: dict[str, object] = {
            "type": "witness-cosign",
            "kind": Kind.WITNESS_COSIGN.value,
            "at_ms": now_ms(),
            "sender": witness.node_id,
            "decision": "ALLOW" if decision.allowed else "DENY",
            "policy_ids": list(decision.policy_ids),
            "policy_set": decision.policy_set_hash,
        }
        audit = self.broker.audit
        if not decision.allowed:
            audit.run(lambda _session, append: append(entry))
            context.abort(grpc.StatusCode.PERMISSION_DENIED, f"policy: {decision.reason}")
        verifier = CosignatureV1Verifier(
            witness_key_name(directory.consortium, witness.node_id), witness.sign_key
        )
        try:
            with audit.session() as session:
                witnessed = check_cosignature(
                    lambda size: stored_note(session, size),
                    request.checkpoint,
                    request.cosignature,
                    verifier,
                )
        except CosignatureRefused as refused:
            entry["outcome"] = "refused"
            audit.run(lambda _session, append: append(entry))
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(refused))
        size = witnessed.checkpoint.size
        entry.update(outcome="stored", size=size)

        def store(session: Session, append: Append) -> None:
            if session.get(CosignatureRow, (size, witness.node_id)) is None:
                append.row(
                    CosignatureRow,
                    size=size,
                    witness=witness.node_id,
                    line=witnessed.line,
                    cosigned_at=witnessed.cosigned_at,
                    at_ms=entry["at_ms"],
                )
            append(entry)

        audit.run(store)
        return pb.CosignReply(size=size)

    def _cosigned(self, note: str) -> str:
        """The log's note with the cosignatures stored for exactly that checkpoint."""
        with self.broker.audit.session() as session:
            return with_cosignatures(session, note)

    def _authorise_audit_read(self, context: grpc.ServicerContext, kind: Kind) -> str:
        """Decide and log a read of the audit log; returns the reader's node id."""
        directory = self.directory.current()
        reader = directory.get(current_peer() or "")
        broker = directory.get(self.broker.node_id)
        if reader is None or broker is None:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "policy: unknown reader")
        suppressed = self.broker.append_budget.take(reader.node_id)
        if suppressed is None:
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"audit: more than {self.broker.append_budget.per_minute} audited calls a "
                "minute; wait and read again",
            )
        decision = self.broker.policy.decide(
            PolicyRequest(
                sender=party(reader),
                recipient=party(broker),
                kind=kind,
                context=_empty_context(),
            )
        )
        entry = {
            "type": "audit-read",
            "kind": kind.value,
            "at_ms": now_ms(),
            "sender": reader.node_id,
            "decision": "ALLOW" if decision.allowed else "DENY",
            "policy_ids": list(decision.policy_ids),
            "policy_set": decision.policy_set_hash,
        }
        if suppressed:
            entry["suppressed"] = suppressed
        self.broker.audit.run(lambda _session, append: append(entry))
        if not decision.allowed:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, f"policy: {decision.reason}")
        return reader.node_id


def _size(note: str) -> int:
    return parse_checkpoint(parse_note(note).text).size


def _empty_context() -> dict[str, str | int | bool]:
    return {
        "purpose": "audit",
        "legal_basis": "",
        "case_ref": "",
        "batch_size": 0,
        "amount_minor": 0,
        "whole_balance": False,
        "duration_hours": 0,
        "reply_to": "",
        "payload_bytes": 0,
        "sender_kind_last_hour": 0,
        "sender_actions_last_hour": 0,
        "sender_bytes_last_hour": 0,
        "account_stop_payments": 0,
        "issuing_officer": "",
        "approving_officer": "",
    }


@dataclass
class RunningBroker:
    server: grpc.Server
    broker: Broker
    outbox: OutboxWorker
    deadlines: DeadlineWatcher
    port: int
    unobserve: Callable[[], None] = lambda: None
    ops: OpsServer | None = None
    sole: SoleBroker | None = None

    def stop(self, grace: float = 1.0) -> None:
        log.info("broker %s stopping (grace %.1f s)", self.broker.node_id, grace)
        if self.ops is not None:
            self.ops.close()
        self.unobserve()
        self.deadlines.stop()
        self.outbox.stop()
        self.server.stop(grace).wait()
        self.broker.close()
        if self.sole is not None:
            self.sole.release()
        log.info("broker %s stopped", self.broker.node_id)


def build_broker(config: BrokerConfig) -> tuple[Broker, FileDirectory]:
    bundle = NodeBundle(config.pki_bundle)
    keys = bundle.keys()
    for path in plain_key_files(bundle.folder):
        log.warning(
            "%s is unencrypted: encrypt it with `gateway pki protect-keys` (SECURITY.md)", path
        )
    directory = FileDirectory(config.directory_folder, bundle.directory_verify_key())
    engine = make_engine(config.database)
    migrate.upgrade(engine, "broker")
    origin = f"{bundle.consortium()}/gateway-audit"
    audit = AuditLog(engine, Ed25519Signer(origin, keys.signing), origin)
    tls = TlsFiles(bundle.tls_cert, bundle.tls_key, bundle.ca_cert)
    broker = Broker(
        node_id=config.node_id,
        directory=directory,
        verifier=EnvelopeVerifier(
            directory, limits=VerifierLimits(max_envelope_bytes=config.max_envelope_bytes)
        ),
        policy=load_signed_engine(
            bundle.policy_bundle,
            BROKER_POLICY,
            bundle.directory_verify_key(),
            consortium=bundle.consortium(),
            listed_sha256=directory().policy_bundle,
        ),
        audit=audit,
        dialer=NodeDialer(tls, timeout_s=config.delivery_timeout_s),
        stop_payment_answer_s=config.stop_payment_answer_s,
        action_answer_s=config.action_answer_s,
        interactive_per_recipient=config.interactive_per_recipient,
        audit_appends_per_minute=config.audit_appends_per_minute,
    )
    return broker, directory


def serve_broker(config: BrokerConfig) -> RunningBroker:
    """Start the broker's server and outbox worker; returns once it listens.

    Several may run over one PostgreSQL database; on SQLite a second is refused
    (`gateway.broker.sole`).
    """
    sole = hold_sole_broker(config.database)
    try:
        return _serve(config, sole)
    except BaseException:
        sole.release()
        raise


def _serve(config: BrokerConfig, sole: SoleBroker) -> RunningBroker:
    broker, directory = build_broker(config)
    bundle = NodeBundle(config.pki_bundle)
    tls = TlsFiles(bundle.tls_cert, bundle.tls_key, bundle.ca_cert)
    server = new_server(32, [*server_interceptors(), IdentityInterceptor(directory)])
    add_broker_servicer(BrokerServicer(broker, directory), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    service_names = (
        pb.DESCRIPTOR.services_by_name["Broker"].full_name,
        health.SERVICE_NAME,
        reflection.SERVICE_NAME,
    )
    reflection.enable_server_reflection(service_names, server)
    port = server.add_secure_port(config.listen, server_credentials(tls))
    if port == 0:
        raise RuntimeError(f"cannot listen on {config.listen}")
    server.start()
    for name in ("", service_names[0]):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    outbox = OutboxWorker(
        broker, lease_s=config.outbox_lease_s, attempt_s=config.delivery_timeout_s
    )
    if lock_path(config.database) is not None:  # the sole broker: no claim is alive
        outbox.release_every_claim()
    outbox.start()
    unobserve = observe_outbox(outbox.depth)
    deadlines = DeadlineWatcher(broker.audit, broker.clock_ms, config.deadline_check_s)
    deadlines.start()
    host = config.listen.rsplit(":", 1)[0]
    log.info("broker %s listening on %s:%d", config.node_id, host, port)
    ops = None
    if config.ops_listen:
        ops = OpsServer(config.ops_listen, database_readiness(broker.audit.engine))
    return RunningBroker(server, broker, outbox, deadlines, port, unobserve, ops, sole)
