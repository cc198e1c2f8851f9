"""Filter mode on a police node: keep responders' filters current, and query with them.

sync_filter pulls a responder's signed filter one chunk per FILTER_SYNC through the
broker, verifying each under the responder's signing key from the signed directory
(gateway.matching.filter_sync) and storing it as it goes (filter_store), so a sync cut
short resumes at the next chunk. A delta that does not chain onto the held state
(ResyncNeeded) starts a full re-sync from a fresh replica, once.

filter_query_responders asks each responder with a FilterQuery: a padded batch of
blinded elements (FILTER_QUERY), the filter tested here, then the sealed labels of the
matched tags alone (LABEL_REQUEST). The label round is always sent, with no tags when
nothing matched, so that its absence tells nothing.

Every call goes through the broker client, whose calls carry the node's deadline; no
lock is held across one. Logs carry counts, versions and message ids only.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import grpc
from google.protobuf.message import DecodeError
from sqlalchemy.exc import SQLAlchemyError

from gateway.envelope.build import Draft
from gateway.identifiers import Identifier
from gateway.kinds import Kind
from gateway.matching.errors import MatchError
from gateway.matching.filter_query import LABEL_TYPE, QUERY_TYPE, FilterQuery
from gateway.matching.filter_store import load_replica, save_chunk, save_state
from gateway.matching.filter_sync import FilterReplica, ResyncNeeded, SyncError
from gateway.matching.parts import each_part
from gateway.matching.querier import KeyMismatch, check_batch
from gateway.pki.directory import Member
from gateway.v1 import filter_pb2 as fpb
from nodes.broker_client import AnswerError
from nodes.filter_responder import SYNC_TYPE
from nodes.matching import ResponderOutcome, responder_problem

if TYPE_CHECKING:
    from nodes.runtime import NodeContext

__all__ = [
    "FilterModeError",
    "SyncOutcome",
    "exchange",
    "filter_query_responders",
    "held_filter",
    "sync_and_query",
    "sync_filter",
]

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""(responder, chunks verified, chunks in all) after each chunk of a transfer."""

_VERSION: Final = 1
_MAX_ROUNDS: Final = 10_000
"""Chunks one sync takes at most (a 27 MB filter is 9): a responder that never says
"current" cannot keep the police node busy forever."""


class FilterModeError(MatchError):
    """A filter-mode exchange that failed; says with whom and why, never an identifier."""


@dataclass(frozen=True)
class SyncOutcome:
    """Where a sync left one responder's filter."""

    responder: str
    version: int
    tags: int
    chunks: int
    resynced: bool


def _responder(ctx: NodeContext, node_id: str) -> Member:
    directory = ctx.client.directory()
    problem = responder_problem(directory, node_id)
    if problem:
        raise FilterModeError(problem)
    member = directory.get(node_id)
    assert member is not None
    return member


def exchange(ctx: NodeContext, draft: Draft, answer_kind: Kind) -> tuple[bytes, str]:
    """Submit an interactive request; (the recipient's answer payload, its message id)."""
    node_id = draft.recipients[0]
    try:
        submitted = ctx.client.submit(draft)
    except grpc.RpcError as exc:
        raise FilterModeError(
            f"broker refused the {draft.kind}: {exc.code().name}: {exc.details()}"  # type: ignore[attr-defined]
        ) from None
    except AnswerError as exc:
        raise FilterModeError(str(exc)) from None
    for header, payload in submitted.answers:
        if header.sender == node_id:
            if header.kind != answer_kind:
                raise FilterModeError(f"{node_id} answered with {header.kind}, not {answer_kind}")
            return payload, header.message_id
    refusal = submitted.refusals.get(node_id)
    raise FilterModeError(
        f"no answer: {node_id}: {refusal}" if refusal else f"{node_id}: no answer"
    )


def held_filter(ctx: NodeContext, node_id: str) -> FilterReplica:
    """The replica of `node_id`'s filter this node holds (verified again on load)."""
    member = _responder(ctx, node_id)
    return load_replica(
        ctx.engine, responder=node_id, recipient=ctx.node_id, responder_key=member.sign_key
    )


def _sync_request(replica: FilterReplica) -> bytes:
    signed = replica.signed_statement
    return fpb.FilterSyncRequest(
        version=_VERSION,
        held_version=replica.version,
        held_digest=replica.state.digest() if replica.state is not None else b"",
        resume_statement=hashlib.sha256(signed).digest() if signed else b"",
        resume_chunk=replica.next_chunk or 0,
    ).SerializeToString()


