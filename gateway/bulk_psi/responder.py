"""The responder's side of bulk PSI: offered sets, sessions with expiry, one state machine.

A responder takes part only with a set it offers by name (an attribute filter over its own
records, a size limit, the roles that may ask, and whether element-level answers are
allowed); anything else is refused before a record is read. Sessions live in memory
only, with the responder's key: a restart or an idle session past its time-to-live ends
them, and the querier starts again.

Each exchange must come in order. The answer to the last one is kept, so a querier that
lost an answer on the way may repeat that exchange byte for byte and get the same answer;
anything else out of order is refused.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import grpc

from gateway.bulk_psi.errors import BulkPsiError, invalid
from gateway.bulk_psi.pipeline import ChunkPipeline
from gateway.bulk_psi.plan import DEFAULT_MAX_SET_SIZE, Mode, SessionPlan
from gateway.bulk_psi.wire import (
    SESSION_ID_BYTES,
    ChunkRequest,
    ChunkResponse,
    Opening,
    count,
    decode_request,
    encode_response,
    mask_received,
    pack,
)
from gateway.crypto import psi
from gateway.identifiers import IdentifierKind

log = logging.getLogger(__name__)

DEFAULT_TTL_S = 300.0
"""Idle time after which a session and its key are dropped."""
DEFAULT_MAX_SESSIONS = 4
"""Sessions open at once: each holds a set in memory and keeps cores busy."""
DEFAULT_OWN_CHUNK_WAIT_S = 4.0
"""Longest an answer waits for this node's next chunk (a quarter of it while the querier
is still sending): well inside the broker's delivery timeout."""
_TOMBSTONES = 256


@dataclass(frozen=True)
class Offer:
    """A set this node takes part in bulk PSI with, under a name queriers ask for."""

    name: str
    kind: IdentifierKind
    where: Mapping[str, str] = field(default_factory=dict)
    max_set_size: int = DEFAULT_MAX_SET_SIZE
    """Largest set accepted from a querier; also the largest this node's own set may be."""
    roles: frozenset[str] = frozenset()
    """Roles that may ask (within what the node policy allows); empty: any such role."""
    cardinality_only: bool = False
    """Answer only with the intersection's size, never element-level."""


@dataclass(frozen=True)
class Peer:
    """Who asks, from the verified envelope: a session is bound to its node and case."""

    node_id: str
    role: str
    case_ref: str


OfferLookup = Callable[[str], "Offer | None"]
SetLoader = Callable[[Offer], Sequence[bytes]]
"""The canonical inputs of an offered set, read from the node's records."""


