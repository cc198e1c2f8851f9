"""A bank's transactions and the transfers the gateway made, as the fund-control actions see them.

A stop-payment must name a transaction the bank can find on the account (amount and
time, and the counterparty where the police know it); a return of funds writes the
transfer it made, so the bank's own books show it. The built-in `account_transactions`
table stands in for the bank's ledger; `gateway_transfers` is the gateway's own record
of each return, by request id, so a redelivered order finds it and does nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, String, Table, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from gateway.db import NodeBase

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


def transaction_problem(session: Session, account: str, stated: StatedTransaction) -> str:
    """Why the bank's records do not show `stated` as a credit to `account` ("" if they do)."""
    near = session.execute(
        select(TRANSACTIONS.c.amount_minor, TRANSACTIONS.c.counterparty_account)
        .where(TRANSACTIONS.c.account_no == account)
        .where(TRANSACTIONS.c.at_ms >= stated.at_ms - TIME_TOLERANCE_MS)
        .where(TRANSACTIONS.c.at_ms <= stated.at_ms + TIME_TOLERANCE_MS)
    ).all()
    if not near:
        return "transaction: no transaction on this account within 10 minutes of the stated time"
    same_amount = [row for row in near if int(row[0]) == stated.amount_minor]
    if not same_amount:
        return "transaction: the amount differs from the bank's record at the stated time"
    if stated.counterparty and all(str(row[1]) != stated.counterparty for row in same_amount):
        return "transaction: the counterparty account differs from the bank's record"
    return ""


def post(
    session: Session, txn_id: str, account: str, at_ms: int, amount: int, counterparty: str
) -> None:
    session.execute(
        insert(TRANSACTIONS).values(
            txn_id=txn_id,
            account_no=account,
            at_ms=at_ms,
            amount_minor=amount,
            counterparty_account=counterparty,
        )
    )


def transactions_between(
    session: Session, account: str, start_ms: int, end_ms: int, limit: int
) -> list[dict[str, object]]:
    """The account's postings in [start, end), oldest first, at most `limit`."""
    rows = session.execute(
        select(TRANSACTIONS)
        .where(TRANSACTIONS.c.account_no == account)
        .where(TRANSACTIONS.c.at_ms >= start_ms)
        .where(TRANSACTIONS.c.at_ms < end_ms)
        .order_by(TRANSACTIONS.c.at_ms, TRANSACTIONS.c.txn_id)
        .limit(limit)
    ).all()
    return [dict(row._mapping) for row in rows]
