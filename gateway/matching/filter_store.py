"""The police node's copies of responders' filters, and transfers under way, in its database.

A verified state is stored encoded (a few MB per million records); a transfer keeps its
signed statement and every chunk verified so far, so a sync interrupted by a restart
resumes at the next chunk. Everything is checked again when loaded: the database is not
trusted more than the broker.
"""

from __future__ import annotations

from typing import cast

from google.protobuf.message import DecodeError
from sqlalchemy import (
    BigInteger,
    Engine,
    Integer,
    LargeBinary,
    String,
    Table,
    delete,
    insert,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import NodeBase
from gateway.envelope.build import now_ms
from gateway.matching.filter import TagFilter
from gateway.matching.filter_sync import FilterReplica, SyncError
from gateway.v1 import filter_pb2 as fpb

__all__ = ["chunk_of", "load_replica", "save_chunk", "save_state", "sync_status"]


class FilterReplicaRow(NodeBase):
    __tablename__ = "filter_replicas"

    responder: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    digest: Mapped[bytes] = mapped_column(LargeBinary)
    encoded: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)


class FilterTransferChunkRow(NodeBase):
    __tablename__ = "filter_transfer_chunks"

    responder: Mapped[str] = mapped_column(String(128), primary_key=True)
    chunk_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    signed: Mapped[bytes] = mapped_column(LargeBinary)
    """The signed statement the chunk belongs to, on every row, so that rows of two
    statements are recognised and dropped."""
    data: Mapped[bytes] = mapped_column(LargeBinary)


_STATES = cast(Table, FilterReplicaRow.__table__)
_CHUNKS = cast(Table, FilterTransferChunkRow.__table__)


def save_state(engine: Engine, replica: FilterReplica) -> None:
    """Store the replica's verified state and drop its finished transfer, in one transaction."""
    if replica.state is None:
        raise SyncError("there is no verified filter to store")
    with engine.begin() as conn:
        conn.execute(delete(_STATES).where(_STATES.c.responder == replica.responder))
        conn.execute(delete(_CHUNKS).where(_CHUNKS.c.responder == replica.responder))
        conn.execute(
            insert(_STATES).values(
                responder=replica.responder,
                version=replica.version,
                digest=replica.state.digest(),
                encoded=replica.state.encode(),
                updated_at_ms=now_ms(),
            )
        )


def save_chunk(engine: Engine, responder: str, signed: bytes, index: int, chunk: bytes) -> None:
    """Keep a chunk the replica has just verified (add_chunk returned without error)."""
    with engine.begin() as conn:
        if index == 0:
            conn.execute(delete(_CHUNKS).where(_CHUNKS.c.responder == responder))
        conn.execute(
            insert(_CHUNKS).values(
                responder=responder, chunk_index=index, signed=signed, data=chunk
            )
        )


def load_replica(
    engine: Engine, *, responder: str, recipient: str, responder_key: bytes
) -> FilterReplica:
    """The replica as stored, its transfer resumed; a stored state that fails its digest,
    or a transfer that no longer verifies, is dropped (the next sync starts afresh)."""
    replica = FilterReplica(responder=responder, recipient=recipient, responder_key=responder_key)
    with engine.connect() as conn:
        row = conn.execute(select(_STATES).where(_STATES.c.responder == responder)).first()
        chunks = conn.execute(
            select(_CHUNKS.c.signed, _CHUNKS.c.data)
            .where(_CHUNKS.c.responder == responder)
            .order_by(_CHUNKS.c.chunk_index)
        ).all()
    if row is not None:
        try:
            state = TagFilter.decode(bytes(row.encoded))
        except ValueError:
            state = None
        if state is not None and state.digest() == bytes(row.digest):
            replica.restore(state, int(row.version))
    if chunks:
        signed = bytes(chunks[0].signed)
        try:
            replica.begin(signed)
            for stored in chunks:
                if bytes(stored.signed) != signed:
                    raise SyncError("stored chunks of two statements")
                replica.add_chunk(bytes(stored.data))
        except SyncError:
            replica.abandon()
    return replica


def chunk_of(chunk: bytes) -> int:
    """The index a FilterChunk carries (for save_chunk)."""
    return fpb.FilterChunk.FromString(chunk).index


def sync_status(engine: Engine) -> list[dict[str, object]]:
    """One row per responder: held version, its size, when, and the transfer under way."""
    rows: dict[str, dict[str, object]] = {}
    with engine.connect() as conn:
        for row in conn.execute(select(_STATES)):
            rows[row.responder] = {
                "responder": row.responder,
                "version": int(row.version),
                "bytes": len(row.encoded),
                "updated_at": int(row.updated_at_ms),
                "transfer": "",
            }
        chunks: dict[str, tuple[bytes, int]] = {}
        for responder, signed in conn.execute(select(_CHUNKS.c.responder, _CHUNKS.c.signed)):
            held = chunks.get(responder)
            chunks[responder] = (bytes(signed), (held[1] if held else 0) + 1)
    for responder, (signed, received) in chunks.items():
        try:
            statement = fpb.FilterStatement.FromString(
                fpb.SignedFilterStatement.FromString(signed).statement
            )
            total = len(statement.chunk_digests)
            text = f"version {statement.to_version}: {received}/{total} chunks"
        except DecodeError:
            text = "unreadable transfer (dropped at next sync)"
        entry = rows.setdefault(
            responder,
            {"responder": responder, "version": 0, "bytes": 0, "updated_at": 0},
        )
        entry["transfer"] = text
    return [rows[r] for r in sorted(rows)]
