"""The broker's append-only audit log: database rows, an RFC 9162 tree, signed checkpoints.

Entries are appended inside the caller's database transaction, so an entry exists if
and only if what it records was stored. The in-memory tree follows the committed rows.
Appends are optimistic: the entries' primary key stops two writers (broker replicas, or a
restarted broker overlapping the old one) from taking the same index, and entries are
gap-free, so a writer that missed another's entries always clashes on the first of them;
it then reads what the other committed and tries again on top of it, locking the entries
table for that one transaction, so its append cannot fail because others are busy. While
another writer is busy (several broker processes under load) it locks first for a while
(`CONTENDED_S`) instead of losing race after race.

`run(work)` is the only way in: the work of every request waiting at that moment shares
one database transaction, one signed checkpoint and one commit (`gateway.group_commit`;
if one piece of work fails, the group is retried one piece per transaction, so only that
piece fails). Sharing the disk flush is what lets the broker acknowledge hundreds of
messages a second without weakening durability: nobody is answered before their entry
and checkpoint are on disk.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, Engine, Table, delete, false, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway.audit.checkpoint import Checkpoint, format_checkpoint
from gateway.audit.merkle import MerkleTree, leaf_hash
from gateway.audit.note import NoteSigner, sign_note
from gateway.audit.store import AuditEntryRow, CheckpointRow
from gateway.audit.tlog_proof import TlogProof, format_tlog_proof
from gateway.batched_sql import insert_rows, pipelined
from gateway.db import BrokerBase
from gateway.envelope.build import now_ms
from gateway.group_commit import GroupCommitter

CONTENDED_S = 1.0
"""After losing a race, commits lock first for this long: while another writer is busy
(a second broker process), an optimistic attempt mostly loses again, and each loss
costs the group's work, a rollback and a new connection."""
WRITER_IDLE_S = 1.0
"""A commit connection idle longer than this goes back to the pool, whose pre-ping then
proves the next one alive (after a database restart, say); under load none is needed."""
_ENTRIES = cast(Table, AuditEntryRow.__table__)
_CHECKPOINTS = cast(Table, CheckpointRow.__table__)

T = TypeVar("T")


