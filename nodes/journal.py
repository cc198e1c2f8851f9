"""A node's journal: what it sent and received, the answers it gave, the broker's receipts.

Inbound messages are keyed by message id, which makes delivery idempotent: a message the
broker delivers again gets the answer that was given the first time, with no second
effect.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    BigInteger,
    Engine,
    LargeBinary,
    String,
    Table,
    Text,
    bindparam,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from gateway.batched_sql import insert_rows
from gateway.db import NodeBase
from gateway.group_commit import GroupCommitter


class InboundRow(NodeBase):
    __tablename__ = "inbound"

    message_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    sender: Mapped[str] = mapped_column(String(128), index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    case_ref: Mapped[str] = mapped_column(String(128), index=True, default="")
    reply_to: Mapped[str] = mapped_column(String(32), index=True, default="")
    received_at_ms: Mapped[int] = mapped_column(BigInteger)
    header: Mapped[bytes] = mapped_column(LargeBinary)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    answer: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    """The serialized Envelope this node answered with, returned again on redelivery."""


class OutboundRow(NodeBase):
    """A message this node submitted, with the broker's decision and audit receipt."""

    __tablename__ = "outbound"

    message_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    recipients: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    case_ref: Mapped[str] = mapped_column(String(128), index=True, default="")
    sent_at_ms: Mapped[int] = mapped_column(BigInteger)
    header: Mapped[bytes] = mapped_column(LargeBinary)
    decision: Mapped[str] = mapped_column(String(8), default="")
    leaf_index: Mapped[int] = mapped_column(BigInteger, default=-1)
    tlog_proof: Mapped[str] = mapped_column(Text, default="")


class CheckpointSeenRow(NodeBase):
    """Checkpoints of the broker's log this node has seen and checked for consistency."""

    __tablename__ = "checkpoints_seen"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    note: Mapped[str] = mapped_column(Text)
    seen_at_ms: Mapped[int] = mapped_column(BigInteger)


class Seen(NamedTuple):
    header: bytes
    answer: bytes


class InboundJournal:
    """The inbound journal's hot path: look a message up, record an answered query.

    Queries (interactive kinds) have no effect to protect, but the node still keeps
    what it was asked and what it answered before answering. Their rows are written by
    group commit with one driver-level INSERT (`gateway.batched_sql`), so concurrent
    queries share one disk flush. (Actions write their row in the transaction of their
    effects instead.)
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._table = cast(Table, InboundRow.__table__)
        self._lookup = select(InboundRow.header, InboundRow.answer).where(
            InboundRow.message_id == bindparam("message_id")
        )
        self._committer: GroupCommitter[dict[str, Any]] = GroupCommitter(self._write)

    def seen(self, message_id: str) -> Seen | None:
        with self._engine.connect() as connection:
            row = connection.execute(self._lookup, {"message_id": message_id}).first()
        return None if row is None else Seen(bytes(row[0]), bytes(row[1]))

    def record(self, values: dict[str, Any]) -> None:
        """Store one answered query; returns once it is on disk.

        A concurrent redelivery of the same query may have stored it first: that is
        not an error, as a query changes nothing.
        """
        with contextlib.suppress(IntegrityError):
            self._committer.submit(values)

    def _write(self, rows: Sequence[dict[str, Any]]) -> list[None]:
        with self._engine.begin() as connection:
            insert_rows(connection, self._table, rows)
        return [None] * len(rows)
