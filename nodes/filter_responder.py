"""Filter mode on a bank or carrier node: FILTER_QUERY, LABEL_REQUEST and FILTER_SYNC handlers.

The library does the protocol (gateway.matching.filter_query, filter_sync); this module
wires it to the node: the OPRF key and match index, the per-querier evaluation quota
from the node configuration (persisted in the node database), and, per police node, the
chain of signed filter states it has published. The chain lives in memory: after a
restart the responder publishes a fresh snapshot, which the police's held state does
not chain onto, so they re-sync in full (the remedy filter_sync names).

Logs carry counts, versions and message ids only, never an identifier or a tag.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import grpc
from google.protobuf.message import DecodeError
from sqlalchemy import Engine

from gateway.envelope.build import Draft
from gateway.kinds import Kind
from gateway.matching import eval_quota, filter_sync
from gateway.matching.errors import MatchError, Problem
from gateway.matching.filter import MAX_BITS, TagFilter, bits_for, value_of
from gateway.matching.filter_query import (
    AnsweredQueries,
    answer_filter_query,
    answer_label_request,
)
from gateway.matching.filter_source import iter_tags, labels_by_tag
from gateway.matching.filter_sync import Publication, publish_delta, publish_snapshot
from gateway.matching.index_store import read_state
from gateway.v1 import filter_pb2 as fpb
from nodes.index_build import build_unfinished
from nodes.matching import QUERIER_ROLES, ready_server
from nodes.records import current_version
from nodes.roles.base import Inbound, RoleRefusal

if TYPE_CHECKING:
    from nodes.runtime import NodeContext

__all__ = [
    "ANSWER_TYPE",
    "CHUNK_BYTES",
    "CHUNK_TYPE",
    "LABELS_TYPE",
    "SYNC_TYPE",
    "handle_filter_query",
    "handle_filter_sync",
    "handle_label_request",
]

log = logging.getLogger(__name__)

ANSWER_TYPE: Final = "application/vnd.gateway.v1.FilterAnswer+protobuf"
LABELS_TYPE: Final = "application/vnd.gateway.v1.LabelAnswer+protobuf"
SYNC_TYPE: Final = "application/vnd.gateway.v1.FilterSyncRequest+protobuf"
CHUNK_TYPE: Final = "application/vnd.gateway.v1.FilterSyncAnswer+protobuf"
_VERSION: Final = 1
CHUNK_BYTES = filter_sync.CHUNK_BYTES
"""Bytes of filter per FILTER_CHUNK (a chunk and its sealing fit one 4 MiB envelope)."""
_KEEP: Final = 64
"""Published states kept per police node: a police node further behind gets a snapshot."""

_STATUS: Final = {
    Problem.INVALID: grpc.StatusCode.INVALID_ARGUMENT,
    Problem.TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Problem.NOT_READY: grpc.StatusCode.FAILED_PRECONDITION,
    Problem.FORBIDDEN: grpc.StatusCode.PERMISSION_DENIED,
}


@dataclass
class _Chain:
    """The states published to one police node, oldest first, and the values of the last."""

    bits: int
    values: array[int]
    index_version: int
    published: list[Publication] = field(default_factory=list)


@dataclass
class _Responder:
    """What one responder node keeps between calls (per process)."""

    answered: AnsweredQueries = field(default_factory=AnsweredQueries)
    chains: dict[str, _Chain] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_states: dict[str, _Responder] = {}
_states_guard = threading.Lock()


def _state(ctx: NodeContext) -> _Responder:
    key = f"{ctx.node_id}@{ctx.engine.url.render_as_string(hide_password=True)}"
    with _states_guard:
        return _states.setdefault(key, _Responder())


def _police_sender(inbound: Inbound, ctx: NodeContext) -> str:
    sender = ctx.client.directory().get(inbound.header.sender)
    if sender is None or sender.role not in QUERIER_ROLES:
        raise RoleRefusal(
            grpc.StatusCode.PERMISSION_DENIED, "filter: only police may use filter mode"
        )
    return sender.node_id


def _refuse(inbound: Inbound, what: str, exc: MatchError) -> RoleRefusal:
    log.info("%s %s refused: %s", what, inbound.header.message_id, exc.reason)
    return RoleRefusal(_STATUS[exc.problem], f"filter: {exc.reason}")


def handle_filter_query(inbound: Inbound, ctx: NodeContext) -> Draft:
    """FILTER_QUERY -> FILTER_ANSWER: evaluations and proofs, the quota charged first."""
    querier = _police_sender(inbound, ctx)
    cfg = ctx.config
    quota = eval_quota.EvalQuota(cfg.filter_eval_per_hour, cfg.filter_eval_per_day)
    try:
        server = ready_server(ctx)
        payload, size = answer_filter_query(
            inbound.payload,
            querier=querier,
            declared_batch=inbound.header.batch_size,
            max_batch=cfg.filter_max_batch,
            server=server,
            answered=_state(ctx).answered,
            charge=lambda count: eval_quota.charge(ctx.engine, querier, count, quota),
            workers=os.cpu_count() or 1,
        )
    except MatchError as exc:
        raise _refuse(inbound, "filter query", exc) from None
    log.info("filter query %s answered: padded size %d", inbound.header.message_id, size)
    return ctx.answer(
        inbound, Kind.FILTER_ANSWER, payload, payload_type=ANSWER_TYPE, batch_size=size
    )


def handle_label_request(inbound: Inbound, ctx: NodeContext) -> Draft:
    """LABEL_REQUEST -> LABEL_ANSWER: sealed labels of the asked tags of an answered query."""
    querier = _police_sender(inbound, ctx)
    try:
        payload, tags = answer_label_request(
            inbound.payload,
            querier=querier,
            answered=_state(ctx).answered,
            labels=lambda asked: labels_by_tag(ctx.engine, asked),
        )
    except MatchError as exc:
        raise _refuse(inbound, "label request", exc) from None
    log.info("label request %s answered: %d tags", inbound.header.message_id, tags)
    return ctx.answer(
        inbound, Kind.LABEL_ANSWER, payload, payload_type=LABELS_TYPE, batch_size=tags
    )


def handle_filter_sync(inbound: Inbound, ctx: NodeContext) -> Draft:
    """FILTER_SYNC -> FILTER_CHUNK: the next chunk for the police node's held state."""
    recipient = _police_sender(inbound, ctx)
    try:
        request = fpb.FilterSyncRequest.FromString(inbound.payload)
    except DecodeError:
        raise RoleRefusal(
            grpc.StatusCode.INVALID_ARGUMENT, "filter: the payload is not a FilterSyncRequest"
        ) from None
    if request.version != _VERSION:
        raise RoleRefusal(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"filter: sync protocol version is not supported (want {_VERSION})",
        )
    index = read_state(ctx.engine)
    if index is None:
        raise RoleRefusal(
            grpc.StatusCode.FAILED_PRECONDITION,
            "filter: this node has no match index yet; run `gateway node ingest`",
        )
    if build_unfinished(index, current_version(ctx.engine)):  # partial rows: not a filter
        raise RoleRefusal(
            grpc.StatusCode.FAILED_PRECONDITION,
            "filter: the match index is being rebuilt; ask again when it has finished",
        )
    state = _state(ctx)
    with state.lock:  # local work only (the index read and signing); no call out
        chain = _current_chain(ctx, state, recipient)
        answer = _next_piece(chain, request, lambda: _snapshot_of_latest(ctx, chain, recipient))
    log.info(
        "filter sync %s for %s: %s",
        inbound.header.message_id,
        recipient,
        "current" if answer.current else f"chunk {fpb.FilterChunk.FromString(answer.chunk).index}",
    )
    return ctx.answer(
        inbound, Kind.FILTER_CHUNK, answer.SerializeToString(), payload_type=CHUNK_TYPE
    )


