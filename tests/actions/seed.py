"""Test data in a bank's accounts table and a carrier's numbers table."""

from __future__ import annotations

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from gateway.localnet import Consortium
from gateway.migrate import upgrade
from nodes.actions.accounts import BUILTIN_ACCOUNTS
from nodes.actions.ledger import TRANSACTIONS, StatedTransaction
from nodes.actions.numbers import BUILTIN_NUMBERS
from nodes.actions.police import ActionSpec
from tests.postgres import opened


def seed_accounts(
    c: Consortium, bank: str, accounts: dict[str, int], frozen: frozenset[str] = frozenset()
) -> None:
    with opened(c.node_config(bank).database) as engine, Session(engine) as s:
        upgrade(engine, "node")
        s.execute(
            insert(BUILTIN_ACCOUNTS),
            [
                {
                    "account_no": number,
                    "status": "frozen" if number in frozen else "active",
                    "balance_minor": balance,
                    "held_minor": 0,
                    "hold_expires_at_ms": 0,
                    "holder_name": HOLDER,
                }
                for number, balance in accounts.items()
            ],
        )
        s.execute(
            insert(TRANSACTIONS),
            [
                {
                    "txn_id": f"seed-{number}",
                    "account_no": number,
                    "at_ms": PAID_AT_MS,
                    "amount_minor": PAID_MINOR,
                    "counterparty_account": VICTIM,
                }
                for number in accounts
            ],
        )
        s.commit()


def seed_numbers(c: Consortium, carrier: str, numbers: list[str]) -> None:
    with opened(c.node_config(carrier).database) as engine, Session(engine) as s:
        upgrade(engine, "node")
        s.execute(insert(BUILTIN_NUMBERS), [{"number": n, "status": "active"} for n in numbers])
        s.commit()


def account(c: Consortium, bank: str, number: str) -> dict[str, object]:
    with opened(c.node_config(bank).database) as engine, Session(engine) as s:
        row = s.execute(
            select(BUILTIN_ACCOUNTS).where(BUILTIN_ACCOUNTS.c.account_no == number)
        ).one()
    return dict(row._mapping)


def number_status(c: Consortium, carrier: str, number: str) -> str:
    with opened(c.node_config(carrier).database) as engine, Session(engine) as s:
        return str(
            s.execute(
                select(BUILTIN_NUMBERS.c.status).where(BUILTIN_NUMBERS.c.number == number)
            ).scalar_one()
        )


ACCOUNT = "6222020200112233445"
"""A valid (Luhn) account number the tests seed and act on."""
HOLDER = "张伟"
"""The holder's name on every seeded account."""
VICTIM = "6217000010001234567"
"""The account the seeded credit came from (a victim's, at another bank)."""
PAID_AT_MS = 1_780_000_000_000
PAID_MINOR = 500_000
"""Each seeded account received one credit of PAID_MINOR from VICTIM at PAID_AT_MS."""
PAID = StatedTransaction(PAID_AT_MS, PAID_MINOR, VICTIM)
STATED = ("--holder", HOLDER, "--txn-time", "2026-05-29T04:26:40+08:00", "--txn-amount", "5000")
"""CLI options of a stop-payment stating the seeded holder and credit (PAID)."""


def spec(**changes: object) -> ActionSpec:
    """A stop-payment on ACCOUNT at bank-a, with `changes` to any field."""
    values: dict[str, object] = {
        "recipient": "bank-a",
        "action": "STOP_PAYMENT",
        "case_ref": "C-2026-001",
        "legal_basis": "Anti-Telecom-Fraud Law art. 11",
        "issuing_officer": "officer-7",
        "approving_officer": "chief-2",
        "identifier_kind": "bank_account",
        "identifier": ACCOUNT,
        "amount_minor": 200_000,
        "duration_hours": 24,
        "account_name": HOLDER,
        "transaction": PAID,
    }
    values.update(changes)
    return ActionSpec(**values)  # type: ignore[arg-type]
