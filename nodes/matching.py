"""Targeted matching on a node: the responder's MATCH_QUERY handler and the querier's run.

Querier (police): one MATCH_QUERY per responder, each sealed to that responder and
blinded afresh (a sealed payload has exactly one recipient, and fresh blinds keep two
responders from linking their queries), submitted concurrently through the broker; each
answer is verified against the responder's OPRF key in the signed directory.
Responder (bank, carrier): answers from its match index, refusing with the reason.

Logs carry counts and message ids only, never an identifier in any form.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import grpc
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from gateway.config import NodeConfig
from gateway.crypto.blinded import OprfServer
from gateway.envelope.build import Draft
from gateway.identifiers import Identifier
from gateway.kinds import Kind
from gateway.matching.errors import MatchError, Problem
from gateway.matching.index_store import fetch_buckets, read_state
from gateway.matching.parts import each_part
from gateway.matching.querier import KeyMismatch, Match, PendingQuery, check_batch
from gateway.matching.responder import ResponderLimits, answer_query
from gateway.matching.wire import QUERY_TYPE, RESPONSE_TYPE
from gateway.pki.directory import Directory
from gateway.pki.keys import read_hex
from nodes.broker_client import AnswerError
from nodes.index_build import (
    IndexBacklog,
    IndexUpdate,
    Progress,
    build_unfinished,
    index_params,
    key_id,
    update_index,
)
from nodes.records import current_version
from nodes.roles.base import Inbound, RoleRefusal

if TYPE_CHECKING:
    from nodes.runtime import NodeContext

__all__ = [
    "QUERIER_ROLES",
    "RESPONDER_ROLES",
    "ResponderOutcome",
    "absent_positions",
    "handle_match_query",
    "oprf_server",
    "query_responders",
    "ready_server",
    "refresh_index",
    "responder_problem",
    "responders_of",
]

log = logging.getLogger(__name__)

QUERIER_ROLES: Final = frozenset({"police"})
"""Who may query; the labels hold what these roles may see (the node's label_attributes)."""
RESPONDER_ROLES: Final = ("bank", "carrier")
REFRESH_ON_QUERY: Final = 1_000
"""Pending record changes indexed before answering (~0.15 s); more are left to ingest."""

_STATUS: Final = {
    Problem.INVALID: grpc.StatusCode.INVALID_ARGUMENT,
    Problem.TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Problem.NOT_READY: grpc.StatusCode.FAILED_PRECONDITION,
    Problem.FORBIDDEN: grpc.StatusCode.PERMISSION_DENIED,
}
_refresh_locks: dict[str, threading.Lock] = {}
_refresh_locks_guard = threading.Lock()


def _refresh_lock(engine: Engine) -> threading.Lock:
    """One index update at a time per database (update_index is one writer's job)."""
    key = engine.url.render_as_string(hide_password=True)
    with _refresh_locks_guard:
        return _refresh_locks.setdefault(key, threading.Lock())


# -- responder ---------------------------------------------------------------------------


def oprf_server(ctx: NodeContext) -> OprfServer:
    """The node's OPRF key from its bundle (hex, 32 bytes)."""
    return OprfServer(read_hex(ctx.bundle.oprf_key, 32))


def refresh_index(
    engine: Engine, config: NodeConfig, private_key: bytes, progress: Progress | None = None
) -> IndexUpdate:
    """Bring a node's index up to date with its records and configuration (all cores)."""
    with _refresh_lock(engine):
        return update_index(
            engine,
            private_key,
            bucket_bits=config.match_bucket_bits,
            label_fields=config.label_attributes,
            workers=config.match_workers,
            progress=progress,
        )


def ready_server(ctx: NodeContext) -> OprfServer:
    """The OPRF server, once the index matches the key and configuration and is current.

    A handful of pending record changes are indexed on the spot; a large backlog is left
    to `gateway node ingest` and logged, and the current index is used meanwhile.
    """
    cfg = ctx.config
    server = oprf_server(ctx)
    state = read_state(ctx.engine)
    if state is None:
        raise MatchError(
            "this node has no match index yet; run `gateway node ingest`", Problem.NOT_READY
        )
    params = state.params
    if params.key_id != key_id(server.public_key):
        raise MatchError(
            "the match index was built under another OPRF key; run `gateway node reindex`",
            Problem.NOT_READY,
        )
    wanted = index_params(server.public_key, cfg.match_bucket_bits, cfg.label_attributes)
    if params.format != wanted.format:
        raise MatchError(
            f"the match index is in format {params.format}, this version answers from format "
            f"{wanted.format}; run `gateway node reindex`",
            Problem.NOT_READY,
        )
    if params != wanted:
        raise MatchError(
            "the match index was built with another bucket size or label fields than this "
            "node's configuration; run `gateway node reindex`",
            Problem.NOT_READY,
        )
    records = current_version(ctx.engine)
    backlog = records > state.version
    lock = _refresh_lock(ctx.engine)
    # A query does not wait for an update in progress (a reindex can take minutes, past
    # the broker's deadline): it is answered from the index as it stands.
    if backlog and lock.acquire(blocking=False):
        try:
            update_index(
                ctx.engine,
                server.private_key_bytes(),
                bucket_bits=params.bucket_bits,
                label_fields=params.label_fields,
                workers=1,
                max_changes=REFRESH_ON_QUERY,
            )
        except IndexBacklog as exc:
            log.warning("match index lags %d record changes; run `gateway node ingest`", exc.count)
        except SQLAlchemyError as exc:  # e.g. an ingest updating the index at the same time
            log.warning("match index not refreshed before a query: %s", type(exc).__name__)
        finally:
            lock.release()
        state = read_state(ctx.engine) or state
    elif backlog:
        log.info("match index update in progress; answering from the current index")
    if build_unfinished(state, records):
        # Its rows are partial: answering from them would tell the police "no match"
        # for records the bank holds.
        raise MatchError(
            "the match index is being rebuilt; ask again when `gateway node reindex` "
            "(or `ingest`) has finished",
            Problem.NOT_READY,
        )
    return server


def handle_match_query(inbound: Inbound, ctx: NodeContext) -> Draft:
    """MATCH_QUERY -> MATCH_RESPONSE sealed to the querier, or a refusal saying why."""
    header = inbound.header
    sender = ctx.client.directory().get(header.sender)
    if sender is None or sender.role not in QUERIER_ROLES:
        raise RoleRefusal(
            grpc.StatusCode.PERMISSION_DENIED, "match: only police may query the index"
        )
    cfg = ctx.config
    try:
        server = ready_server(ctx)
        answered = answer_query(
            inbound.payload,
            declared_batch=header.batch_size,
            server=server,
            buckets=lambda asked: fetch_buckets(ctx.engine, asked),
            limits=ResponderLimits(cfg.match_bucket_bits, cfg.match_max_batch),
            workers=os.cpu_count() or 1,
        )
    except MatchError as exc:
        log.info("match query %s refused: %s", header.message_id, exc.reason)
        raise RoleRefusal(_STATUS[exc.problem], f"match: {exc.reason}") from None
    log.info(
        "match query %s answered: %d items, %d buckets, %d entries",
        header.message_id,
        answered.items,
        answered.buckets,
        answered.entries,
    )
    return ctx.answer(
        inbound,
        Kind.MATCH_RESPONSE,
        answered.payload,
        payload_type=RESPONSE_TYPE,
        batch_size=answered.items,
    )


# -- querier -----------------------------------------------------------------------------


@dataclass
class ResponderOutcome:
    """What one responder answered: its matches, or why there is no usable answer."""

    node_id: str
    matches: list[Match] = field(default_factory=list)
    error: str = ""
    key_mismatch: bool = False
    message_id: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def absent_positions(outcomes: Sequence[ResponderOutcome], count: int) -> list[int]:
    """Positions of the `count` asked identifiers that no responder matched; none if no
    responder answered at all (absence from nobody's records is not absence, and an
    officer reading the list must not take it for one)."""
    if not any(outcome.ok for outcome in outcomes):
        return []
    held = {match.position for outcome in outcomes for match in outcome.matches}
    return [position for position in range(count) if position not in held]


def responders_of(directory: Directory, role: str) -> list[str]:
    """Active members of a responder role that publish an OPRF key, by node id."""
    if role not in RESPONDER_ROLES:
        raise MatchError(
            f"{role!r} is not a responder role; expected one of {', '.join(RESPONDER_ROLES)}"
        )
    return sorted(
        m.node_id for m in directory.members if m.role == role and m.active and m.oprf_key
    )


def responder_problem(directory: Directory, node_id: str) -> str:
    """Why `node_id` cannot be asked a match query ("" if it can): it must be an active
    bank or carrier with an OPRF key in the directory."""
    member = directory.get(node_id)
    if member is None or not member.active:
        return f"{node_id!r} is not an active member of the consortium"
    if member.role not in RESPONDER_ROLES or not member.oprf_key:
        return f"{node_id} is a {member.role} node, which holds no match index"
    return ""


def query_responders(
    ctx: NodeContext,
    identifiers: Sequence[Identifier],
    recipients: Sequence[str],
    *,
    case_ref: str,
    legal_basis: str,
    purpose: str = "targeted match",
) -> list[ResponderOutcome]:
    """Ask each recipient, concurrently; one outcome per recipient, in the given order.

    Raises `MatchError` for problems of the query itself (nothing to ask, too many
    identifiers, an unknown recipient), before anything is sent.
    """
    cfg = ctx.config
    check_batch(identifiers, cfg.match_max_batch)
    if not recipients:
        raise MatchError("there is no responder to ask")
    directory = ctx.client.directory()
    for node_id in recipients:
        problem = responder_problem(directory, node_id)
        if problem:
            raise MatchError(problem)

    def ask(node_id: str) -> ResponderOutcome:
        """Blind for this responder (in this thread: the scalar multiplications release the
        GIL, so responders are blinded in parallel), submit, verify the answer."""
        member = directory.get(node_id)
        assert member is not None
        try:
            query = PendingQuery(
                identifiers,
                member.oprf_key,
                bucket_bits=cfg.match_bucket_bits,
                max_batch=cfg.match_max_batch,
            )
        except MatchError as exc:
            return ResponderOutcome(node_id, error=exc.reason)
        draft = Draft(
            sender=ctx.node_id,
            recipients=[node_id],
            kind=Kind.MATCH_QUERY,
            payload=query.payload(),
            payload_type=QUERY_TYPE,
            case_ref=case_ref,
            purpose=purpose,
            legal_basis=legal_basis,
            batch_size=len(query),
            seal_to=member.seal_key,
        )
        return _ask(ctx, node_id, draft, query)

    return each_part(ask, recipients, "match")


def _ask(ctx: NodeContext, node_id: str, draft: Draft, query: PendingQuery) -> ResponderOutcome:
    outcome = ResponderOutcome(node_id, message_id=draft.message_id)
    try:
        submitted = ctx.client.submit(draft)
    except grpc.RpcError as exc:
        outcome.error = f"broker refused the query: {exc.code().name}: {exc.details()}"  # type: ignore[attr-defined]
        return outcome
    except AnswerError as exc:
        outcome.error = str(exc)
        return outcome
    answers = [payload for header, payload in submitted.answers if header.sender == node_id]
    if not answers:
        refusal = submitted.refusals.get(node_id)
        if refusal is not None:
            outcome.error = f"no answer: {node_id}: {refusal}"
        else:
            outcome.error = _why_unanswered(ctx, draft.message_id, node_id)
        return outcome
    header = next(h for h, _ in submitted.answers if h.sender == node_id)
    if header.kind != Kind.MATCH_RESPONSE:
        outcome.error = f"answered with {header.kind}, not {Kind.MATCH_RESPONSE}"
        return outcome
    try:
        outcome.matches = query.open(answers[0])
    except KeyMismatch as exc:
        outcome.error, outcome.key_mismatch = exc.reason, True
        log.warning("match answer %s from %s refused: %s", header.message_id, node_id, exc.reason)
    except MatchError as exc:
        outcome.error = exc.reason
        log.warning("match answer %s from %s refused: %s", header.message_id, node_id, exc.reason)
    log.info(
        "match query %s to %s: %d items, %d matches",
        draft.message_id,
        node_id,
        len(query),
        len(outcome.matches),
    )
    return outcome


def _why_unanswered(ctx: NodeContext, message_id: str, node_id: str) -> str:
    """The refusal the broker recorded for `node_id`, from the message's status (where
    the reply named no refusal: the answer itself was refused, say)."""
    try:
        status = ctx.client.status(message_id)
    except grpc.RpcError:
        return "no answer (and its status could not be read)"
    for event in reversed(status.events):
        if event.state.endswith(f":{node_id}") and event.detail:
            return f"no answer: {event.detail}"
    return "no answer"