def sync_filter(ctx: NodeContext, node_id: str, progress: Progress | None = None) -> SyncOutcome:
    """Bring this node's copy of `node_id`'s filter up to the responder's current state.

    FilterModeError naming what failed; what was verified so far stays stored.
    """
    member = _responder(ctx, node_id)
    replica = held_filter(ctx, node_id)
    resynced = False
    chunks = 0
    for _ in range(_MAX_ROUNDS):
        draft = Draft(
            sender=ctx.node_id,
            recipients=[node_id],
            kind=Kind.FILTER_SYNC,
            payload=_sync_request(replica),
            payload_type=SYNC_TYPE,
            purpose="filter sync",
            seal_to=member.seal_key,
        )
        payload, _ = exchange(ctx, draft, Kind.FILTER_CHUNK)
        try:
            answer = fpb.FilterSyncAnswer.FromString(payload)
        except DecodeError:
            raise FilterModeError(f"{node_id}'s filter chunk does not parse") from None
        if answer.current:
            state = replica.state
            return SyncOutcome(
                node_id, replica.version, len(state) if state else 0, chunks, resynced
            )
        try:
            if replica.signed_statement != answer.signed:
                replica.begin(answer.signed)
            index = replica.next_chunk or 0
            done = replica.add_chunk(answer.chunk)
        except ResyncNeeded as exc:
            if resynced:
                raise FilterModeError(f"{node_id}'s filter: {exc}") from None
            log.warning("filter of %s does not chain (%s); syncing in full", node_id, exc)
            replica = FilterReplica(
                responder=node_id, recipient=ctx.node_id, responder_key=member.sign_key
            )
            resynced = True
            continue
        except SyncError as exc:
            raise FilterModeError(f"{node_id}'s filter refused: {exc}") from None
        chunks += 1
        try:
            if done:
                save_state(ctx.engine, replica)
                log.info("filter of %s now version %d", node_id, replica.version)
            else:
                assert replica.signed_statement is not None
                save_chunk(ctx.engine, node_id, replica.signed_statement, index, answer.chunk)
        except SQLAlchemyError as exc:
            raise FilterModeError(
                f"cannot store {node_id}'s filter ({type(exc).__name__}; another sync of it "
                "may be under way): try again"
            ) from None
        if not done and progress is not None:
            progress(node_id, *replica.progress())
    raise FilterModeError(f"{node_id} sent more than {_MAX_ROUNDS} filter chunks in one sync")


def filter_query_responders(
    ctx: NodeContext,
    identifiers: Sequence[Identifier],
    recipients: Sequence[str],
    *,
    case_ref: str,
    legal_basis: str,
    purpose: str = "targeted match",
) -> list[ResponderOutcome]:
    """Ask each recipient in filter mode, concurrently; one outcome each, in order.

    Raises MatchError for problems of the query itself, before anything is sent; a
    recipient whose filter this node does not hold gets an outcome saying to sync.
    """
    cfg = ctx.config
    check_batch(identifiers, cfg.filter_max_batch)
    if not recipients:
        raise MatchError("there is no responder to ask")
    members = {node_id: _responder(ctx, node_id) for node_id in recipients}

    def ask(node_id: str) -> ResponderOutcome:
        member = members[node_id]
        outcome = ResponderOutcome(node_id)

        def case(kind: Kind, payload: bytes, payload_type: str, batch: int) -> Draft:
            return Draft(
                sender=ctx.node_id,
                recipients=[node_id],
                kind=kind,
                payload=payload,
                payload_type=payload_type,
                case_ref=case_ref,
                purpose=purpose,
                legal_basis=legal_basis,
                batch_size=batch,
                seal_to=member.seal_key,
            )

        try:
            replica = held_filter(ctx, node_id)
            if replica.state is None:
                raise FilterModeError(
                    f"this node holds no filter of {node_id}; run `gateway node filters --sync`"
                )
            query = FilterQuery(identifiers, member.oprf_key, max_batch=cfg.filter_max_batch)
            draft = case(Kind.FILTER_QUERY, query.payload(), QUERY_TYPE, query.size)
            outcome.message_id = draft.message_id
            answer, _ = exchange(ctx, draft, Kind.FILTER_ANSWER)
            candidates = query.test(answer, replica.state)
            request = case(Kind.LABEL_REQUEST, query.label_request(), LABEL_TYPE, candidates)
            labels, _ = exchange(ctx, request, Kind.LABEL_ANSWER)
            result = query.open_labels(labels)
        except KeyMismatch as exc:
            outcome.error, outcome.key_mismatch = exc.reason, True
            return outcome
        except MatchError as exc:
            outcome.error = exc.reason
            log.warning("filter query %s to %s failed: %s", outcome.message_id, node_id, exc.reason)
            return outcome
        outcome.matches = result.matches
        log.info(
            "filter query %s to %s: padded size %d, %d candidates, %d false positives, %d matches",
            outcome.message_id,
            node_id,
            query.size,
            candidates,
            result.false_positives,
            len(result.matches),
        )
        return outcome

    return each_part(ask, recipients, "filter-match")


def sync_and_query(
    ctx: NodeContext,
    identifiers: Sequence[Identifier],
    recipients: Sequence[str],
    *,
    case_ref: str,
    legal_basis: str,
    purpose: str = "targeted match",
    synced: Callable[[SyncOutcome], None] | None = None,
    progress: Progress | None = None,
) -> list[ResponderOutcome]:
    """Bring each recipient's filter up to date, then ask those in filter mode.

    A recipient whose filter cannot be synced gets an outcome saying why; it is not
    asked in bucket mode instead (that leaks more, and is the user's choice to make).
    """
    check_batch(identifiers, ctx.config.filter_max_batch)
    if not recipients:
        raise MatchError("there is no responder to ask")
    failed: dict[str, ResponderOutcome] = {}
    for node_id in recipients:
        try:
            outcome = sync_filter(ctx, node_id, progress)
        except FilterModeError as exc:
            failed[node_id] = ResponderOutcome(node_id, error=f"filter sync failed: {exc.reason}")
            continue
        if synced is not None:
            synced(outcome)
    ready = [node_id for node_id in recipients if node_id not in failed]
    asked = (
        filter_query_responders(
            ctx, identifiers, ready, case_ref=case_ref, legal_basis=legal_basis, purpose=purpose
        )
        if ready
        else []
    )
    answers = {outcome.node_id: outcome for outcome in asked} | failed
    return [answers[node_id] for node_id in recipients]
