"""A node's journal: what it sent and received, the answers it gave, the broker's receipts.

Inbound messages are keyed by message id, which makes delivery idempotent: a message the
broker delivers again gets the answer that was given the first time, with no second
effect.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import NodeBase


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
