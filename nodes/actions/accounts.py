"""The default bank adapter: holds and freezes on a SQL accounts table.

The table is the built-in `accounts` table, or the bank's own table named in the node
configuration (`adapter_table`) with its column names mapped (`adapter_columns`), so a
bank integration team points the gateway at its schema instead of copying data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Column, MetaData, String, Table, select, text, update
from sqlalchemy.orm import Session

from gateway.db import NodeBase
from gateway.faults import crash_point
from gateway.names import same_holder
from nodes.actions import columns
from nodes.actions.holds import (
    ACTIVE,
    EXPIRED,
    RELEASED,
    RETURNED,
    HoldRow,
    active_hold,
    due_holds,
    other_active,
)
from nodes.actions.ledger import Ledger, TransferRow
from nodes.actions.orders import EXECUTED, IDENTIFIER_KINDS, PARTIAL, Order, Outcome
from nodes.records import sync_attribute

HOUR_MS = 3_600_000
ACTIVE_STATUS, FROZEN_STATUS, CLOSED_STATUS = "active", "frozen", "closed"
BANK_KINDS = tuple(kind.value for kind in IDENTIFIER_KINDS["bank"])


@dataclass(frozen=True)
class AccountColumns:
    """Gateway names of the columns it needs, mapped to the bank's column names."""

    identifier: str = "account_no"
    status: str = "status"
    balance_minor: str = "balance_minor"
    held_minor: str = "held_minor"
    hold_expires_at_ms: str = "hold_expires_at_ms"
    holder_name: str = ""
    """The account holder's name, which a stop-payment must state; "" if not mapped."""

    @classmethod
    def from_config(cls, mapping: Mapping[str, str]) -> AccountColumns:
        return columns.from_config(cls, mapping)


BUILTIN_ACCOUNTS = Table(
    "accounts",
    NodeBase.metadata,
    Column("account_no", String(64), primary_key=True),
    Column("status", String(16), nullable=False, default=ACTIVE_STATUS),
    Column("balance_minor", BigInteger, nullable=False, default=0),
    Column("held_minor", BigInteger, nullable=False, default=0),
    Column("hold_expires_at_ms", BigInteger, nullable=False, default=0),
    Column("holder_name", String(128), nullable=False, default="", server_default=text("''")),
)


def bank_columns(table: str, mapping: Mapping[str, str]) -> AccountColumns:
    """The column mapping of the configured table: the built-in one maps every column."""
    if not table:
        return AccountColumns.from_config({"holder_name": "holder_name", **mapping})
    return AccountColumns.from_config(mapping)


def account_table(name: str, columns: AccountColumns) -> Table:
    """The built-in table, or a description of the bank's own (never created by us)."""
    if not name:
        return BUILTIN_ACCOUNTS
    return Table(
        name,
        MetaData(),
        Column(columns.identifier, String, primary_key=True),
        Column(columns.status, String),
        Column(columns.balance_minor, BigInteger),
        Column(columns.held_minor, BigInteger),
        Column(columns.hold_expires_at_ms, BigInteger),
        *([Column(columns.holder_name, String)] if columns.holder_name else []),
    )


def _int(value: Any) -> int:
    """A nullable integer column of the bank's table; NULL counts as 0."""
    return int(value or 0)


@dataclass(frozen=True)
class AccountState:
    status: str
    balance: int
    held: int
    expires: int
    holder_name: str | None = None
    """None when the bank has not mapped its holder-name column."""


