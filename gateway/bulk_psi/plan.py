"""Which elements travel in which exchange, so that both parties check every message.

The querier's side is a fixed schedule derived from its set size and the chunk size:
nothing says "this is the last chunk", so a missing, repeated or extra chunk is an error
on arrival rather than a silent truncation. Intersection mode: exchange i sends the
querier's chunk i and returns it raised to the responder's key, in order. Cardinality
mode: the responder can shuffle the querier's elements only once it holds all of them,
so the doubly-masked set comes back from the last upload on (in that answer and those
that follow), shuffled over the whole set, one chunk per exchange.

The responder's own chunks are numbered from 0 and ride on answers as soon as they are
ready (reading and masking its set runs in the background, so no single exchange waits
for all of it); the session ends with the first exchange after which the querier's
schedule is done and every chunk of the responder's announced set has arrived.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

MAX_CHUNK_SIZE: Final = 10_000
"""Most elements per exchange each way: the broker and node policies cap `batch_size` here."""

DEFAULT_CHUNK_SIZE: Final = 5_000
"""Elements per exchange by default: each exchange then costs the responder well under a
second of crypto, far inside the broker's delivery timeout even on a busy machine."""

DEFAULT_MAX_SET_SIZE: Final = 200_000
"""Largest set either side accepts unless configured otherwise."""


class Mode(StrEnum):
    INTERSECTION = "intersection"
    CARDINALITY = "cardinality"


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class Span:
    """Positions [start, stop) of a set that one message carries."""

    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start


_EMPTY: Final = Span(0, 0)


@dataclass(frozen=True)
class SessionPlan:
    """The querier's schedule of one session, and the shape of the responder's chunks."""

    mode: Mode
    querier_size: int
    chunk_size: int

    def __post_init__(self) -> None:
        if not 1 <= self.chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk size must be 1 to {MAX_CHUNK_SIZE}")
        if self.querier_size < 1:
            raise ValueError("the querier's set must not be empty")

    def chunks(self, size: int) -> int:
        """How many chunks a set of `size` elements takes."""
        return _ceil_div(size, self.chunk_size)

    def chunk(self, index: int, size: int) -> Span:
        """Chunk `index` of a set of `size` elements (empty past its end)."""
        start = index * self.chunk_size
        if index < 0 or start >= size:
            return _EMPTY
        return Span(start, min(size, start + self.chunk_size))

    @property
    def last_upload(self) -> int:
        """The exchange that carries the querier's last chunk."""
        return self.chunks(self.querier_size) - 1

    @property
    def querier_exchanges(self) -> int:
        """Exchanges the querier's schedule takes (uploads, and downloads in cardinality mode)."""
        uploads = self.chunks(self.querier_size)
        return uploads if self.mode is Mode.INTERSECTION else 2 * uploads - 1

    def querier_span(self, exchange: int) -> Span:
        """The querier's elements sent in `exchange`."""
        return self.chunk(exchange, self.querier_size)

    def double_masked_span(self, exchange: int) -> Span:
        """The doubly-masked querier elements returned in `exchange`.

        Intersection mode: the chunk just sent, in order. Cardinality mode: a part of the
        whole shuffled set, from the last upload on.
        """
        if self.mode is Mode.INTERSECTION:
            return self.querier_span(exchange)
        return self.chunk(exchange - self.last_upload, self.querier_size)

    def batch_size(self, exchange: int) -> int:
        """The request header's `batch_size`: the elements it sends, or, when it sends none,
        the chunk size, the most it brings back (policies require 1 to the cap)."""
        return len(self.querier_span(exchange)) or self.chunk_size

    def complete(self, exchanges_done: int, responder_size: int | None, received: int) -> bool:
        """Whether the session is over after `exchanges_done` exchanges, with the responder's
        announced size (None until announced) and `received` of its chunks delivered."""
        return (
            exchanges_done >= self.querier_exchanges
            and responder_size is not None
            and received >= self.chunks(responder_size)
        )
