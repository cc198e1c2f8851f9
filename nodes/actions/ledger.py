"""A bank's transactions and the transfers the gateway made, as the fund-control actions see them.

A stop-payment must name a transaction the bank can find on the account (amount and
time, and the counterparty where the police know it); a return of funds writes the
transfer it made, so the bank's own books show it. The ledger is the built-in
`account_transactions` table, or the bank's own (`transactions_table`, its columns
mapped in `[transaction_columns]`); `gateway_transfers` is the gateway's own record
of each return, by request id, so a redelivered order finds it and does nothing twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Column, MetaData, String, Table, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from gateway.db import NodeBase
from nodes.actions import columns

if TYPE_CHECKING:
    from gateway.config import NodeConfig

TRANSACTIONS = Table(
    "account_transactions",
    NodeBase.metadata,
    Column("txn_id", String(64), primary_key=True),
    Column("account_no", String(64), nullable=False, index=True),
    Column("at_ms", BigInteger, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("counterparty_account", String(64), nullable=False, default=""),
)
"""One row per posting: `amount_minor` positive for a credit, negative for a debit."""

TIME_TOLERANCE_MS = 10 * 60 * 1000
"""How far the stated transaction time may be from the bank's record of it."""


class TransferRow(NodeBase):
    __tablename__ = "gateway_transfers"

    request_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    hold_request_id: Mapped[str] = mapped_column(String(32), index=True)
    from_account: Mapped[str] = mapped_column(String(64))
    to_bank: Mapped[str] = mapped_column(String(128))
    to_account: Mapped[str] = mapped_column(String(64))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    at_ms: Mapped[int] = mapped_column(BigInteger)


@dataclass(frozen=True)
class StatedTransaction:
    """The transaction a stop-payment names; never logged (it holds an account)."""

    at_ms: int
    amount_minor: int
    counterparty: str = ""

    def __repr__(self) -> str:
        return "StatedTransaction(...)"


@dataclass(frozen=True)
class LedgerColumns:
    """Gateway names of a ledger's columns, mapped to the bank's (`[transaction_columns]`)."""

    txn_id: str = "txn_id"
    account: str = "account_no"
    at_ms: str = "at_ms"
    """Integer, Unix milliseconds."""
    amount_minor: str = "amount_minor"
    """Integer, minor units: positive a credit, negative a debit."""
    counterparty: str = "counterparty_account"

    @classmethod
    def from_config(cls, mapping: Mapping[str, str]) -> LedgerColumns:
        return columns.from_config(cls, mapping, "transaction_columns")


class Ledger:
    """The bank's transactions: the built-in table, or its own (`transactions_table`)."""

    def __init__(self, name: str = "", mapping: Mapping[str, str] | None = None) -> None:
        cols = LedgerColumns.from_config(mapping or {})
        if name:
            self.table = Table(
                name,
                MetaData(),
                Column(cols.txn_id, String, primary_key=True),
                Column(cols.account, String),
                Column(cols.at_ms, BigInteger),
                Column(cols.amount_minor, BigInteger),
                Column(cols.counterparty, String),
            )
        elif mapping:
            raise ValueError("transaction_columns: map them with transactions_table")
        else:
            self.table = TRANSACTIONS
        c = self.table.c
        self.txn_id, self.account, self.at = c[cols.txn_id], c[cols.account], c[cols.at_ms]
        self.amount, self.counterparty = c[cols.amount_minor], c[cols.counterparty]

    def problem(self, session: Session, account: str, stated: StatedTransaction) -> str:
        """Why the records do not show `stated` as a posting on `account` ("" if they do)."""
        near = session.execute(
            select(self.amount, self.counterparty)
            .where(self.account == account)
            .where(self.at >= stated.at_ms - TIME_TOLERANCE_MS)
            .where(self.at <= stated.at_ms + TIME_TOLERANCE_MS)
        ).all()
        if not near:
            return (
                "transaction: no transaction on this account within 10 minutes of the stated time"
            )
        same_amount = [row for row in near if int(row[0]) == stated.amount_minor]
        if not same_amount:
            return "transaction: the amount differs from the bank's record at the stated time"
        if stated.counterparty and all(str(row[1]) != stated.counterparty for row in same_amount):
            return "transaction: the counterparty account differs from the bank's record"
        return ""

    def post(
        self, session: Session, txn_id: str, account: str, at_ms: int, amount: int, other: str
    ) -> None:
        session.execute(
            insert(self.table).values(
                {
                    self.txn_id: txn_id,
                    self.account: account,
                    self.at: at_ms,
                    self.amount: amount,
                    self.counterparty: other,
                }
            )
        )

    def between(
        self, session: Session, account: str, start_ms: int, end_ms: int, limit: int
    ) -> list[dict[str, object]]:
        """The account's postings in [start, end), oldest first, at most `limit`, under the
        gateway's names (txn_id, at_ms, amount_minor, counterparty_account)."""
        rows = session.execute(
            select(self.txn_id, self.at, self.amount, self.counterparty)
            .where(self.account == account)
            .where(self.at >= start_ms)
            .where(self.at < end_ms)
            .order_by(self.at, self.txn_id)
            .limit(limit)
        ).all()
        names = ("txn_id", "at_ms", "amount_minor", "counterparty_account")
        return [dict(zip(names, row, strict=True)) for row in rows]


def ledger_for(config: NodeConfig) -> Ledger:
    return Ledger(config.transactions_table, config.transaction_columns)
