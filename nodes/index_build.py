"""Building and updating the responder's match index from its records, over all cores.

Each record costs one OPRF evaluation (a hash to the group and a scalar multiplication,
~100 us on one core here), so a million records are spread over worker processes. The
parent only cuts the changed records into ranges of ids; each worker reads its range,
computes the rows and writes them itself, so no record or row crosses a pipe. A full
build happens the first time and whenever the key, bucket size or label fields change;
otherwise only records changed since the last update are redone (`changed_since`).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from multiprocessing.pool import AsyncResult, Pool
from typing import Any

import orjson
from sqlalchemy import Engine, event

from gateway.crypto.blinded import OprfServer
from gateway.db import make_engine
from gateway.identifiers import IdentifierKind, canonical_input_of
from gateway.matching.derive import (
    NONCE_LENGTH,
    FieldEncoder,
    bucket_of,
    check_bucket_bits,
    seal_encoded,
    tag_and_key,
)
from gateway.matching.index_store import (
    IndexEntry,
    IndexParams,
    IndexState,
    finish_build,
    read_state,
    reset_index,
    set_version,
    write_entries,
)
from nodes.records import (
    ChangedRow,
    changed_id_ranges,
    changed_rows,
    count_changed,
    current_version,
)

__all__ = [
    "HANDLE_FIELD",
    "IndexBacklog",
    "IndexUpdate",
    "Progress",
    "build_unfinished",
    "index_params",
    "key_id",
    "label_fields_of",
    "update_index",
]

HANDLE_FIELD = "handle"
"""Always in a label: the responder's id for the record, to name it in a follow-up request."""
INLINE_BELOW = 4_096
"""Fewer changed records than this are done in this process: starting workers costs more."""
CHUNK = 5_000
"""Most records per task: one read, one evaluation batch and one write transaction."""
UNIT = 250
"""Fewest records per task: the last tasks shrink towards this (`_guided`)."""
WORKER_CACHE_KIB = 131_072
"""SQLite page cache of each worker's connection: the index B-tree's hot pages."""

Progress = Callable[[int, int], None]
"""Called with (records done, records to do) as the update advances."""
_Range = tuple[int, int, int]
"""(first record id, last record id, rows in between to do)."""


