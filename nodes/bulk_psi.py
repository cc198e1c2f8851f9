"""Bulk PSI on a node: the responder's PSI_REQUEST handler and the querier's `run_psi`.

Responder (bank, carrier): one `Responder` per running node, holding its sessions in
memory; sets come from the node's offers (gateway.bulk_psi.offers) over its records.
A refusal goes back to the broker as a gRPC status whose reason the broker audits.
Querier (police, bank, carrier): reads its own set from its records by attribute filter,
and runs the session exchange by exchange, each a PSI_REQUEST sealed to the responder and
submitted through the broker, which checks policy and audits every one.

Logs carry counts, node ids and session id prefixes only, never an identifier in any form.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import grpc
from sqlalchemy import Engine

from gateway.bulk_psi import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_MAX_SET_SIZE,
    REQUEST_PAYLOAD_TYPE,
    RESPONSE_PAYLOAD_TYPE,
    BulkPsiError,
    Mode,
    Offer,
    Peer,
    PsiResult,
    QuerierSession,
    Responder,
    find_offer,
    run_querier,
)
from gateway.bulk_psi.querier import Progress
from gateway.envelope.build import Draft
from gateway.identifiers import Identifier, IdentifierKind
from gateway.kinds import Kind
from nodes.broker_client import AnswerError
from nodes.records import live_records
from nodes.roles.base import Inbound, RoleRefusal

if TYPE_CHECKING:
    from nodes.runtime import NodeContext

__all__ = [
    "BrokerTransport",
    "PsiOutcome",
    "handle_psi_request",
    "load_identifiers",
    "responder_for",
    "run_psi",
]

log = logging.getLogger(__name__)

_REASON_PREFIX: Final = "bulk psi: "
RETRIES: Final = 3
"""Times an exchange is repeated when its answer did not come back in time."""
_TRANSIENT: Final = frozenset({grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE})
_responders: weakref.WeakKeyDictionary[NodeContext, Responder] = weakref.WeakKeyDictionary()
_responders_lock = threading.Lock()


# -- responder ---------------------------------------------------------------------------


def _set_loader(engine: Engine) -> Callable[[Offer], list[bytes]]:
    def load(offer: Offer) -> list[bytes]:
        rows = live_records(engine, offer.kind, offer.where)
        return [row.identifier().canonical_input() for row in rows]

    return load


def responder_for(ctx: NodeContext) -> Responder:
    """This node's responder (created on first use; it lives as long as the node's context)."""
    with _responders_lock:
        responder = _responders.get(ctx)
        if responder is None:
            engine = ctx.engine  # the closures must not hold ctx, or it would never be freed
            responder = Responder(
                offers=lambda name: find_offer(engine, name), load_set=_set_loader(engine)
            )
            _responders[ctx] = responder
        return responder


def handle_psi_request(inbound: Inbound, ctx: NodeContext) -> Draft:
    """Answer one exchange of a bulk PSI session, or refuse it with a status and reason."""
    header = inbound.header
    if header.payload_type != REQUEST_PAYLOAD_TYPE:
        raise RoleRefusal(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{_REASON_PREFIX}payload type must be {REQUEST_PAYLOAD_TYPE}",
        )
    sender = ctx.client.directory().get(header.sender)
    peer = Peer(header.sender, sender.role if sender is not None else "", header.case_ref)
    try:
        payload, elements = responder_for(ctx).handle(peer, inbound.payload, header.batch_size)
    except BulkPsiError as exc:
        log.info("bulk PSI exchange from %s refused: %s", header.sender, exc.reason)
        raise RoleRefusal(exc.status, _REASON_PREFIX + exc.reason) from None
    return ctx.answer(
        inbound,
        Kind.PSI_RESPONSE,
        payload,
        payload_type=RESPONSE_PAYLOAD_TYPE,
        batch_size=elements,
    )


# -- querier -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PsiOutcome:
    """The session's result and, in intersection mode, this node's identifiers that matched."""

    result: PsiResult
    matches: list[Identifier] | None


class BrokerTransport:
    """Carries one session's exchanges to `peer` through the broker, sealed and signed."""

    def __init__(
        self, ctx: NodeContext, peer: str, *, case_ref: str, legal_basis: str, purpose: str
    ) -> None:
        member = ctx.client.directory().get(peer)
        if member is None or not member.active:
            raise BulkPsiError(grpc.StatusCode.NOT_FOUND, f"{peer!r} is not an active member")
        self.ctx = ctx
        self.peer = peer
        self.case_ref = case_ref
        self.legal_basis = legal_basis
        self.purpose = purpose
        self._seal_key = member.seal_key
        self.exchanges = 0

    def __call__(self, payload: bytes, batch_size: int) -> bytes:
        """One exchange; repeated (same payload, new message) if the answer was lost in time.

        The responder answers a repeated exchange with the answer it gave the first time,
        so a retry never advances the session twice.
        """
        exchange = self.exchanges
        for attempt in range(1 + RETRIES):
            try:
                answer = self._exchange(exchange, payload, batch_size)
            except BulkPsiError as exc:
                if exc.status not in _TRANSIENT or attempt == RETRIES:
                    raise
                log.info("bulk PSI exchange %d with %s: retrying (%s)", exchange, self.peer, exc)
                continue
            self.exchanges += 1
            return answer
        raise AssertionError("unreachable")

    def _exchange(self, exchange: int, payload: bytes, batch_size: int) -> bytes:
        draft = Draft(
            sender=self.ctx.node_id,
            recipients=[self.peer],
            kind=Kind.PSI_REQUEST,
            payload=payload,
            payload_type=REQUEST_PAYLOAD_TYPE,
            case_ref=self.case_ref,
            purpose=self.purpose,
            legal_basis=self.legal_basis,
            batch_size=batch_size,
            seal_to=self._seal_key,
        )
        try:
            submitted = self.ctx.client.submit(draft)
        except grpc.RpcError as exc:
            code: grpc.StatusCode = exc.code()  # type: ignore[attr-defined]
            details = str(exc.details() or "")  # type: ignore[attr-defined]
            raise BulkPsiError(
                code, f"the broker refused exchange {exchange}: {code.name}: {details}"
            ) from None
        except AnswerError as exc:
            raise BulkPsiError(grpc.StatusCode.DATA_LOSS, str(exc)) from None
        for header, body in submitted.answers:
            if header.sender != self.peer:
                continue
            if header.kind != Kind.PSI_RESPONSE or header.payload_type != RESPONSE_PAYLOAD_TYPE:
                raise BulkPsiError(
                    grpc.StatusCode.INTERNAL,
                    f"{self.peer} answered exchange {exchange} with something else than a "
                    "PSI response",
                )
            return body
        raise self._refusal(draft.message_id, exchange)

    def _refusal(self, message_id: str, exchange: int) -> BulkPsiError:
        """The responder's refusal as the broker recorded it (node id, status, reason)."""
        try:
            status = self.ctx.client.status(message_id)
        except grpc.RpcError:
            return BulkPsiError(
                grpc.StatusCode.UNAVAILABLE, f"{self.peer} did not answer exchange {exchange}"
            )
        for event in reversed(status.events):
            if not event.state.endswith(f":{self.peer}") or not event.detail:
                continue
            # The broker's delivery error reads "<node>: <STATUS> <reason>".
            _node, _sep, rest = event.detail.partition(": ")
            name, _sep, reason = rest.partition(" ")
            code = grpc.StatusCode.__members__.get(name, grpc.StatusCode.UNKNOWN)
            if code in _TRANSIENT:
                return BulkPsiError(
                    code, f"{self.peer} did not answer exchange {exchange} in time ({name})"
                )
            reason = reason.removeprefix(_REASON_PREFIX) if reason else rest
            return BulkPsiError(code, f"{self.peer} refused exchange {exchange}: {reason}")
        return BulkPsiError(
            grpc.StatusCode.UNAVAILABLE, f"{self.peer} did not answer exchange {exchange}"
        )


