"""The responder's match index in its own database: one row per live record.

A row is (bucket, record id, tag, sealed label); the table is clustered by bucket
(SQLite WITHOUT ROWID) so that answering a query reads each asked bucket in one range
scan. A full build does not insert into it row by row (random buckets touch a random
page each, and at 10M rows every chunk rewrote most of the table): workers append to a
load table keyed by record id, and `publish_loaded` moves the rows over in bucket order
at the end, in one transaction. A single state row remembers the parameters the rows were built with and the last
record version they include, which is what makes updates incremental.
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
    "load_entries",
    "publish_loaded",
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
        Index("ix_match_index_record", "record_id", unique=True),
        {"sqlite_with_rowid": False},
    )

    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tag: Mapped[bytes] = mapped_column(LargeBinary)
    label: Mapped[bytes] = mapped_column(LargeBinary)


class MatchIndexLoadRow(NodeBase):
    """A full build's rows before `publish_loaded`: appended in record-id order."""

    __tablename__ = "match_index_load"

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
_LOAD = cast(Table, MatchIndexLoadRow.__table__)
(_RECORD_INDEX,) = (index for index in _ROWS.indexes if index.name == "ix_match_index_record")
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
    """Drop every row and record new parameters at version 0, in one transaction."""
    with engine.begin() as conn:
        conn.execute(delete(_ROWS))
        conn.execute(delete(_LOAD))
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

    Rows are inserted in (bucket, record id) order, the table's clustering order.
    With `replace` (an update), rows of the same records are deleted first, so writing
    the same records again is harmless; a freshly reset table can skip that.
    """
    gone = [*(entry[1] for entry in entries), *removed] if replace else list(removed)
    with engine.begin() as conn:
        for start in range(0, len(gone), _CHUNK):
            conn.execute(delete(_ROWS).where(_ROWS.c.record_id.in_(gone[start : start + _CHUNK])))
        if entries:
            _insert_many(conn, _ROWS, sorted(entries))


def _insert_many(conn: Connection, table: Table, rows: Sequence[tuple[object, ...]]) -> None:
    """Rows as tuples straight to the driver's executemany, in the table's column order:
    SQLAlchemy's per-row parameter processing cost as much as the insert itself."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    names = ", ".join(column.name for column in table.columns)
    marks = ", ".join(mark for _ in table.columns)
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", rows)


def load_entries(engine: Engine, entries: Sequence[IndexEntry]) -> None:
    """Append a full build's rows to the load table, in one transaction."""
    if entries:
        with engine.begin() as conn:
            _insert_many(conn, _LOAD, sorted((r, b, t, lb) for b, r, t, lb in entries))


def publish_loaded(engine: Engine) -> int:
    """Move the loaded rows into the index in bucket order, in one transaction; how many.

    The record-id index is dropped and made again around the move: filled in bucket
    order it would take a random page per row, built afresh it is one sort.
    """
    with engine.begin() as conn:
        _RECORD_INDEX.drop(conn)
        moved = conn.execute(
            insert(_ROWS).from_select(
                ["bucket", "record_id", "tag", "label"],
                select(_LOAD.c.bucket, _LOAD.c.record_id, _LOAD.c.tag, _LOAD.c.label).order_by(
                    _LOAD.c.bucket, _LOAD.c.record_id
                ),
            )
        ).rowcount
        _RECORD_INDEX.create(conn)
        conn.execute(delete(_LOAD))
    return int(moved)


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