class ResponderSession:
    """One open session: the plan, the key, this node's masked set and the exchange count."""

    def __init__(
        self,
        session_id: bytes,
        peer: Peer,
        plan: SessionPlan,
        load: Callable[[], Sequence[bytes]],
        *,
        max_own_size: int,
        workers: int,
        own_chunk_wait_s: float,
        now: float,
    ) -> None:
        self.session_id = session_id
        self.peer = peer
        self.plan = plan
        self.workers = workers
        self.own_chunk_wait_s = own_chunk_wait_s
        self.lock = threading.Lock()
        self.touched = now
        self.next_exchange = 0
        self.sent = 0
        """Chunks of this node's own set sent so far."""
        self.announced: int | None = None
        """This node's set size, read in the first exchange and told in every answer."""
        self.last: tuple[bytes, bytes, int] | None = None
        """Digest of the last request, the answer given and its element count."""
        self.opened_by = b""
        """Digest of the opening request, so that a repeated opening finds this session."""
        self._key = psi.generate_key()
        self._load = load
        self._max_own_size = max_own_size
        self._inputs: list[bytes] = []
        self._gathered: list[psi.Element] = []
        self._shuffled: list[bytes] = []
        self._own: ChunkPipeline | None = None

    def _read_own_set(self) -> ChunkPipeline:
        """Read our set, then mask it in the background.

        Reading is pure Python and holds the GIL for long stretches, which would starve the
        threads exponentiating (each needs the GIL back between two libsodium calls, and waits
        out the interpreter's switch interval): so it runs alone, in the first exchange.
        """
        started = time.monotonic()
        inputs = list(dict.fromkeys(self._load()))
        if len(inputs) > self._max_own_size:
            raise BulkPsiError(
                grpc.StatusCode.FAILED_PRECONDITION,
                "this node's own set exceeds the limit configured for it",
            )
        secrets.SystemRandom().shuffle(inputs)  # record order must not show through
        self._inputs = inputs
        self.announced = len(inputs)
        log.info(
            "bulk PSI session %s: own set of %d read in %.1f s",
            self.session_id.hex()[:8],
            len(inputs),
            time.monotonic() - started,
        )
        chunks = self.plan.chunks(len(inputs))
        return ChunkPipeline(self._mask_chunk, chunks, name="psi-mask-own")

    def _mask_chunk(self, index: int) -> bytes:
        span = self.plan.chunk(index, len(self._inputs))
        hashed = psi.hash_inputs_to_group(self._inputs[span.start : span.stop])
        masked = psi.exponentiate_parallel(self._key, hashed, self.workers)
        return pack(psi.encode_elements(masked))

    def answer(self, request: ChunkRequest) -> ChunkResponse:
        """Raise the querier's chunk to our key; attach our next chunk if it is ready."""
        plan, exchange = self.plan, request.exchange
        expected = len(plan.querier_span(exchange))
        if count(request.elements) != expected:
            raise invalid(
                f"exchange {exchange} carries {count(request.elements)} elements, "
                f"expected {expected}"
            )
        if self._own is None:
            self._own = self._read_own_set()
        masked = mask_received(
            request.elements, f"exchange {exchange}'s elements", self._key, workers=self.workers
        )
        if plan.mode is Mode.INTERSECTION:
            double_masked = pack(psi.encode_elements(masked))
        else:
            self._gathered.extend(masked)
            if exchange == plan.last_upload:
                # The whole set is here: shuffle it once, so no position means anything.
                self._shuffled = psi.encode_elements(self._gathered)
                secrets.SystemRandom().shuffle(self._shuffled)
                self._gathered = []
            span = plan.double_masked_span(exchange)
            double_masked = pack(self._shuffled[span.start : span.stop])
        # Wait a little for our next chunk while the querier still has chunks to send, longer
        # once it only asks for ours; never so long that the broker's delivery times out.
        busy = exchange + 1 < plan.querier_exchanges
        wait_s = self.own_chunk_wait_s / 4 if busy else self.own_chunk_wait_s
        own = self._own.take(self.sent, timeout_s=wait_s) or b""
        chunk = self.sent
        if own:
            self.sent += 1
        return ChunkResponse(
            session_id=self.session_id,
            exchange=exchange,
            responder_size=self.announced,
            double_masked=double_masked,
            responder_chunk=chunk,
            responder_elements=own,
        )

    def complete(self) -> bool:
        """Whether the exchanges so far end the session (as the querier will also see)."""
        return self.plan.complete(self.next_exchange, self.announced, self.sent)

    def close(self) -> None:
        if self._own is not None:
            self._own.cancel()
        self._inputs = []
        self._gathered = []
        self._shuffled = []