class IndexBacklog(Exception):
    """More records changed than the caller was willing to index now."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} record changes are waiting to be indexed")
        self.count = count


@dataclass(frozen=True)
class IndexUpdate:
    """What one update did."""

    rebuilt: bool
    indexed: int
    removed: int
    version: int


def build_unfinished(state: IndexState, records_version: int) -> bool:
    """A full build has started (version 0) and not finished while there are records (the
    records are at `records_version`, `current_version`'s answer): its rows are partial
    and must not be answered from, nor published as a filter."""
    return state.version == 0 and records_version > 0


def key_id(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()


def index_params(public_key: bytes, bucket_bits: int, label_fields: Sequence[str]) -> IndexParams:
    """The parameters an index built with this key and configuration has."""
    check_bucket_bits(bucket_bits)
    fields = tuple(sorted(set(label_fields) - {HANDLE_FIELD}))
    return IndexParams(bucket_bits, key_id(public_key), fields)


def label_fields_of(
    record_id: int, attributes: dict[str, str], fields: Sequence[str]
) -> dict[str, str]:
    """Only the allowed attributes, plus the record handle (which no attribute overrides)."""
    label = {name: attributes[name] for name in fields if name in attributes}
    label[HANDLE_FIELD] = str(record_id)
    return label


@dataclass(frozen=True)
class _Job:
    """Everything a worker needs besides its range; sent once per worker."""

    private_key: bytes
    params: IndexParams
    since: int
    until: int
    replace: bool
    """An update: replace rows of the same records. Otherwise a full build into a freshly
    reset table, whose bucket and tag indexes are made at the end (`finish_build`)."""

    def __repr__(self) -> str:
        return f"_Job(since={self.since}, until={self.until})"


class _Worker:
    """Reads a range of changed records, computes their rows, writes them."""

    def __init__(
        self, job: _Job, engine: Engine, write_lock: AbstractContextManager[object]
    ) -> None:
        self.job = job
        self.engine = engine
        self.write_lock = write_lock
        self.server = OprfServer(job.private_key)
        self.encoder = FieldEncoder((*job.params.label_fields, HANDLE_FIELD))

    def entries(self, rows: Sequence[ChangedRow]) -> list[IndexEntry]:
        """One row of the index per record: bucket, id, tag and sealed label.

        The label holds the allowed attributes and the record handle (`label_fields_of`),
        encoded by the worker's `FieldEncoder`; the chunk's nonces are drawn at once. The
        attributes are parsed with orjson: the standard library's parser cost 4 us a
        record, more than all the rest of the label.
        """
        bits = self.job.params.bucket_bits
        for kind in {row[1] for row in rows}:
            IdentifierKind(kind)  # a stored kind this code does not know fails the build
        inputs = [canonical_input_of(kind, value) for _, kind, value, _, _ in rows]
        outputs = self.server.evaluate(inputs)
        nonces = os.urandom(NONCE_LENGTH * len(rows))
        encode = self.encoder.encode
        entries: list[IndexEntry] = []
        at = 0
        for (record_id, _, _, attributes, _), x, y in zip(rows, inputs, outputs, strict=True):
            tag, key = tag_and_key(y)
            fields = orjson.loads(attributes)
            fields[HANDLE_FIELD] = str(record_id)
            label = seal_encoded(key, encode(fields), nonces[at : at + NONCE_LENGTH])
            at += NONCE_LENGTH
            entries.append((bucket_of(x, bits), record_id, tag, label))
        return entries

    def run(self, span: _Range) -> tuple[int, int]:
        """Index one range; returns how many of its rows were live and how many removed."""
        first, last, _ = span
        job = self.job
        rows = changed_rows(self.engine, job.since, job.until, first, last)
        entries = self.entries([row for row in rows if not row[4]])
        removed = [row[0] for row in rows if row[4]]
        with self.write_lock:
            write_entries(self.engine, entries, removed, replace=job.replace)
        return len(entries), len(removed)


_worker: _Worker | None = None


def _init_worker(job: _Job, database_url: str, write_lock: AbstractContextManager[object]) -> None:
    global _worker
    engine = make_engine(database_url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _bulk_pragmas)
    _worker = _Worker(job, engine, write_lock)


def _bulk_pragmas(dbapi_conn: Any, _record: object) -> None:
    """A worker's own SQLite connection: no fsync per chunk, a page cache for the B-tree.

    In WAL mode, synchronous=NORMAL keeps the database consistent and only delays
    durability, and the rows are durable before the index counts them: the parent's
    `set_version` commits with synchronous=FULL after every worker's commit, and syncing
    the log file syncs the frames written before it. A crash before that redoes the
    update, as it would anyway.
    """
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA cache_size=-{WORKER_CACHE_KIB}")
    cursor.close()


def _run(span: _Range) -> tuple[int, int]:
    assert _worker is not None, "worker not initialised"
    return _worker.run(span)


def update_index(
    engine: Engine,
    private_key: bytes,
    *,
    bucket_bits: int,
    label_fields: Sequence[str],
    workers: int = 0,
    progress: Progress | None = None,
    max_changes: int | None = None,
) -> IndexUpdate:
    """Bring the index up to date with the records; rebuild it if its parameters changed.

    `workers` = 0 uses every core. Safe to run again after an interruption: rows are
    replaced by record id, and the state's version moves only once all rows are written.
    With `max_changes`, raises `IndexBacklog` instead of starting a larger update.
    """
    params = index_params(OprfServer(private_key).public_key, bucket_bits, label_fields)
    state = read_state(engine)
    # Version 0 is a full build that never finished: its rows are partial.
    rebuilt = state is None or state.params != params or state.version == 0
    since = 0 if rebuilt or state is None else state.version
    until = current_version(engine)
    if not rebuilt and since == until:  # nothing changed: no scan of the records at all
        if progress is not None:
            progress(0, 0)
        return IndexUpdate(False, 0, 0, until)
    total = count_changed(engine, since, until)
    if max_changes is not None and total > max_changes:
        raise IndexBacklog(total)
    if rebuilt:
        reset_index(engine, params)
    job = _Job(private_key, params, since, until, replace=not rebuilt)
    workers = workers or os.cpu_count() or 1
    spans = _guided(changed_id_ranges(engine, since, until, UNIT), total, workers)
    if progress is not None:
        progress(0, total)
    if (
        workers == 1
        or total < INLINE_BELOW
        or "fork" not in multiprocessing.get_all_start_methods()
    ):
        worker = _Worker(job, engine, nullcontext())
        done = _follow((worker.run(span) for span in spans), total, progress)
    else:
        # fork, not spawn: `python -m gateway` has no __main__ guard for spawn to re-import.
        # Workers open their own database connections, and the parent's pooled ones are
        # closed first: SQLite must not carry an open connection across fork(). One writer
        # at a time, queued on a lock: SQLite's own busy wait sleeps up to 100 ms.
        engine.dispose()
        url = engine.url.render_as_string(hide_password=False)
        context = multiprocessing.get_context("fork")
        setup = (job, url, context.Lock())
        with context.Pool(workers, _init_worker, setup) as pool:
            done = _follow(_windowed(pool, spans, 2 * workers), total, progress)
    if rebuilt:
        finish_build(engine)
    set_version(engine, until)
    live, removed = done
    return IndexUpdate(rebuilt, live, removed, until)


def _guided(units: Iterator[_Range], total: int, workers: int) -> Iterator[_Range]:
    """Consecutive ranges of `UNIT` records merged into tasks of a share of what is left.

    Each task takes about 1/(2 x workers) of the records still to hand out, at most
    `CHUNK`: large tasks while there is plenty to do, small ones at the end, so that no
    worker sits idle for most of a large task while another finishes it (with 5,000-record
    tasks throughout, that tail cost a core half a second per build).
    """
    left = total
    first = last = rows = 0
    for unit_first, unit_last, unit_rows in units:
        if not rows:
            first = unit_first
        last, rows = unit_last, rows + unit_rows
        if rows >= min(CHUNK, max(UNIT, left // (2 * workers))):
            yield first, last, rows
            left -= rows
            rows = 0
    if rows:
        yield first, last, rows


def _windowed(pool: Pool, spans: Iterator[_Range], window: int) -> Iterator[tuple[int, int]]:
    """Results as ranges finish in order, at most `window` in flight: memory stays bounded."""
    pending: deque[AsyncResult[tuple[int, int]]] = deque()
    for span in spans:
        pending.append(pool.apply_async(_run, (span,)))
        if len(pending) >= window:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def _follow(
    counts: Iterator[tuple[int, int]], total: int, progress: Progress | None
) -> tuple[int, int]:
    """(live rows indexed, removed rows dropped) over every range, reporting progress."""
    live = removed = 0
    for indexed, dropped in counts:
        live, removed = live + indexed, removed + dropped
        if progress is not None:
            progress(live + removed, total)
    return live, removed
