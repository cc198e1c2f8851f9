"""The broker's append-only audit log: database rows, an RFC 9162 tree, signed checkpoints.

Entries are appended inside the caller's database transaction, so an entry exists if
and only if what it records was stored. The in-memory tree follows the committed rows;
before each append the log reads any rows another broker replica committed (under a
PostgreSQL advisory lock, so replicas append one at a time).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from gateway.audit.checkpoint import Checkpoint, format_checkpoint
from gateway.audit.merkle import MerkleTree, leaf_hash
from gateway.audit.note import NoteSigner, sign_note
from gateway.audit.store import AuditEntryRow, CheckpointRow
from gateway.audit.tlog_proof import TlogProof, format_tlog_proof
from gateway.envelope.build import now_ms

ADVISORY_LOCK_KEY = 0x6761746577617921  # "gateway!": serialises appends across replicas

Append = Callable[[dict[str, Any]], int]


def canonical_json(entry: dict[str, Any]) -> bytes:
    """Sorted keys, no spaces, UTF-8: the exact bytes that are hashed into the tree."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class AuditLog:
    """Appends entries, signs checkpoints, and proves inclusion and consistency."""

    def __init__(
        self,
        engine: Engine,
        signer: NoteSigner,
        origin: str,
        *,
        clock_ms: Callable[[], int] = now_ms,
    ) -> None:
        self.engine = engine
        self.origin = origin
        self._signer = signer
        self._clock_ms = clock_ms
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._lock = threading.RLock()
        self._tree = MerkleTree()
        self._latest_note = ""
        self._latest_size = -1
        with self._sessions() as session:
            self._catch_up(session)

    @property
    def size(self) -> int:
        return self._tree.size

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session

    @contextmanager
    def transaction(self) -> Iterator[tuple[Session, Append]]:
        """A transaction in which `append(entry)` adds audit entries; all or nothing."""
        with self._lock, self._sessions() as session:
            if self.engine.dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
            self._catch_up(session)
            pending: list[bytes] = []
            base = self._tree.size

            def append(entry: dict[str, Any]) -> int:
                index = base + len(pending)
                data = canonical_json(entry)
                digest = leaf_hash(data)
                session.add(
                    AuditEntryRow(
                        idx=index, leaf=data, leaf_hash=digest, at_ms=int(entry.get("at_ms", 0))
                    )
                )
                pending.append(digest)
                return index

            yield session, append
            session.commit()
            for digest in pending:
                self._tree.append(digest)

    def _catch_up(self, session: Session) -> None:
        """Add rows committed by another process (a replica, or before a restart)."""
        rows = session.execute(
            select(AuditEntryRow.idx, AuditEntryRow.leaf_hash)
            .where(AuditEntryRow.idx >= self._tree.size)
            .order_by(AuditEntryRow.idx)
        ).all()
        for idx, digest in rows:
            if idx != self._tree.size:
                raise RuntimeError(f"audit log has a gap before entry {idx}")
            self._tree.append(bytes(digest))

    # -- checkpoints and proofs --------------------------------------------------------

    def checkpoint(self) -> str:
        """The signed checkpoint of the current tree, signing a new one if it grew."""
        with self._lock:
            with self._sessions() as session:
                self._catch_up(session)
            size = self._tree.size
            if size == self._latest_size:
                return self._latest_note
            body = Checkpoint(origin=self.origin, size=size, root_hash=self._tree.root(size))
            note = sign_note(format_checkpoint(body), [self._signer]).decode()
            with self._sessions() as session:
                if session.get(CheckpointRow, size) is None:
                    session.add(CheckpointRow(size=size, note=note, at_ms=self._clock_ms()))
                    session.commit()
                else:
                    note = session.get(CheckpointRow, size).note  # type: ignore[union-attr]
            self._latest_note, self._latest_size = note, size
            return note

    def receipt(self, index: int) -> str:
        """A C2SP tlog-proof of entry `index` under the latest checkpoint."""
        note = self.checkpoint()
        with self._lock:
            size = self._latest_size
            proof = self._tree.inclusion_proof(index, size)
        return format_tlog_proof(
            TlogProof(index=index, hashes=tuple(proof), checkpoint=note.encode())
        )

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        with self._lock:
            return self._tree.consistency_proof(old_size, new_size)

    def read(self, start: int, limit: int) -> list[tuple[int, bytes]]:
        with self._sessions() as session:
            rows = session.execute(
                select(AuditEntryRow.idx, AuditEntryRow.leaf)
                .where(AuditEntryRow.idx >= start)
                .order_by(AuditEntryRow.idx)
                .limit(limit)
            ).all()
        return [(int(i), bytes(leaf)) for i, leaf in rows]
