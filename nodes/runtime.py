"""The node runtime shared by every role: receive, verify, decide, hand to the role, answer.

A delivery is accepted only from the broker's mTLS identity; the envelope must verify
under its sender's key from the signed directory and be addressed to this node; the
node's own Cedar policy must allow it (defence in depth: a broker with a bad policy
cannot make a bank act). A message id seen before gets the answer given the first
time, so the broker's at-least-once delivery has exactly one effect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from gateway import migrate
from gateway.broker.core import party, policy_context
from gateway.config import NodeConfig
from gateway.db import make_engine
from gateway.envelope.build import Draft, now_ms
from gateway.envelope.sealing import SealError, unseal
from gateway.envelope.verify import EnvelopeVerifier, Rejected, VerifierLimits
from gateway.kinds import DURABLE, Kind
from gateway.ops_http import OpsServer, database_readiness
from gateway.pki.store import NodeBundle
from gateway.policy import ContextValue, PolicyDecision, PolicyEngine, PolicyRequest
from gateway.policy.bundle import listing_problem
from gateway.telemetry import server_interceptors
from gateway.transport import (
    IdentityInterceptor,
    TlsFiles,
    current_peer,
    new_server,
    server_credentials,
)
from gateway.v1 import gateway_pb2 as pb
from gateway.v1 import gateway_pb2_grpc as rpc
from nodes.actions.responder import HoldSweeper
from nodes.broker_client import BrokerClient
from nodes.journal import InboundJournal, InboundRow
from nodes.node_policy import load_node_policy, record_denial
from nodes.roles.base import Inbound, RoleHandler, RoleRefusal
from nodes.watchlist.police import WatchlistSweeper

if TYPE_CHECKING:
    from nodes.alerts.resender import AlertResender
    from nodes.filter_syncer import FilterSyncer

log = logging.getLogger(__name__)


class NodeContext:
    """What a role handler may use: identity, keys, database, the broker client."""

    def __init__(self, config: NodeConfig, engine: Engine, client: BrokerClient) -> None:
        self.config = config
        self.node_id = config.node_id
        self.engine = engine
        self.client = client
        self.keys = client.keys
        self.bundle = NodeBundle(config.pki_bundle)

    def answer(self, inbound: Inbound, kind: str, payload: bytes, **fields: object) -> Draft:
        """A draft answer to `inbound`, sealed to its sender when the kind needs it."""
        from gateway.kinds import SEALED, Kind

        sender = self.client.directory().get(inbound.header.sender)
        seal_to = sender.seal_key if sender is not None and Kind(kind) in SEALED else None
        return Draft(
            sender=self.node_id,
            recipients=[inbound.header.sender],
            kind=kind,
            payload=payload,
            reply_to=inbound.header.message_id,
            case_ref=inbound.header.case_ref,
            purpose=inbound.header.purpose,
            legal_basis=inbound.header.legal_basis,
            seal_to=seal_to,
            **fields,  # type: ignore[arg-type]
        )


class NodeServicer(rpc.NodeServicer):
    """Deliver: the broker hands this node an envelope and may get an answer back."""

    def __init__(
        self,
        ctx: NodeContext,
        handler: RoleHandler,
        policy: PolicyEngine,
        verifier: EnvelopeVerifier,
    ) -> None:
        self.ctx = ctx
        self.handler = handler
        self.policy = policy
        self.verifier = verifier
        self._sessions = sessionmaker(ctx.engine, expire_on_commit=False)
        self._journal = InboundJournal(ctx.engine)

    def Deliver(self, request: pb.Envelope, context: grpc.ServicerContext) -> pb.DeliverReply:
        ctx = self.ctx
        verdict = self.verifier.verify(
            request,
            peer_node_id=current_peer(),
            expect_peer=ctx.config.broker_id,
            recipient=ctx.node_id,
        )
        if isinstance(verdict, Rejected):
            context.abort(verdict.status, str(verdict))
        header = verdict.header
        seen = self._journal.seen(header.message_id)
        if seen is not None:
            if seen.header != request.header:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, "replay: message id was seen before")
            reply = pb.DeliverReply(message_id=header.message_id, accepted=True)
            if seen.answer:
                reply.response.ParseFromString(seen.answer)
            return reply

        directory = ctx.client.directory()
        me = directory.get(ctx.node_id)
        if me is None:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "directory: this node is not listed")
        stale = listing_problem(self.policy.policy_set_hash, directory.policy_bundle)
        if stale is not None:
            record_denial(ctx.engine, header, self.policy.policy_set_hash, stale)
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"node policy: {stale}")
        sender, recipient = party(verdict.sender), party(me)

        def decide_again(facts: Mapping[str, ContextValue]) -> PolicyDecision:
            context = {**policy_context(header, 0), **facts}
            return self.policy.decide(PolicyRequest(sender, recipient, header.kind, context))

        decision = decide_again({})
        if not decision.allowed:
            record_denial(ctx.engine, header, decision.policy_set_hash, decision.reason)
            context.abort(grpc.StatusCode.PERMISSION_DENIED, f"node policy: {decision.reason}")
        payload = request.payload
        if header.sealed:
            try:
                payload = unseal(payload, header.message_id, ctx.keys.sealing)
            except SealError as exc:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"seal: {exc}")
        if Kind(header.kind) in DURABLE:
            answer = self._handle_once(request, header, payload, context, decide_again, sender.role)
        else:
            answer = self._handle(Inbound(header, payload, request), context)
            self._journal.record(journal_values(request, header, answer))
        reply = pb.DeliverReply(message_id=header.message_id, accepted=True)
        if answer is not None:
            reply.response.CopyFrom(answer)
        return reply

    def _handle(self, inbound: Inbound, context: grpc.ServicerContext) -> pb.Envelope | None:
        try:
            draft = self.handler.handle(inbound, self.ctx)
        except RoleRefusal as refusal:
            context.abort(refusal.status, refusal.reason)
        return draft.sign(self.ctx.keys.signing) if draft is not None else None

    def _handle_once(
        self,
        request: pb.Envelope,
        header: pb.Header,
        payload: bytes,
        context: grpc.ServicerContext,
        decide_again: Callable[[Mapping[str, ContextValue]], PolicyDecision],
        sender_role: str,
    ) -> pb.Envelope | None:
        """Journal row and the action's effects in one transaction: exactly one effect."""
        try:
            with self._sessions() as session, session.begin():
                row = journal_row(request, header, None)
                session.add(row)
                session.flush()  # a concurrent duplicate fails here, before any effect
                inbound = Inbound(header, payload, request, session, decide_again, sender_role)
                answer = self._handle(inbound, context)
                if answer is not None:
                    row.answer = answer.SerializeToString()
        except IntegrityError:
            with self._sessions() as session:
                seen = session.get(InboundRow, header.message_id)
                if seen is None or not seen.answer:
                    return None
                return pb.Envelope.FromString(seen.answer)
        return answer


