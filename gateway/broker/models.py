"""The broker's tables: messages it accepted, its outbox, and each request's lifecycle.

The broker stores headers, signatures and (sealed or blinded) payloads; it never holds
a raw identifier, since identifiers only reach it sealed to their recipient.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import BrokerBase


class MessageRow(BrokerBase):
    """Every envelope the broker accepted; the primary key is also the replay guard."""

    __tablename__ = "messages"

    message_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    sender: Mapped[str] = mapped_column(String(128), index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    case_ref: Mapped[str] = mapped_column(String(128), index=True, default="")
    recipients: Mapped[str] = mapped_column(Text)
    reply_to: Mapped[str] = mapped_column(String(32), index=True, default="")
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    expires_at_ms: Mapped[int] = mapped_column(BigInteger)
    received_at_ms: Mapped[int] = mapped_column(BigInteger)
    header: Mapped[bytes] = mapped_column(LargeBinary)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(32), default="requested")
    audit_index: Mapped[int] = mapped_column(BigInteger, default=-1)
    answer_due_at_ms: Mapped[int] = mapped_column(BigInteger, default=0, index=True)
    """Action requests: when the recipient must have answered (0: no deadline)."""
    overdue: Mapped[int] = mapped_column(Integer, default=0)
    """1 once the answer deadline passed unanswered (flagged and audited once)."""
    hold_expires_at_ms: Mapped[int] = mapped_column(BigInteger, default=0, index=True)
    """Executed holds: when the recipient's receipt says the hold ends."""


class DeliveryRow(BrokerBase):
    """The outbox: one row per (message, recipient) until the recipient has answered."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("message_id", "recipient"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(32), index=True)
    recipient: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16), index=True, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at_ms: Mapped[int] = mapped_column(BigInteger, default=0, index=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    delivered_at_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    traceparent: Mapped[str] = mapped_column(String(64), default="")
    """W3C trace context of the submission, so delivery joins the sender's trace."""
    lease_owner: Mapped[str | None] = mapped_column(String(96), nullable=True)
    """The broker process that last claimed this row (None: never claimed)."""
    lease_until_ms: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """Until when that claim holds; after it, another broker may take the row over."""


class EventRow(BrokerBase):
    """A step in a message's lifecycle, shown by `status`."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(32), index=True)
    state: Mapped[str] = mapped_column(String(32))
    at_ms: Mapped[int] = mapped_column(BigInteger)
    detail: Mapped[str] = mapped_column(Text, default="")


class QuotaRow(BrokerBase):
    """Messages and bytes one sender sent in one scope, this hour and the hour before.

    A scope is a message kind, ``*actions`` (every action request) or ``*all`` (every
    kind). One row per (sender, scope) holds two fixed windows, so old windows need no
    pruning: the window that starts rolls the current one into ``prev_*``
    (`gateway.broker.quotas`).
    """

    __tablename__ = "sender_quotas"

    sender: Mapped[str] = mapped_column(String(128), primary_key=True)
    scope: Mapped[str] = mapped_column(String(32), primary_key=True)
    window_no: Mapped[int] = mapped_column(BigInteger)
    """The current window's number: milliseconds since the epoch // window length."""
    messages: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)
    prev_messages: Mapped[int] = mapped_column(BigInteger)
    prev_bytes: Mapped[int] = mapped_column(BigInteger)
