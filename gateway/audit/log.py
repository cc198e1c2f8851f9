"""The broker's append-only audit log: database rows, an RFC 9162 tree, signed checkpoints.

Entries are appended inside the caller's database transaction, so an entry exists if
and only if what it records was stored. The in-memory tree follows the committed rows;
before each append the log reads any rows another broker replica committed (under a
PostgreSQL advisory lock, so replicas append one at a time).

`run(work)` is the fast path: a committer thread gathers the work of every request
waiting at that moment into one database transaction, signs one checkpoint for the
result, and commits once (if one piece of work fails, the group is retried one piece
per transaction, so only that piece fails). A durable commit costs a disk flush (about 4 ms here); sharing it is
what lets the broker acknowledge hundreds of messages a second without weakening
durability: nobody is answered before their entry and checkpoint are on disk.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

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
T = TypeVar("T")
MAX_GROUP = 256
"""At most this many pieces of work share one commit."""


@dataclass
class _Work(Generic[T]):
    work: Callable[[Session, Append], T]
    done: Future[T] = field(default_factory=Future)


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
        self._state = threading.Lock()
        """Guards the tree and the latest note for readers; held only for moments."""
        self._tree = MerkleTree()
        self._latest_note = ""
        self._latest_size = -1
        self._queue: queue.SimpleQueue[_Work[Any] | None] = queue.SimpleQueue()
        self._committer: threading.Thread | None = None
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
            with self._state:
                for digest in pending:
                    self._tree.append(digest)

    # -- group commit --------------------------------------------------------------------

    def run(self, work: Callable[[Session, Append], T]) -> T:
        """Run `work(session, append)` in a shared transaction; return once committed.

        Exceptions raised by `work` (including a database error on its own writes)
        are raised here; other work sharing the commit is unaffected.
        """
        item: _Work[T] = _Work(work)
        with self._lock:
            if self._committer is None:
                self._committer = threading.Thread(
                    target=self._commit_loop, name="audit-commit", daemon=True
                )
                self._committer.start()
        self._queue.put(item)
        return item.done.result()

    def close(self) -> None:
        """Stop the committer after the work already queued."""
        if self._committer is not None:
            self._queue.put(None)
            self._committer.join(timeout=10)
            self._committer = None

    def _commit_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group: list[_Work[Any]] = [first]
            stop = False
            while len(group) < MAX_GROUP:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                group.append(item)
            self._commit_group(group)
            if stop:
                return

    def _commit_group(self, group: list[_Work[Any]]) -> None:
        """All the group's work in one transaction; if any piece fails, each alone.

        A failure (a replayed message id, say) rolls the shared transaction back; the
        pieces are then run one transaction each, so only the failing one fails.
        """
        try:
            values = self._commit(group)
        except Exception as exc:
            if len(group) == 1:
                group[0].done.set_exception(exc)
                return
            for item in group:
                self._commit_group([item])
            return
        for item, value in zip(group, values, strict=True):
            item.done.set_result(value)

    def _commit(self, group: list[_Work[Any]]) -> list[Any]:
        with self._lock, self._sessions() as session:
            if self.engine.dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
            self._catch_up(session)
            base = self._tree.size
            pending: list[bytes] = []

            def append(entry: dict[str, Any]) -> int:
                return self._stage(session, base, pending, entry)

            values = [item.work(session, append) for item in group]
            session.flush()
            if not pending:
                session.commit()
                return values
            with self._state:
                self._tree.extend(pending)
            try:
                note = self._stage_checkpoint(session)
                session.commit()
            except Exception:
                self._reload()
                raise
            with self._state:
                self._latest_note, self._latest_size = note, self._tree.size
            return values

    def _stage(
        self, session: Session, base: int, pending: list[bytes], entry: dict[str, Any]
    ) -> int:
        index = base + len(pending)
        data = canonical_json(entry)
        digest = leaf_hash(data)
        session.add(
            AuditEntryRow(idx=index, leaf=data, leaf_hash=digest, at_ms=int(entry.get("at_ms", 0)))
        )
        pending.append(digest)
        return index

    def _stage_checkpoint(self, session: Session) -> str:
        """Sign the tree as it is after this group, stored in the group's commit."""
        size = self._tree.size
        body = Checkpoint(origin=self.origin, size=size, root_hash=self._tree.root(size))
        note = sign_note(format_checkpoint(body), [self._signer]).decode()
        session.add(CheckpointRow(size=size, note=note, at_ms=self._clock_ms()))
        return note

    def _reload(self) -> None:
        """Rebuild the tree from committed rows (after a commit that failed)."""
        with self._state:
            self._tree = MerkleTree()
        with self._sessions() as session:
            self._catch_up(session)

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
            with self._state:
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
            with self._state:
                self._latest_note, self._latest_size = note, size
            return note

    def receipt(self, index: int) -> str:
        """A C2SP tlog-proof of entry `index` under the latest checkpoint.

        The group commit that stored the entry also signed a checkpoint covering it, so
        this normally reads that one without waiting for the next commit.
        """
        with self._state:
            note, size = self._latest_note, self._latest_size
            proof = self._tree.inclusion_proof(index, size) if size > index else None
        if proof is None:
            note = self.checkpoint()
            with self._state:
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