class SqlAccountAdapter:
    """Stop-payment, freeze, extend and release on an accounts table."""

    def __init__(
        self,
        table: Table,
        columns: AccountColumns,
        node_id: str = "",
        ledger: Ledger | None = None,
    ) -> None:
        self.table = table
        self.cols = columns
        self.ledger = ledger or Ledger()
        self.node_id = node_id
        """This bank's member id: a return to it credits one of its own accounts."""

    def _c(self, name: str) -> Column[object]:
        column: Column[object] = self.table.c[getattr(self.cols, name)]
        return column

    def _account(self, session: Session, identifier: str) -> AccountState | None:
        wanted = [
            self._c("status"),
            self._c("balance_minor"),
            self._c("held_minor"),
            self._c("hold_expires_at_ms"),
        ]
        if self.cols.holder_name:
            wanted.append(self._c("holder_name"))
        query = select(*wanted).where(self._c("identifier") == identifier)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        row = session.execute(query).first()
        if row is None:
            return None
        status, balance, held, expires = row[:4]
        name = str(row[4] or "") if self.cols.holder_name else None
        return AccountState(str(status), _int(balance), _int(held), _int(expires), name)

    def _set(self, session: Session, identifier: str, **values: object) -> None:
        mapped = {getattr(self.cols, k): v for k, v in values.items()}
        session.execute(
            update(self.table).where(self._c("identifier") == identifier).values(**mapped)
        )
        if "status" in values:  # keep the match label's status true
            sync_attribute(
                session.connection(), BANK_KINDS, identifier, "status", str(values["status"])
            )

    def execute(self, session: Session, order: Order, now_ms: int) -> Outcome:
        if order.action in ("STOP_PAYMENT", "FREEZE"):
            return self._hold(session, order, now_ms)
        if order.action == "EXTEND":
            return self._extend(session, order, now_ms)
        if order.action == "RELEASE":
            return self._end(session, order.target_request_id, RELEASED, now_ms)
        if order.action == "RETURN_FUNDS":
            return self._return(session, order, now_ms)
        return Outcome.rejected(f"a bank does not execute {order.action}")

    def _hold(self, session: Session, order: Order, now_ms: int) -> Outcome:
        account = self._account(session, order.identifier)
        if account is None:
            return Outcome.rejected("unknown account")
        if account.status == CLOSED_STATUS:
            return Outcome.rejected("account is closed")
        if account.status == FROZEN_STATUS:
            return Outcome.rejected("account is already frozen")
        problem = self._stated_problem(session, order, account)
        if problem:
            return Outcome.rejected(problem)
        if order.duration_hours <= 0:
            return Outcome.rejected("duration must be at least one hour")
        balance, held = account.balance, account.held
        available = balance - held
        wanted = available if order.whole_balance else order.amount_minor
        if wanted <= 0:
            return Outcome.rejected("amount must be positive")
        if available <= 0:
            return Outcome.rejected("insufficient balance: nothing available to hold")
        amount = min(wanted, available)
        expires = now_ms + order.duration_hours * HOUR_MS
        freezes = order.action == "FREEZE"
        self._set(
            session,
            order.identifier,
            held_minor=held + amount,
            hold_expires_at_ms=max(account.expires, expires),
            **({"status": FROZEN_STATUS} if freezes else {}),
        )
        session.add(
            HoldRow(
                request_id=order.request_id,
                action=order.action,
                identifier=order.identifier,
                amount_minor=amount,
                created_at_ms=now_ms,
                expires_at_ms=expires,
                state=ACTIVE,
                freezes=int(freezes),
            )
        )
        outcome = EXECUTED if amount == wanted else PARTIAL
        reason = "" if outcome == EXECUTED else "insufficient balance: held what was available"
        return Outcome(outcome, reason, amount, now_ms, expires)

    def _stated_problem(self, session: Session, order: Order, account: AccountState) -> str:
        """Why the holder's name or the transaction the police state is not on record.

        A stop-payment must state both (PBoC 2016 rules: the bank stops only if the
        account name, number, amount and time match its records); a freeze is checked
        against the name when it states one.
        """
        stop = order.action == "STOP_PAYMENT"
        if order.account_name or stop:
            if not order.account_name:
                return "account name: a stop-payment must state the holder's name"
            if account.holder_name is None:
                return "account name: this bank has not mapped its holder-name column"
            if not same_holder(order.account_name, account.holder_name):
                return "account name: does not match the holder of the account"
        if stop and order.transaction is None:
            return "transaction: a stop-payment must state the transaction's time and amount"
        if order.transaction is not None:
            return self.ledger.problem(session, order.identifier, order.transaction)
        return ""

    def _extend(self, session: Session, order: Order, now_ms: int) -> Outcome:
        """Renew a freeze in force by `duration_hours` from its current expiry."""
        ended = session.get(HoldRow, order.target_request_id)
        if ended is not None and ended.state == EXPIRED:
            return Outcome.rejected("the freeze has expired; a new freeze is needed")
        hold = active_hold(session, order.target_request_id)
        if hold is None:
            return Outcome.rejected("no active hold for the target request")
        if hold.action != "FREEZE":
            return Outcome.rejected(
                "only a freeze is renewed; a stop-payment is not (stop again or freeze)"
            )
        if hold.expires_at_ms <= now_ms:
            return Outcome.rejected("the freeze has expired; a new freeze is needed")
        if order.duration_hours <= 0:
            return Outcome.rejected("duration must be at least one hour")
        hold.expires_at_ms += order.duration_hours * HOUR_MS
        account = self._account(session, hold.identifier)
        if account is not None:
            current = account.expires
            self._set(session, hold.identifier, hold_expires_at_ms=max(current, hold.expires_at_ms))
        return Outcome(EXECUTED, "", hold.amount_minor, now_ms, hold.expires_at_ms)

    def _return(self, session: Session, order: Order, now_ms: int) -> Outcome:
        """Move `amount` of a hold to the victim's account: once, all of it or nothing."""
        victim = order.victim
        if victim is None:
            return Outcome.rejected("victim: a return names the victim's bank and account")
        hold = active_hold(session, order.target_request_id)
        if hold is None:
            return Outcome.rejected("no active hold for the target request")
        if order.identifier and hold.identifier != order.identifier:
            return Outcome.rejected("the target hold is on another account")
        if hold.action != "FREEZE":
            return Outcome.rejected("only frozen funds are returned; freeze the account first")
        if order.amount_minor <= 0:
            return Outcome.rejected("amount must be positive")
        if order.amount_minor > hold.amount_minor:
            return Outcome.rejected(
                f"return larger than the held amount ({hold.amount_minor / 100:.2f} held)"
            )
        account = self._account(session, hold.identifier)
        if account is None:
            return Outcome.rejected("unknown account")
        credited = self._account(session, victim.account) if victim.bank == self.node_id else None
        if victim.bank == self.node_id:
            if credited is None:
                return Outcome.rejected("victim account: unknown at this bank")
            if credited.status == CLOSED_STATUS:
                return Outcome.rejected("victim account: is closed")
            if credited.holder_name is not None and not same_holder(
                victim.name, credited.holder_name
            ):
                return Outcome.rejected("victim account: the name does not match its holder")
        amount = order.amount_minor
        self._set(
            session,
            hold.identifier,
            balance_minor=account.balance - amount,
            held_minor=max(0, account.held - amount),
        )
        hold.amount_minor -= amount
        self.ledger.post(
            session, f"{order.request_id}-out", hold.identifier, now_ms, -amount, victim.account
        )
        crash_point("bank-return-debited")
        if credited is not None:
            self._set(session, victim.account, balance_minor=credited.balance + amount)
            self.ledger.post(
                session, f"{order.request_id}-in", victim.account, now_ms, amount, hold.identifier
            )
        session.add(
            TransferRow(
                request_id=order.request_id,
                hold_request_id=hold.request_id,
                from_account=hold.identifier,
                to_bank=victim.bank,
                to_account=victim.account,
                amount_minor=amount,
                at_ms=now_ms,
            )
        )
        if hold.amount_minor == 0:
            self._end(session, hold.request_id, RETURNED, now_ms)
        return Outcome(EXECUTED, "", amount, now_ms, 0)

    def _end(self, session: Session, request_id: str, state: str, now_ms: int) -> Outcome:
        hold = active_hold(session, request_id)
        if hold is None:
            return Outcome.rejected("no active hold for the target request")
        hold.state, hold.ended_at_ms = state, now_ms
        account = self._account(session, hold.identifier)
        if account is not None:
            others = other_active(session, hold.identifier, hold.request_id)
            values: dict[str, object] = {
                "held_minor": max(0, account.held - hold.amount_minor),
                "hold_expires_at_ms": max((o.expires_at_ms for o in others), default=0),
            }
            if hold.freezes and not any(o.freezes for o in others):
                values["status"] = ACTIVE_STATUS
            self._set(session, hold.identifier, **values)
        return Outcome(EXECUTED, "", hold.amount_minor, now_ms, 0)

    def release_expired(self, session: Session, now_ms: int) -> int:
        expired = due_holds(session, now_ms)
        for hold in expired:
            self._end(session, hold.request_id, EXPIRED, now_ms)
        return len(expired)
