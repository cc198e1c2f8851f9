"""Reading the audit log back: from the broker's database, for verification and search.

Rows are streamed in index order in pages, so a log of millions of entries is read in
constant memory; the entry bytes are exactly what was hashed into the tree.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from gateway.audit.store import AuditEntryRow, CheckpointRow
from gateway.audit.tlog_proof import TlogProof, format_tlog_proof
from gateway.audit.verify import StoredCheckpoint, StoredEntry

PAGE = 5000


def count_entries(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntryRow)) or 0)


def stored_entries(engine: Engine, start: int = 0) -> Iterator[StoredEntry]:
    """Every entry from `start` on, in index order, as stored, streamed in pages."""
    query = (
        select(AuditEntryRow.idx, AuditEntryRow.leaf, AuditEntryRow.leaf_hash)
        .where(AuditEntryRow.idx >= start)
        .order_by(AuditEntryRow.idx)
        .execution_options(yield_per=PAGE)
    )
    with engine.connect() as conn, conn.execute(query) as result:
        # Closing the result (also when the reader stops early) closes the server cursor.
        for part in result.partitions():
            for idx, leaf, digest in part:
                yield StoredEntry(idx, bytes(leaf), bytes(digest))


def stored_checkpoints(engine: Engine) -> list[StoredCheckpoint]:
    with Session(engine) as session:
        rows = session.execute(
            select(CheckpointRow.size, CheckpointRow.note).order_by(CheckpointRow.size)
        ).all()
    return [StoredCheckpoint(int(size), str(note)) for size, note in rows]


@dataclass(frozen=True)
class EntryFilter:
    """Search criteria; empty fields match everything."""

    case_ref: str = ""
    node: str = ""
    kind: str = ""
    decision: str = ""
    since_ms: int = 0
    until_ms: int = 0

    def matches(self, entry: dict[str, Any]) -> bool:
        if self.case_ref and entry.get("case_ref") != self.case_ref:
            return False
        if self.kind and entry.get("kind") != self.kind.upper():
            return False
        if self.decision and entry.get("decision") != self.decision.upper():
            return False
        if self.node and self.node not in nodes_of(entry):
            return False
        at = int(entry.get("at_ms", 0))
        if self.since_ms and at < self.since_ms:
            return False
        return not (self.until_ms and at >= self.until_ms)


def nodes_of(entry: dict[str, Any]) -> set[str]:
    """The nodes an entry concerns: its sender, recipients and peer."""
    nodes = {str(entry.get(k, "")) for k in ("sender", "recipient", "peer")}
    recipients = entry.get("recipients", [])
    if isinstance(recipients, list):
        nodes.update(str(r) for r in recipients)
    nodes.discard("")
    return nodes


@dataclass(frozen=True)
class ProvenEntry:
    """An entry with its inclusion proof under a signed checkpoint (C2SP tlog-proof parts)."""

    index: int
    leaf: bytes
    hashes: tuple[bytes, ...]
    checkpoint: str

    def tlog_proof(self) -> str:
        return format_tlog_proof(TlogProof(self.index, self.hashes, self.checkpoint.encode()))
