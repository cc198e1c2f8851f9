"""The watchlist on a police node: entries kept as the node's records, and their index.

A police node holds no customer records, so its `records` table holds the watchlist:
one row per listed identifier, with reason, advice, expiry and who listed it as
attributes. The index is built by the same code as a bank's match index
(`nodes.index_build.update_index`) with the watchlist's label fields, so the police
node answers a check exactly as a bank answers a police query. Removal and expiry
tombstone the row, and the next index update drops its index row.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import Engine, Table, func, select

from gateway.crypto.blinded import OprfServer
from gateway.envelope.build import now_ms
from gateway.identifiers import Identifier, IdentifierKind
from gateway.matching.index_store import read_state
from gateway.watchlist import LABEL_FIELDS, Advice, check_reason
from nodes.index_build import (
    IndexUpdate,
    Progress,
    build_unfinished,
    index_params,
    update_index,
)
from nodes.records import (
    STORED_COLUMNS,
    RecordRow,
    StoredRecord,
    UpsertResult,
    current_version,
    delete_records,
    live_records,
    upsert_records,
)

__all__ = [
    "WatchlistEntry",
    "add_entries",
    "count_entries",
    "expire_due",
    "index_ready",
    "list_entries",
    "recent_entries",
    "reindex",
    "reindex_due",
    "remove_entries",
]

log = logging.getLogger(__name__)

_RECORDS = cast(Table, RecordRow.__table__)
_NO_EXPIRY = '%"expires_ms": ""%'
"""How an entry without expiry reads in its attributes (JSON with sorted keys)."""


@dataclass(frozen=True)
class WatchlistEntry:
    """One listed identifier. Its repr leaves the identifier's value out."""

    identifier: Identifier
    reason: str
    advice: Advice
    expires_ms: int | None = None
    listed_by: str = field(default="", compare=False)
    listed_at_ms: int = field(default=0, compare=False)

    def attributes(self) -> dict[str, str]:
        return {
            "reason": check_reason(self.reason),
            "advice": self.advice.value,
            "expires_ms": str(self.expires_ms or ""),
            "listed_by": self.listed_by,
            "listed_at_ms": str(self.listed_at_ms or now_ms()),
        }


def add_entries(engine: Engine, entries: Iterable[WatchlistEntry]) -> UpsertResult:
    """List (or re-list with new terms) the entries, in one transaction."""
    return upsert_records(engine, ((e.identifier, e.attributes()) for e in entries))


def remove_entries(engine: Engine, identifiers: Iterable[Identifier]) -> int:
    """Take identifiers off the watchlist; returns how many were listed."""
    return delete_records(engine, identifiers)


def list_entries(engine: Engine, kind: IdentifierKind | None = None) -> Iterator[WatchlistEntry]:
    """The live entries (expired ones included until the next sweep), by record id."""
    return (_entry(record) for record in live_records(engine, kind))


def recent_entries(engine: Engine, limit: int) -> list[WatchlistEntry]:
    """The `limit` live entries listed last (newest first): a page, not the whole list."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(*STORED_COLUMNS)
            .where(_RECORDS.c.deleted == 0)
            .order_by(_RECORDS.c.id.desc())
            .limit(limit)
        ).all()
    return [_entry(StoredRecord(*row)) for row in rows]


def count_entries(engine: Engine) -> int:
    with engine.connect() as conn:
        query = select(func.count()).select_from(_RECORDS).where(_RECORDS.c.deleted == 0)
        return int(conn.scalar(query) or 0)


def _entry(record: StoredRecord) -> WatchlistEntry:
    attributes = record.attribute_map()
    return WatchlistEntry(
        record.identifier(),
        attributes.get("reason", ""),
        Advice(attributes.get("advice", Advice.REFUSE.value)),
        int(attributes.get("expires_ms") or 0) or None,
        attributes.get("listed_by", ""),
        int(attributes.get("listed_at_ms") or 0),
    )


def expire_due(engine: Engine, now: int | None = None) -> tuple[int, int | None]:
    """Remove entries whose expiry has passed: (how many, the next expiry still ahead).

    Only entries with an expiry are read and parsed (the database skips the others by
    their text), so a sweep of a million entries without expiry costs one table scan in
    the database, not a million JSON objects in this process. The next expiry tells a
    sweeper when the scan can next find something (`nodes.watchlist.police`).
    """
    at = now if now is not None else now_ms()
    with engine.connect() as conn:
        rows = conn.execute(
            select(*STORED_COLUMNS).where(
                _RECORDS.c.deleted == 0, _RECORDS.c.attributes.not_like(_NO_EXPIRY)
            )
        ).all()
    expiring = [
        (entry.identifier, entry.expires_ms)
        for entry in (_entry(StoredRecord(*row)) for row in rows)
        if entry.expires_ms
    ]
    due = [identifier for identifier, expires_ms in expiring if expires_ms <= at]
    ahead = [expires_ms for _, expires_ms in expiring if expires_ms > at]
    removed = delete_records(engine, due) if due else 0
    return removed, min(ahead, default=None)


def reindex(
    engine: Engine,
    private_key: bytes,
    bucket_bits: int,
    *,
    workers: int = 0,
    progress: Progress | None = None,
) -> IndexUpdate:
    """Sweep expired entries, then bring the index up to date (the responders' code)."""
    return reindex_due(engine, private_key, bucket_bits, workers=workers, progress=progress)[0]


def reindex_due(
    engine: Engine,
    private_key: bytes,
    bucket_bits: int,
    *,
    workers: int = 0,
    progress: Progress | None = None,
    now: int | None = None,
) -> tuple[IndexUpdate, int | None]:
    """`reindex` as of `now`, and the next expiry still ahead (None: none)."""
    expired, next_expiry_ms = expire_due(engine, now)
    if expired:
        log.info("watchlist: %d expired entries removed", expired)
    update = update_index(
        engine,
        private_key,
        bucket_bits=bucket_bits,
        label_fields=LABEL_FIELDS,
        workers=workers,
        progress=progress,
    )
    return update, next_expiry_ms


def index_ready(engine: Engine, server: OprfServer, bucket_bits: int) -> str | None:
    """None if the index was built with this key, bucket size and label fields; else why not."""
    state = read_state(engine)
    if state is None:
        return "the watchlist has no index yet; run `gateway watchlist reindex`"
    if state.params != index_params(server.public_key, bucket_bits, LABEL_FIELDS):
        return (
            "the watchlist index was built under another key, bucket size or label fields; "
            "run `gateway watchlist reindex`"
        )
    if build_unfinished(state, current_version(engine)):
        return "the watchlist index is being rebuilt; ask again when it has finished"
    return None
