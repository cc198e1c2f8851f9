"""The responder's match index in its own database: one row per live record.

A row is (record id, bucket, tag, sealed label), keyed by record id: a build's workers
write their ranges of records where they belong, in record order, and an update
replaces a record's row by its key. Queries find rows through the index on the bucket
(and the label round of filter mode through the one on the tag). A full build drops
both secondary indexes and `finish_build` makes them again at the end, one sort each,
rather than placing an index entry per row as the rows come: at 100,000 records that
is 0.2 s of serial work where moving the rows from a load table into a bucket-clustered
table took 0.4 s and wrote every row twice.

On SQLite the bucket index covers the entries, so an asked bucket is still read in one
range, as from the clustered table: through a plain bucket index each of its ~16 rows
is a lookup by record id (1,000 buckets of a 10M index: 100 ms against 24 ms with the
pages in memory; a cold 1M index: 0.57 against 0.10 s). A single state row remembers
the parameters the rows were built with and the last record version they include,
which is what makes updates incremental; version 0 marks a full build that has not
finished.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import NodeBase
from gateway.envelope.build import now_ms
from gateway.matching.derive import FORMAT

__all__ = [
    "IndexEntry",
    "IndexParams",
    "IndexState",
    "fetch_buckets",
    "finish_build",
    "read_state",
    "reset_index",
    "set_version",
    "write_entries",
]

_CHUNK = 2_000
IndexEntry = tuple[int, int, bytes, bytes]
"""(bucket, record id, tag, sealed label)."""


class MatchIndexRow(NodeBase):
    __tablename__ = "match_index"
    __table_args__ = (
        # On SQLite the bucket index covers the entries, so an asked bucket is one range
        # scan of a page or two rather than ~16 random reads of the table (a cold 1M index
        # answered 1,000 buckets in 0.1 s against 0.57 s). PostgreSQL reads its heap
        # either way, and caps a B-tree entry at ~2.7 KB, which long label fields pass.
        Index("ix_match_index_bucket_entries", "bucket", "tag", "label").ddl_if(dialect="sqlite"),
        Index("ix_match_index_bucket", "bucket").ddl_if(dialect="postgresql"),
        Index("ix_match_index_tag", "tag"),
    )

    record_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    bucket: Mapped[int] = mapped_column(Integer)
    tag: Mapped[bytes] = mapped_column(LargeBinary)
    label: Mapped[bytes] = mapped_column(LargeBinary)


class MatchIndexStateRow(NodeBase):
    __tablename__ = "match_index_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket_bits: Mapped[int] = mapped_column(Integer)
    key_id: Mapped[str] = mapped_column(String(64))
    label_fields: Mapped[str] = mapped_column(String(1000))
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    format: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    """derive.FORMAT the rows were built with; rows of an older format are rebuilt."""


_ROWS = cast(Table, MatchIndexRow.__table__)
_SECONDARY = tuple(sorted(_ROWS.indexes, key=lambda index: str(index.name)))
"""The bucket and tag indexes: dropped while a full build writes, made at its end (each
`create` and `drop` skips the one meant for the other database)."""
_STATE = cast(Table, MatchIndexStateRow.__table__)


@dataclass(frozen=True)
class IndexParams:
    """What the rows depend on besides the records: a change means a full rebuild."""

    bucket_bits: int
    key_id: str
    """SHA-256 of the OPRF public key, hex: rows built under another key are useless."""
    label_fields: tuple[str, ...]
    format: int = FORMAT
    """How tags, label keys and labels were derived (`derive.FORMAT`)."""


@dataclass(frozen=True)
class IndexState:
    params: IndexParams
    version: int
    """The highest record version the rows include."""
    updated_at_ms: int


def read_state(engine: Engine) -> IndexState | None:
    with engine.connect() as conn:
        row = conn.execute(select(_STATE).where(_STATE.c.id == 1)).first()
    if row is None:
        return None
    params = IndexParams(
        row.bucket_bits, row.key_id, tuple(json.loads(row.label_fields)), int(row.format)
    )
    return IndexState(params, int(row.version), int(row.updated_at_ms))


def reset_index(engine: Engine, params: IndexParams) -> None:
    """Drop every row and the secondary indexes, and record new parameters at version 0,
    in one transaction."""
    with engine.begin() as conn:
        for index in _SECONDARY:
            index.drop(conn, checkfirst=True)
        conn.execute(delete(_ROWS))
        conn.execute(delete(_STATE))
        conn.execute(
            insert(_STATE).values(
                id=1,
                bucket_bits=params.bucket_bits,
                format=params.format,
                key_id=params.key_id,
                label_fields=json.dumps(list(params.label_fields)),
                version=0,
                updated_at_ms=now_ms(),
            )
        )


def write_entries(
    engine: Engine, entries: Sequence[IndexEntry], removed: Sequence[int], *, replace: bool = True
) -> None:
    """Write rows and drop the `removed` records' rows, in one transaction.

    Rows are inserted in record-id order, the table's key order. With `replace` (an
    update), rows of the same records are deleted first, so writing the same records
    again is harmless; a full build's freshly reset table skips that.
    """
    gone = [*(entry[1] for entry in entries), *removed] if replace else list(removed)
    with engine.begin() as conn:
        for start in range(0, len(gone), _CHUNK):
            conn.execute(delete(_ROWS).where(_ROWS.c.record_id.in_(gone[start : start + _CHUNK])))
        if entries:
            _insert_many(conn, _ROWS, sorted((r, b, t, lb) for b, r, t, lb in entries))


def _insert_many(conn: Connection, table: Table, rows: Sequence[tuple[object, ...]]) -> None:
    """Rows as tuples straight to the driver's executemany, in the table's column order:
    SQLAlchemy's per-row parameter processing cost as much as the insert itself."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    names = ", ".join(column.name for column in table.columns)
    marks = ", ".join(mark for _ in table.columns)
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", rows)


def finish_build(engine: Engine) -> None:
    """Make the bucket and tag indexes over a full build's rows, in one transaction."""
    with engine.begin() as conn:
        for index in _SECONDARY:
            index.create(conn, checkfirst=True)


def set_version(engine: Engine, version: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(_STATE).where(_STATE.c.id == 1).values(version=version, updated_at_ms=now_ms())
        )


def fetch_buckets(engine: Engine, buckets: Collection[int]) -> dict[int, list[tuple[bytes, bytes]]]:
    """bucket -> [(tag, sealed label)] for each asked bucket (empty list if it holds none)."""
    found: dict[int, list[tuple[bytes, bytes]]] = {b: [] for b in buckets}
    ordered = sorted(found)
    with engine.connect() as conn:
        for start in range(0, len(ordered), _CHUNK):
            rows = conn.execute(
                select(_ROWS.c.bucket, _ROWS.c.tag, _ROWS.c.label).where(
                    _ROWS.c.bucket.in_(ordered[start : start + _CHUNK])
                )
            )
            for bucket, tag, label in rows:
                found[bucket].append((bytes(tag), bytes(label)))
    return found