def journal_values(
    request: pb.Envelope, header: pb.Header, answer: pb.Envelope | None
) -> dict[str, object]:
    return {
        "message_id": header.message_id,
        "sender": header.sender,
        "kind": header.kind,
        "case_ref": header.case_ref,
        "reply_to": header.reply_to,
        "received_at_ms": now_ms(),
        "header": request.header,
        "payload": request.payload,
        "signature": request.signature,
        "answer": answer.SerializeToString() if answer is not None else b"",
    }


def journal_row(request: pb.Envelope, header: pb.Header, answer: pb.Envelope | None) -> InboundRow:
    return InboundRow(**journal_values(request, header, answer))


@dataclass
class RunningNode:
    server: grpc.Server
    ctx: NodeContext
    port: int
    sweeper: HoldSweeper | None = None
    ops: OpsServer | None = None
    watchlist_sweeper: WatchlistSweeper | None = None
    watchlist_server: grpc.Server | None = None
    filter_syncer: FilterSyncer | None = None
    alert_resender: AlertResender | None = None

    def stop(self, grace: float = 1.0) -> None:
        log.info("node %s stopping (grace %.1f s)", self.ctx.node_id, grace)
        if self.ops is not None:
            self.ops.close()
        if self.sweeper is not None:
            self.sweeper.stop()
        if self.watchlist_sweeper is not None:
            self.watchlist_sweeper.stop()
        if self.watchlist_server is not None:
            self.watchlist_server.stop(grace).wait()
        if self.filter_syncer is not None:
            self.filter_syncer.stop()
        if self.alert_resender is not None:
            self.alert_resender.stop()
        self.server.stop(grace).wait()
        self.ctx.client.close()