def canonical_json(entry: dict[str, Any]) -> bytes:
    """Sorted keys, no spaces, UTF-8: the exact bytes that are hashed into the tree."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class Append:
    """Stages one transaction's audit entries (`append(entry)`) and plain rows (`row`).

    Both are written at the end of the transaction with one multi-row INSERT per table,
    not one ORM object each: on the broker's hot path the ORM's per-object bookkeeping
    cost more CPU than everything else a message needs.
    """

    def __init__(self, base: int) -> None:
        self.base = base
        self.digests: list[bytes] = []
        self._entries: list[dict[str, Any]] = []
        self._rows: dict[type[BrokerBase], list[dict[str, Any]]] = {}

    def __call__(self, entry: dict[str, Any]) -> int:
        """Stage an audit entry; returns the index it will have in the log."""
        index = self.base + len(self.digests)
        data = canonical_json(entry)
        digest = leaf_hash(data)
        self._entries.append(
            {"idx": index, "leaf": data, "leaf_hash": digest, "at_ms": int(entry.get("at_ms", 0))}
        )
        self.digests.append(digest)
        return index

    def row(self, model: type[BrokerBase], **values: Any) -> dict[str, Any]:
        """Stage a row of `model` (unset columns take their defaults); returns its values.

        The returned dict may still be changed until the transaction ends. Tables are
        written in the order they were first staged in.
        """
        self._rows.setdefault(model, []).append(values)
        return values

    def write(self, connection: Connection) -> None:
        for model, rows in self._rows.items():
            insert_rows(connection, cast(Table, model.__table__), rows)
        insert_rows(connection, _ENTRIES, self._entries)


def _lock_entries(connection: Connection) -> None:
    """Keep other writers from appending until this transaction ends.

    PostgreSQL: a table lock that conflicts with every INSERT and with itself, and waits
    for the writers already inserting. SQLite: any writing statement takes the file's
    one write lock (waiting up to the connection's busy timeout), so delete nothing.
    """
    if connection.dialect.name == "postgresql":
        table = connection.dialect.identifier_preparer.format_table(_ENTRIES)
        connection.execute(text(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE"))
    else:
        connection.execute(delete(_ENTRIES).where(false()))


class _SessionOnDemand:
    """The ORM session a group's work may use, on the group's connection, opened at its
    first use: most work (a message and its entry) only stages rows through `Append`,
    and opening, flushing and closing an unused session cost about 40 us a commit."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._session: Session | None = None

    def __getattr__(self, name: str) -> Any:
        if self._session is None:
            self._session = Session(bind=self._connection, expire_on_commit=False)
        return getattr(self._session, name)

    def flush(self) -> None:
        if self._session is not None:
            self._session.flush()

    def close(self) -> None:
        if self._session is not None:
            self._session.close()


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
        self._committer: GroupCommitter[Callable[[Session, Append], Any]] = GroupCommitter(
            self._commit
        )
        self._writer: Connection | None = None
        self._writer_used = 0.0
        self._contended_until = 0.0
        with self._sessions() as session:
            self._catch_up(session)

    @property
    def size(self) -> int:
        return self._tree.size

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session

    # -- group commit --------------------------------------------------------------------

    def run(self, work: Callable[[Session, Append], T]) -> T:
        """Run `work(session, append)` in a shared transaction; return once committed.

        Every request waiting at that moment shares the transaction, one signed
        checkpoint and one disk flush (`gateway.group_commit`). Exceptions raised by
        `work` (including a database error on its own writes) are raised here; other
        work sharing the commit is unaffected. `work` may run more than once (alone, after
        its group failed; again, after another writer took the next index), so it reads
        through the session and stages through `append`, and has no other effect. It runs
        with the commit locks held: it must not call `run` again (the group commit lock is
        not re-entrant) nor make any remote call (docs/locks.md).
        """
        result: T = self._committer.submit(work)
        return result

    def _commit(self, group: Sequence[Callable[[Session, Append], Any]]) -> list[Any]:
        """One transaction for the whole group, retried on top of another writer's entries.

        On any failure the tree is cut back to the committed entries. A clash on a key is
        the work's own (a replayed message id) unless another writer had appended: then
        its entries are read and the group tried again under a lock that keeps the other
        writers out, so that the attempt cannot lose the race. For `CONTENDED_S` after a
        lost race every commit takes that lock first.
        """
        with self._lock:
            for attempt in range(2):
                locked = attempt == 1 or time.monotonic() < self._contended_until
                size_before = self._tree.size
                try:
                    values, note = self._commit_on(self._writer_connection(), group, locked)
                except IntegrityError:
                    self._abandon(size_before)
                    if locked or not self._caught_up():
                        raise
                    self._contended_until = time.monotonic() + CONTENDED_S
                    continue
                except Exception:
                    self._abandon(size_before)
                    raise
                if note:
                    with self._state:
                        self._latest_note, self._latest_size = note, self._tree.size
                return values
            raise AssertionError("unreachable: the locked attempt returns or raises")

    def _abandon(self, size: int) -> None:
        """After a failed commit: drop its connection and its leaves from the tree."""
        self._release_writer()
        with self._state:
            self._tree.truncate(size)

    def _caught_up(self) -> bool:
        """Read entries other writers committed; True if there were any."""
        size = self._tree.size
        with self._sessions() as session:
            self._catch_up(session)
        return self._tree.size > size

    def _writer_connection(self) -> Connection:
        """The connection group commits run on, kept between commits (they run one at a
        time) so that a busy log skips the pool's checkout and liveness round trip."""
        now = time.monotonic()
        if self._writer is not None and (
            self._writer.invalidated or now - self._writer_used > WRITER_IDLE_S
        ):
            self._release_writer()
        if self._writer is None:
            self._writer = self.engine.connect()
        self._writer_used = now
        return self._writer

    def _release_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def close(self) -> None:
        """Return the commit connection to the pool (the log can still be used)."""
        with self._lock:
            self._release_writer()

    def _commit_on(
        self,
        connection: Connection,
        group: Sequence[Callable[[Session, Append], Any]],
        locked: bool = False,
    ) -> tuple[list[Any], str]:
        """Run the group's work, then send its rows, checkpoint and commit as one batch.

        The ORM session the work may use joins the connection's transaction and only
        flushes: committing through the connection skips the ORM's commit bookkeeping.
        `locked`: first take the lock that stops other writers appending until this
        commit, then read what they committed before it.
        """
        with connection.begin() as transaction:
            if locked:
                _lock_entries(connection)
                self._catch_up(connection)
            session = _SessionOnDemand(connection)
            try:
                append = Append(self._tree.size)
                values = [work(cast(Session, session), append) for work in group]
                session.flush()
            finally:
                session.close()
            with pipelined(connection):
                append.write(connection)
                note = ""
                if append.digests:
                    with self._state:
                        self._tree.extend(append.digests)
                    note = self._stage_checkpoint(connection)
                transaction.commit()
        return values, note

    def _stage_checkpoint(self, connection: Connection) -> str:
        """Sign the tree as it is after this group, stored in the group's commit."""
        size = self._tree.size
        body = Checkpoint(origin=self.origin, size=size, root_hash=self._tree.root(size))
        note = sign_note(format_checkpoint(body), [self._signer]).decode()
        insert_rows(
            connection, _CHECKPOINTS, [{"size": size, "note": note, "at_ms": self._clock_ms()}]
        )
        return note

    def _catch_up(self, connection: Connection | Session) -> None:
        """Add rows committed by another process (a replica, or before a restart)."""
        rows = connection.execute(
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
        return self.receipt_since(index, 0)[0]

    def receipt_since(self, index: int, seen_size: int) -> tuple[str, list[bytes]]:
        """`receipt(index)` and the consistency proof from the tree of `seen_size` entries
        to its checkpoint (empty unless 0 < `seen_size` < the checkpoint's size): all a
        submitter needs to accept the checkpoint, read under one lock, in one reply."""
        extends: list[bytes] = []
        with self._state:
            note, size = self._latest_note, self._latest_size
            proof = self._tree.inclusion_proof(index, size) if size > index else None
            if proof is not None:
                extends = self._consistency_within(seen_size, size)
        if proof is None:
            note = self.checkpoint()
            with self._state:
                size = self._latest_size
                proof = self._tree.inclusion_proof(index, size)
                extends = self._consistency_within(seen_size, size)
        text = format_tlog_proof(
            TlogProof(index=index, hashes=tuple(proof), checkpoint=note.encode())
        )
        return text, extends

    def _consistency_within(self, old_size: int, new_size: int) -> list[bytes]:
        """The consistency proof old -> new if 0 < old < new, else none. `_state` held."""
        if not 0 < old_size < new_size:
            return []
        return self._tree.consistency_proof(old_size, new_size)

    def inclusion(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of entry `index` in the tree of the first `size` entries."""
        with self._state:
            return self._tree.inclusion_proof(index, size)

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
