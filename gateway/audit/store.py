"""The audit log's tables in the broker's database.

An entry's `leaf` is the canonical JSON the Merkle leaf hash is computed from; the hash
is stored beside it only to rebuild the tree quickly at start-up, and verification
recomputes it from the leaf bytes.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import BrokerBase


class AuditEntryRow(BrokerBase):
    __tablename__ = "audit_entries"

    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    leaf: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary)
    at_ms: Mapped[int] = mapped_column(BigInteger, index=True)


class CheckpointRow(BrokerBase):
    """Every checkpoint the broker signed, so an auditor can check them all."""

    __tablename__ = "checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    note: Mapped[str] = mapped_column(Text)
    at_ms: Mapped[int] = mapped_column(BigInteger)


class CosignatureRow(BrokerBase):
    """A witness's cosignature of one checkpoint the broker signed, served with it."""

    __tablename__ = "checkpoint_cosignatures"

    size: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("checkpoints.size"), primary_key=True, autoincrement=False
    )
    witness: Mapped[str] = mapped_column(String(128), primary_key=True)
    line: Mapped[str] = mapped_column(Text)
    cosigned_at: Mapped[int] = mapped_column(BigInteger)
    at_ms: Mapped[int] = mapped_column(BigInteger)