def open_node(config: NodeConfig) -> NodeContext:
    """The node's database and broker client, without serving (for CLI commands)."""
    engine = make_engine(config.database)
    migrate.upgrade(engine, "node")
    client = BrokerClient(
        node_id=config.node_id,
        bundle=NodeBundle(config.pki_bundle),
        broker_endpoint=config.broker_endpoint,
        broker_id=config.broker_id,
        engine=engine,
        timeout_s=config.call_timeout_s,
        directory_ttl_s=config.directory_ttl_s,
    )
    return NodeContext(config, engine, client)


def serve_node(config: NodeConfig) -> RunningNode:
    from nodes.preflight import preflight
    from nodes.roles import handler_for

    if config.watchlist_listen:
        from nodes.watchlist.local_service import check_local_address

        check_local_address(config.watchlist_listen)  # ConfigError before anything starts
    if config.role == "police":
        from nodes.watchlist.police import CHECKER_ROLES, advice_shown

        for role in CHECKER_ROLES:
            advice_shown(config, role)  # ConfigError for an unknown level, before starting
    preflight(config)  # refuses to start, saying why, on what would fail a first request
    ctx = open_node(config)
    handler = handler_for(config.role, ctx)
    policy = load_node_policy(config, bundle=ctx.bundle)
    verifier = EnvelopeVerifier(ctx.client.directory, limits=VerifierLimits(max_age_ms=None))
    bundle = ctx.bundle
    tls = TlsFiles(bundle.tls_cert, bundle.tls_key, bundle.ca_cert)
    server = new_server(
        16,
        [
            *server_interceptors(),
            IdentityInterceptor(ctx.client.directory, ctx.client.held_directory),
        ],
    )
    rpc.add_NodeServicer_to_server(NodeServicer(ctx, handler, policy, verifier), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = (
        pb.DESCRIPTOR.services_by_name["Node"].full_name,
        health.SERVICE_NAME,
        reflection.SERVICE_NAME,
    )
    reflection.enable_server_reflection(names, server)
    port = server.add_secure_port(config.listen, server_credentials(tls))
    if port == 0:
        raise RuntimeError(f"cannot listen on {config.listen}")
    server.start()
    for name in ("", names[0]):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    sweeper = None
    alert_resender = None
    if config.role in ("bank", "carrier"):
        sweeper = HoldSweeper(ctx, config.hold_sweep_s)
        sweeper.start()
        if config.alert_resend_s > 0:
            from nodes.alerts.resender import AlertResender

            alert_resender = AlertResender(ctx, config.alert_resend_s)
            alert_resender.start()
    watchlist_sweeper = None
    if config.role == "police" and ctx.bundle.oprf_key.exists():  # it holds a watchlist
        watchlist_sweeper = WatchlistSweeper(ctx)
        watchlist_sweeper.start()
    watchlist_server = None
    if config.watchlist_listen and config.role in ("bank", "carrier"):
        from nodes.watchlist.local_service import serve_watchlist

        watchlist_server = serve_watchlist(ctx, config.watchlist_listen)
    filter_syncer = None
    if config.role == "police" and config.filter_sync_s > 0:
        from nodes.filter_syncer import FilterSyncer

        filter_syncer = FilterSyncer(ctx, config.filter_sync_s)
        filter_syncer.start()
    host = config.listen.rsplit(":", 1)[0]
    log.info("node %s (%s) listening on %s:%d", config.node_id, config.role, host, port)
    ops = None
    if config.ops_listen:
        ops = OpsServer(config.ops_listen, database_readiness(ctx.engine))
    return RunningNode(
        server,
        ctx,
        port,
        sweeper,
        ops,
        watchlist_sweeper,
        watchlist_server,
        filter_syncer,
        alert_resender,
    )
