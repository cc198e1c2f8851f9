"""The querier's side of a bulk PSI session: a state machine over request/response payloads.

The querier hashes its set to the group and masks it with a fresh key a, sends it chunk by
chunk, and raises the responder's masked elements H(y)^b to a as they arrive; an element
of its own is in the intersection when its H(x)^ab equals some H(y)^ba. Masking its next
chunk and unmasking the last answer run in background threads, so the querier computes
while the responder does. How payloads travel (through the broker, in
`nodes.bulk_psi`) is the caller's business: `run_querier` takes a transport function.

In cardinality mode the answers give H(x)^ab shuffled over the whole set, and only their
count of matches is kept.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import grpc

from gateway.bulk_psi.errors import BulkPsiError, invalid
from gateway.bulk_psi.pipeline import ChunkPipeline
from gateway.bulk_psi.plan import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_MAX_SET_SIZE,
    MAX_CHUNK_SIZE,
    Mode,
    SessionPlan,
)
from gateway.bulk_psi.wire import (
    ChunkRequest,
    Opening,
    check_selection,
    check_set_name,
    count,
    decode_response,
    encode_request,
    mask_received,
    pack,
    split_elements,
)
from gateway.crypto import psi
from gateway.identifiers import IdentifierKind

log = logging.getLogger(__name__)

Transport = Callable[[bytes, int], bytes]
"""Sends one request payload (with its header batch size) and returns the answer's payload."""

Progress = Callable[[int, int], None]
"""Called after each exchange with (exchanges done, exchanges expected in all so far)."""


@dataclass(frozen=True)
class PsiResult:
    """What the querier learned. `matches` is None in cardinality mode."""

    mode: Mode
    querier_size: int
    responder_size: int
    cardinality: int
    matches: tuple[int, ...] | None
    """Positions in the caller's input sequence of the elements in the intersection."""
    exchanges: int


MAX_IDLE_FETCHES = 30
"""Answers in a row that bring nothing, after which the responder is taken to be stuck."""