class Responder:
    """All bulk PSI sessions of one node: opens them against its offers, answers, expires."""

    def __init__(
        self,
        *,
        offers: OfferLookup,
        load_set: SetLoader,
        ttl_s: float = DEFAULT_TTL_S,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        own_chunk_wait_s: float = DEFAULT_OWN_CHUNK_WAIT_S,
        workers: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._offers = offers
        self._load_set = load_set
        self.ttl_s = ttl_s
        self.max_sessions = max_sessions
        self.own_chunk_wait_s = own_chunk_wait_s
        self.workers = workers or os.cpu_count() or 1
        self.clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[bytes, ResponderSession] = {}
        self._expired: OrderedDict[bytes, str] = OrderedDict()
        """Recently expired session ids and their peer, to tell "expired" from "unknown"."""

    def handle(self, peer: Peer, payload: bytes, batch_size: int) -> tuple[bytes, int]:
        """Answer one PSI_REQUEST payload: the PSI_RESPONSE payload and its element count.

        Raises `BulkPsiError` with a status and a reason free of any element.
        """
        request = decode_request(payload)
        digest = hashlib.sha256(payload).digest()
        if request.opening is not None:
            session = self._reopen(peer, digest) or self._open(peer, request.opening, digest)
        else:
            session = self._find(peer, request.session_id)
        with session.lock:
            last = session.last
            if last is not None and (request.exchange, digest) == (
                session.next_exchange - 1,
                last[0],
            ):
                session.touched = self.clock()
                return last[1], last[2]
            try:
                answer, elements = self._answer(session, request, batch_size)
            except BulkPsiError:
                self._drop(session)  # a broken or hostile peer does not get a second try
                raise
            session.last = (digest, answer, elements)
            session.next_exchange += 1
            session.touched = self.clock()
            if session.complete():
                self._finish(session)
        return answer, elements

    @staticmethod
    def _answer(
        session: ResponderSession, request: ChunkRequest, batch_size: int
    ) -> tuple[bytes, int]:
        if request.exchange != session.next_exchange:
            raise BulkPsiError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"exchange {request.exchange} arrived out of order: "
                f"expected {session.next_exchange}",
            )
        expected_batch = session.plan.batch_size(request.exchange)
        if batch_size != expected_batch:
            raise invalid(
                f"the header's batch_size {batch_size} does not match exchange "
                f"{request.exchange} ({expected_batch})"
            )
        response = session.answer(request)
        elements = count(response.double_masked) + count(response.responder_elements)
        return encode_response(response), elements

    # -- sessions ------------------------------------------------------------------------

    def _reopen(self, peer: Peer, digest: bytes) -> ResponderSession | None:
        """The session this very opening started, if the querier lost our first answer."""
        with self._lock:
            for session in self._sessions.values():
                if session.opened_by == digest and session.peer == peer:
                    return session
        return None

    def _open(self, peer: Peer, opening: Opening, digest: bytes) -> ResponderSession:
        self.sweep()
        offer = self._offers(opening.responder_set)
        if offer is None:
            raise BulkPsiError(
                grpc.StatusCode.NOT_FOUND, "the requested set is not offered by this node"
            )
        if offer.kind is not opening.kind:
            raise invalid("the requested set holds another kind of identifier")
        if offer.roles and peer.role not in offer.roles:
            raise BulkPsiError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"the requested set is not offered to the {peer.role} role",
            )
        if offer.cardinality_only and opening.mode is not Mode.CARDINALITY:
            raise BulkPsiError(
                grpc.StatusCode.PERMISSION_DENIED,
                "the requested set is offered for cardinality-only PSI",
            )
        if opening.querier_size > offer.max_set_size:
            raise BulkPsiError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the querier's set of {opening.querier_size} elements exceeds this node's "
                f"limit of {offer.max_set_size}",
            )
        plan = SessionPlan(opening.mode, opening.querier_size, opening.chunk_size)
        session_id = secrets.token_bytes(SESSION_ID_BYTES)
        with self._lock:
            if len(self._sessions) >= self.max_sessions:
                raise BulkPsiError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"this node has {self.max_sessions} bulk PSI sessions open; try again later",
                )
            # Reading and masking our set starts now, in the background of this session.
            session = ResponderSession(
                session_id,
                peer,
                plan,
                functools.partial(self._load_set, offer),
                max_own_size=offer.max_set_size,
                workers=self.workers,
                own_chunk_wait_s=self.own_chunk_wait_s,
                now=self.clock(),
            )
            session.opened_by = digest
            self._sessions[session_id] = session
        log.info(
            "bulk PSI session %s opened by %s (%s): %d querier elements in chunks of %d",
            session_id.hex()[:8],
            peer.node_id,
            plan.mode.value,
            plan.querier_size,
            plan.chunk_size,
        )
        return session

    def _find(self, peer: Peer, session_id: bytes) -> ResponderSession:
        self.sweep()
        with self._lock:
            session = self._sessions.get(session_id)
            expired_for = self._expired.get(session_id)
        if session is not None and (
            session.peer.node_id == peer.node_id and session.peer.case_ref == peer.case_ref
        ):
            return session
        if expired_for == peer.node_id:
            raise BulkPsiError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"the session expired after {self.ttl_s:g} s without an exchange; start a new one",
            )
        # Another node's session (or another case's) is as unknown as a made-up one.
        raise BulkPsiError(grpc.StatusCode.NOT_FOUND, "unknown bulk PSI session")

    def sweep(self) -> None:
        """Drop sessions idle for longer than the time-to-live, with their keys."""
        now = self.clock()
        with self._lock:
            stale = [s for s in self._sessions.values() if now - s.touched > self.ttl_s]
            for session in stale:
                del self._sessions[session.session_id]
                self._expired[session.session_id] = session.peer.node_id
            while len(self._expired) > _TOMBSTONES:
                self._expired.popitem(last=False)
        for session in stale:
            session.close()
            log.info("bulk PSI session %s expired", session.session_id.hex()[:8])

    def _finish(self, session: ResponderSession) -> None:
        self._drop(session)
        log.info(
            "bulk PSI session %s finished after %d exchanges (%d own elements)",
            session.session_id.hex()[:8],
            session.next_exchange,
            session.announced or 0,
        )

    def _drop(self, session: ResponderSession) -> None:
        with self._lock:
            self._sessions.pop(session.session_id, None)
        session.close()

    @property
    def open_sessions(self) -> int:
        with self._lock:
            return len(self._sessions)

    def close(self) -> None:
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for session in sessions:
            session.close()