def load_identifiers(
    engine: Engine, kind: IdentifierKind, where: Mapping[str, str]
) -> list[Identifier]:
    """This node's set: its live records of `kind` whose attributes equal `where`."""
    return [row.identifier() for row in live_records(engine, kind, where)]


def run_psi(
    ctx: NodeContext,
    *,
    peer: str,
    kind: IdentifierKind | str,
    where: Mapping[str, str],
    case_ref: str,
    legal_basis: str,
    purpose: str = "bulk PSI",
    mode: Mode = Mode.INTERSECTION,
    responder_set: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_set_size: int = DEFAULT_MAX_SET_SIZE,
    workers: int | None = None,
    progress: Progress | None = None,
) -> PsiOutcome:
    """Run one bulk PSI session with `peer` over this node's records selected by `where`.

    `responder_set` names the set the peer offers (default: the kind's name). Raises
    `BulkPsiError` with a reason that names no identifier.
    """
    if not isinstance(kind, IdentifierKind):
        kind = IdentifierKind.parse(kind)
    transport = BrokerTransport(
        ctx, peer, case_ref=case_ref, legal_basis=legal_basis, purpose=purpose
    )
    identifiers = load_identifiers(ctx.engine, kind, where)
    session = QuerierSession(
        [identifier.canonical_input() for identifier in identifiers],
        kind=kind,
        responder_set=responder_set or kind.value,
        mode=mode,
        selection=where,
        chunk_size=chunk_size,
        max_set_size=max_set_size,
        workers=workers,
    )
    result = run_querier(transport, session, progress)
    matches = None
    if result.matches is not None:
        matches = [identifiers[i] for i in result.matches]
    log.info(
        "bulk PSI with %s for case %s: %d x %d elements, %d in common",
        peer,
        case_ref,
        result.querier_size,
        result.responder_size,
        result.cardinality,
    )
    return PsiOutcome(result, matches)