def _tag_of(value: int, bits: int) -> bytes:
    """A tag whose first `bits` bits are `value` (what publish_delta truncates again)."""
    return (value << (MAX_BITS - bits)).to_bytes(MAX_BITS // 8, "big")


def _values(engine: Engine, bits: int | None) -> tuple[int, array[int]]:
    """(bits, sorted truncated tags of the index); `bits` None: chosen for the count."""
    tags = list(iter_tags(engine))
    width = bits_for(len(tags)) if bits is None else bits
    return width, array("Q", sorted(value_of(tag, width) for tag in tags))


def _difference(old: array[int], new: array[int]) -> tuple[list[int], list[int]]:
    """(added, removed) values between two sorted multisets, by one merge pass."""
    added: list[int] = []
    removed: list[int] = []
    i = j = 0
    while i < len(old) and j < len(new):
        if old[i] == new[j]:
            i, j = i + 1, j + 1
        elif old[i] < new[j]:
            removed.append(old[i])
            i += 1
        else:
            added.append(new[j])
            j += 1
    removed.extend(old[i:])
    added.extend(new[j:])
    return added, removed


def _current_chain(ctx: NodeContext, state: _Responder, recipient: str) -> _Chain:
    """The recipient's chain, with a new signed state published if the index moved.

    A delta carries the change since the last state; when the record count has moved
    so far that the truncation width should change, a new chain starts with a snapshot.
    """
    index = read_state(ctx.engine)
    assert index is not None
    signer = ctx.client.keys.signing
    chain = state.chains.get(recipient)
    if chain is not None and chain.index_version == index.version:
        return chain
    if chain is not None:
        bits, values = _values(ctx.engine, chain.bits)
        if bits_for(len(values)) == bits:
            added, removed = _difference(chain.values, values)
            if added or removed:
                chain.published.append(
                    publish_delta(
                        chain.published[-1],
                        added_tags=[_tag_of(v, bits) for v in added],
                        removed_tags=[_tag_of(v, bits) for v in removed],
                        responder=ctx.node_id,
                        recipient=recipient,
                        signer=signer,
                        chunk_bytes=CHUNK_BYTES,
                    )
                )
                del chain.published[:-_KEEP]
                log.info("filter delta for %s: +%d -%d", recipient, len(added), len(removed))
            chain.values, chain.index_version = values, index.version
            return chain
    bits, values = _values(ctx.engine, None)
    # A new chain's versions start at the clock in microseconds, above any earlier
    # chain's (a chain advances by one per delta), so the police take its snapshot.
    snapshot = publish_snapshot(
        TagFilter(bits, values),
        version=time.time_ns() // 1_000,
        responder=ctx.node_id,
        recipient=recipient,
        signer=signer,
        chunk_bytes=CHUNK_BYTES,
    )
    chain = _Chain(bits, values, index.version, [snapshot])
    state.chains[recipient] = chain
    log.info("filter snapshot for %s: %d tags, %d bits", recipient, len(values), bits)
    return chain


def _snapshot_of_latest(ctx: NodeContext, chain: _Chain, recipient: str) -> Publication:
    """A snapshot of the chain's latest state under its version, for a police node that
    holds nothing the chain continues (published once, then kept)."""
    latest = chain.published[-1]
    for publication in reversed(chain.published):
        if publication.to_version == latest.to_version and _is_snapshot(publication):
            return publication
    snapshot = publish_snapshot(
        latest.state,
        version=latest.to_version,
        responder=ctx.node_id,
        recipient=recipient,
        signer=ctx.client.keys.signing,
        chunk_bytes=CHUNK_BYTES,
    )
    chain.published.append(snapshot)
    return snapshot


def _is_snapshot(publication: Publication) -> bool:
    envelope = fpb.SignedFilterStatement.FromString(publication.signed)
    return fpb.FilterStatement.FromString(envelope.statement).from_version == 0


def _digest(publication: Publication) -> bytes:
    return hashlib.sha256(publication.signed).digest()


def _piece(publication: Publication, index: int) -> fpb.FilterSyncAnswer:
    return fpb.FilterSyncAnswer(
        version=_VERSION, signed=publication.signed, chunk=publication.chunks[index]
    )


def _next_piece(
    chain: _Chain, request: fpb.FilterSyncRequest, snapshot: Callable[[], Publication]
) -> fpb.FilterSyncAnswer:
    """The chunk to resume, "current", the delta onto the held state, or the snapshot."""
    published = chain.published
    if request.resume_statement:
        for publication in published:
            if _digest(publication) == request.resume_statement and request.resume_chunk < len(
                publication.chunks
            ):
                return _piece(publication, request.resume_chunk)
    latest = published[-1]
    if request.held_version == latest.to_version and request.held_digest == latest.state.digest():
        return fpb.FilterSyncAnswer(version=_VERSION, current=True)
    for publication in published:
        statement = fpb.FilterStatement.FromString(
            fpb.SignedFilterStatement.FromString(publication.signed).statement
        )
        # Matched on the version alone: the police check the digest the delta names
        # against the state they hold, and re-sync in full if it does not chain.
        if statement.from_version and statement.from_version == request.held_version:
            return _piece(publication, 0)
    return _piece(snapshot(), 0)
