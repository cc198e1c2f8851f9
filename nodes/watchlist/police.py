"""The police node's answer to a WATCHLIST_CHECK, and the sweep that keeps the index current.

The check is a match query (`gateway.matching` wire format) against the watchlist
index: the police node evaluates the blinded elements under its OPRF key with a batch
proof and returns the asked buckets. It sees the bucket numbers and the batch size, not
the identifiers nor whether any matched. Logs carry message ids and counts only.

Which advice levels a role is shown (`watchlist_advice` in the police node's
configuration) is enforced here, where the checker cannot undo it: the asked buckets are
handed out without the entries of levels the checking role may not see, so such an
entry answers "not listed" to it. The police node filters whole buckets by the level of
each of their entries; it still learns nothing of which identifier was asked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Final, cast

import grpc
import orjson
from sqlalchemy import Engine, Table, select

from gateway.config import ConfigError, NodeConfig
from gateway.envelope.build import Draft, now_ms
from gateway.kinds import Kind
from gateway.matching.errors import MatchError
from gateway.matching.index_store import MatchIndexRow
from gateway.matching.responder import ResponderLimits, answer_query
from gateway.matching.wire import RESPONSE_TYPE
from gateway.periodic import Periodic
from gateway.watchlist import Advice
from nodes.matching import oprf_server
from nodes.records import RecordRow, current_version
from nodes.roles.base import Inbound, RoleRefusal
from nodes.watchlist.store import index_ready, reindex_due

if TYPE_CHECKING:
    from nodes.runtime import NodeContext

__all__ = [
    "CHECKER_ROLES",
    "MAX_CHECK_BATCH",
    "WatchlistSweeper",
    "advice_shown",
    "handle_watchlist_check",
    "visible_buckets",
]

log = logging.getLogger(__name__)

CHECKER_ROLES: Final = frozenset({"bank", "carrier"})
MAX_CHECK_BATCH: Final = 256
"""Identifiers per check message (the policies' cap): a batch of concurrent checks."""


_INDEX = cast(Table, MatchIndexRow.__table__)
_RECORDS = cast(Table, RecordRow.__table__)
_CHUNK = 2_000


def advice_shown(config: NodeConfig, role: str) -> frozenset[Advice]:
    """The advice levels whose entries `role` is shown; ConfigError for an unknown level."""
    levels = set()
    for text in config.watchlist_advice.get(role, "").split(","):
        if not text.strip():
            continue
        try:
            levels.add(Advice(text.strip()))
        except ValueError:
            known = ", ".join(a.value for a in Advice)
            raise ConfigError(
                f"watchlist_advice: {role}: unknown advice level {text.strip()!r}; "
                f"expected some of {known}"
            ) from None
    return frozenset(levels)


def visible_buckets(
    engine: Engine, buckets: Collection[int], shown: frozenset[Advice]
) -> dict[int, list[tuple[bytes, bytes]]]:
    """bucket -> [(tag, sealed label)] of the entries at the `shown` advice levels (each
    entry's attributes parsed with orjson: a check asks ~15 entries per identifier)."""
    found: dict[int, list[tuple[bytes, bytes]]] = {b: [] for b in buckets}
    ordered = sorted(found)
    levels = {a.value for a in shown}
    with engine.connect() as conn:
        for start in range(0, len(ordered), _CHUNK):
            rows = conn.execute(
                select(_INDEX.c.bucket, _INDEX.c.tag, _INDEX.c.label, _RECORDS.c.attributes)
                .join(_RECORDS, _RECORDS.c.id == _INDEX.c.record_id)
                .where(_INDEX.c.bucket.in_(ordered[start : start + _CHUNK]))
            )
            for bucket, tag, label, attributes in rows:
                if orjson.loads(attributes).get("advice") in levels:
                    found[bucket].append((bytes(tag), bytes(label)))
    return found


def handle_watchlist_check(inbound: Inbound, ctx: NodeContext) -> Draft:
    """WATCHLIST_CHECK -> WATCHLIST_ANSWER sealed to the checker, or a refusal saying why."""
    header = inbound.header
    sender = ctx.client.directory().get(header.sender)
    if sender is None or sender.role not in CHECKER_ROLES:
        raise RoleRefusal(
            grpc.StatusCode.PERMISSION_DENIED, "watchlist: only banks and carriers may check"
        )
    cfg = ctx.config
    if not ctx.bundle.oprf_key.exists():
        raise RoleRefusal(
            grpc.StatusCode.FAILED_PRECONDITION,
            "watchlist: this police node has no OPRF key and holds no watchlist",
        )
    server = oprf_server(ctx)
    problem = index_ready(ctx.engine, server, cfg.match_bucket_bits)
    if problem is not None:
        log.warning("watchlist check %s refused: index not ready", header.message_id)
        raise RoleRefusal(grpc.StatusCode.FAILED_PRECONDITION, f"watchlist: {problem}")
    shown = advice_shown(cfg, sender.role)
    try:
        answered = answer_query(
            inbound.payload,
            declared_batch=header.batch_size,
            server=server,
            buckets=lambda asked: visible_buckets(ctx.engine, asked, shown),
            limits=ResponderLimits(cfg.match_bucket_bits, MAX_CHECK_BATCH),
        )
    except MatchError as exc:
        log.info("watchlist check %s refused: %s", header.message_id, exc.reason)
        raise RoleRefusal(grpc.StatusCode.INVALID_ARGUMENT, f"watchlist: {exc.reason}") from None
    log.info(
        "watchlist check %s from %s answered: %d items",
        header.message_id,
        sender.node_id,
        answered.items,
    )
    return ctx.answer(
        inbound,
        Kind.WATCHLIST_ANSWER,
        answered.payload,
        payload_type=RESPONSE_TYPE,
        batch_size=answered.items,
    )


class WatchlistSweeper:
    """Every `interval_s`: remove expired entries and bring the index up to date.

    Entries added or removed by the CLI or console are indexed at once by the command
    that changed them; this catches expiry, and changes whose indexing was interrupted.
    A sweep that can find nothing is skipped: no entry changed since the last one (the
    records' version) and none falls due before the next expiry it saw. A million
    entries cost the scan 0.4 s of CPU, which on a busy node stalled the checks behind it.
    """

    def __init__(
        self,
        ctx: NodeContext,
        interval_s: float = 60.0,
        *,
        clock_ms: Callable[[], int] = now_ms,
    ) -> None:
        self.ctx = ctx
        self.clock_ms = clock_ms
        self._rounds = Periodic("watchlist-sweeper", interval_s, self.sweep, log)
        self._swept_version: int | None = None
        self._next_expiry_ms: int | None = None

    def sweep(self) -> bool:
        """Expire and reindex, unless nothing can have changed; whether it did."""
        engine, cfg = self.ctx.engine, self.ctx.config
        version, now = current_version(engine), self.clock_ms()
        due = self._next_expiry_ms is not None and self._next_expiry_ms <= now
        if version == self._swept_version and not due:
            return False
        key = oprf_server(self.ctx).private_key_bytes()
        _, self._next_expiry_ms = reindex_due(
            engine, key, cfg.match_bucket_bits, workers=1, now=now
        )
        # The version read before the scan: any change since (our own removals too)
        # makes the next sweep scan again, so no entry's expiry is missed.
        self._swept_version = version
        return True

    def start(self) -> None:
        self._rounds.start()

    def stop(self) -> None:
        self._rounds.stop()