class QuerierSession:
    """One session from the querier's side: `next_request`, `accept`, ..., `result`."""

    def __init__(
        self,
        inputs: Sequence[bytes],
        *,
        kind: IdentifierKind,
        responder_set: str,
        mode: Mode = Mode.INTERSECTION,
        selection: Mapping[str, str] | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_set_size: int = DEFAULT_MAX_SET_SIZE,
        workers: int | None = None,
    ) -> None:
        first: dict[bytes, int] = {}
        for position, item in enumerate(inputs):
            first.setdefault(item, position)
        if not first:
            raise invalid("the querier's set is empty: no records match the selection")
        if len(first) > max_set_size:
            raise BulkPsiError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the querier's set of {len(first)} elements exceeds the limit of {max_set_size}",
            )
        if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
            raise invalid(f"the chunk size must be 1 to {MAX_CHUNK_SIZE}")
        self._inputs = list(first)
        self._positions = list(first.values())
        self._opening = Opening(
            kind=kind,
            responder_set=check_set_name(responder_set),
            mode=mode,
            querier_size=len(self._inputs),
            chunk_size=chunk_size,
            selection=check_selection(selection or {}),
        )
        self._max_set_size = max_set_size
        self._workers = workers or os.cpu_count() or 1
        self._plan = SessionPlan(mode, len(self._inputs), chunk_size)
        self._key = psi.generate_key()
        self._session_id = b""
        self._exchange = 0
        self._responder_size: int | None = None
        self._received = 0
        self._idle = 0
        self._double: list[list[bytes]] = []
        self._peer: list[list[bytes]] = []
        self._pending: list[Future[None]] = []
        self._unmask = ThreadPoolExecutor(max_workers=1, thread_name_prefix="psi-unmask")
        uploads = self._plan.chunks(len(self._inputs))
        self._own = ChunkPipeline(self._mask_chunk, uploads, name="psi-mask")

    # -- the exchange loop ---------------------------------------------------------------

    @property
    def plan(self) -> SessionPlan:
        return self._plan

    @property
    def exchanges_done(self) -> int:
        return self._exchange

    def expected_exchanges(self) -> int:
        """At least this many exchanges in all (more if the responder's chunks come late)."""
        if self._responder_size is None:
            return self._plan.querier_exchanges
        pending = self._plan.chunks(self._responder_size) - self._received
        return max(self._plan.querier_exchanges, self._exchange + pending)

    @property
    def done(self) -> bool:
        return self._plan.complete(self._exchange, self._responder_size, self._received)

    def next_request(self) -> tuple[bytes, int]:
        """The next request's payload and its header `batch_size`."""
        if self.done:
            raise RuntimeError("the session is complete")
        exchange = self._exchange
        elements = b""
        if len(self._plan.querier_span(exchange)):
            elements = self._own.take(exchange) or b""
        request = ChunkRequest(
            session_id=self._session_id,
            exchange=exchange,
            opening=self._opening if exchange == 0 else None,
            elements=elements,
        )
        return encode_request(request), self._plan.batch_size(exchange)

    def accept(self, payload: bytes) -> None:
        """Check the answer to the last request against the plan; unmask it in the background."""
        exchange = self._exchange
        response = decode_response(payload)
        if response.exchange != exchange:
            raise invalid(f"the answer is for exchange {response.exchange}, not {exchange}")
        if exchange == 0:
            self._session_id = response.session_id
        elif response.session_id != self._session_id:
            raise invalid(f"the answer to exchange {exchange} names another session")
        self._check_size(exchange, response.responder_size)
        expected = len(self._plan.double_masked_span(exchange))
        if count(response.double_masked) != expected:
            raise invalid(
                f"exchange {exchange} returned {count(response.double_masked)} doubly-masked "
                f"elements, expected {expected}"
            )
        peer_elements = count(response.responder_elements)
        if peer_elements:
            assert self._responder_size is not None  # checked by decode_response
            if response.responder_chunk != self._received:
                raise invalid(
                    f"exchange {exchange} carried the responder's chunk "
                    f"{response.responder_chunk}, expected {self._received}"
                )
            due = len(self._plan.chunk(self._received, self._responder_size))
            if peer_elements != due:
                raise invalid(
                    f"the responder's chunk {self._received} has {peer_elements} elements, "
                    f"expected {due}"
                )
            self._received += 1
        if expected or peer_elements or exchange < self._plan.querier_exchanges:
            self._idle = 0
        else:
            self._idle += 1
            if self._idle > MAX_IDLE_FETCHES:
                raise BulkPsiError(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"the responder sent nothing in {self._idle} exchanges in a row",
                )
        self._raise_failures()
        self._pending.append(
            self._unmask.submit(
                self._unmask_answer, exchange, response.double_masked, response.responder_elements
            )
        )
        self._exchange += 1

    def _check_size(self, exchange: int, size: int | None) -> None:
        if self._responder_size is not None:
            if size != self._responder_size:
                raise invalid(f"the responder's set size changed in exchange {exchange}")
            return
        if size is not None and size > self._max_set_size:
            raise BulkPsiError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the responder's set of {size} elements exceeds the limit of {self._max_set_size}",
            )
        self._responder_size = size

    def result(self) -> PsiResult:
        """Wait for the last unmasking, then compare; only the count in cardinality mode."""
        if not self.done or self._responder_size is None:
            raise RuntimeError("the session is not complete")
        for pending in self._pending:
            pending.result()
        own = [encoding for chunk in self._double for encoding in chunk]
        peer = {encoding for chunk in self._peer for encoding in chunk}
        matches: tuple[int, ...] | None = None
        if self._plan.mode is Mode.INTERSECTION:
            matches = tuple(sorted(self._positions[i] for i, d in enumerate(own) if d in peer))
            size = len(matches)
        else:
            # Shuffled over the whole set by the responder: only the count means anything.
            size = sum(1 for d in own if d in peer)
        return PsiResult(
            mode=self._plan.mode,
            querier_size=self._plan.querier_size,
            responder_size=self._responder_size,
            cardinality=size,
            matches=matches,
            exchanges=self._exchange,
        )

    def close(self) -> None:
        """Stop background work; the key and masked sets go with this object."""
        self._own.cancel()
        self._unmask.shutdown(wait=False, cancel_futures=True)

    # -- background work -----------------------------------------------------------------

    def _mask_chunk(self, index: int) -> bytes:
        span = self._plan.querier_span(index)
        hashed = psi.hash_inputs_to_group(self._inputs[span.start : span.stop])
        return pack(
            psi.encode_elements(psi.exponentiate_parallel(self._key, hashed, self._workers))
        )

    def _unmask_answer(self, exchange: int, double_masked: bytes, responder: bytes) -> None:
        # H(x)^ab is only compared, never computed on, so it is not decoded: a malformed or
        # identity encoding cannot equal a valid H(y)^ba and simply matches nothing. H(y)^b
        # is raised to our key, so it is validated as it is raised and refused if invalid.
        self._double.append(split_elements(double_masked, "doubly-masked elements"))
        masked = mask_received(
            responder,
            f"exchange {exchange}'s responder elements",
            self._key,
            workers=self._workers,
        )
        self._peer.append(psi.encode_elements(masked))

    def _raise_failures(self) -> None:
        for pending in self._pending:
            if pending.done():
                pending.result()


def run_querier(
    transport: Transport, session: QuerierSession, progress: Progress | None = None
) -> PsiResult:
    """Drive `session` to the end over `transport`; background work stops on any exit."""
    try:
        while not session.done:
            payload, batch_size = session.next_request()
            session.accept(transport(payload, batch_size))
            if progress is not None:
                progress(session.exchanges_done, session.expected_exchanges())
        result = session.result()
    finally:
        session.close()
    log.info(
        "bulk PSI (%s) done: %d x %d elements in %d exchanges",
        result.mode.value,
        result.querier_size,
        result.responder_size,
        result.exchanges,
    )
    return result
