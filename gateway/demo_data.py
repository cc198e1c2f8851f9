"""Synthetic data for the demo: each responder's own records and adapter tables.

Banks get accounts and cards (records for matching; the accounts also in the default
adapter's `accounts` table with a balance and the holder's name, and one incoming
transfer each in `account_transactions` from a victim's account, a day or two ago, which
the demo's inquiry finds and its stop-payment names), the carrier gets subscriptions (phone and
ID card records; the numbers in its `numbers` table). Suspects are drawn from what the
responders hold, plus a few identifiers nobody holds, so the query has true negatives.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from sqlalchemy import insert
from sqlalchemy.orm import Session

from gateway import migrate
from gateway.db import make_engine
from gateway.identifiers import IdentifierKind, normalise
from gateway.localnet import Consortium
from gateway.synthetic import (
    SyntheticRow,
    domestic_account_number,
    generate_bank_records,
    generate_carrier_records,
    mobile_number,
)
from nodes.actions.accounts import BUILTIN_ACCOUNTS
from nodes.actions.ledger import TRANSACTIONS
from nodes.actions.numbers import BUILTIN_NUMBERS
from nodes.records import upsert_records


@dataclass(frozen=True)
class Suspect:
    kind: IdentifierKind
    value: str
    held_by: str
    """The node that holds it, or '' for a planted true negative."""


def load_responder(c: Consortium, node_id: str, rows: list[SyntheticRow], seed: int) -> None:
    """Records for matching, and the adapter's table, in the node's own database."""
    engine = make_engine(c.node_config(node_id).database)
    migrate.upgrade(engine, "node")
    region = c.node_config(node_id).default_region
    upsert_records(
        engine, [(normalise(r.kind, r.value, default_region=region), r.attributes) for r in rows]
    )
    rng = random.Random(f"balances:{seed}")
    with Session(engine) as session:
        if c.roles[node_id] == "bank":
            accounts = [
                {
                    "account_no": normalise(r.kind, r.value).value,
                    "status": "active",
                    "balance_minor": rng.randint(1_000, 5_000_000_00),
                    "held_minor": 0,
                    "hold_expires_at_ms": 0,
                    "holder_name": r.attributes.get("holder_name", ""),
                }
                for r in rows
                if r.kind in (IdentifierKind.BANK_ACCOUNT, IdentifierKind.BANK_CARD)
            ]
            session.execute(insert(BUILTIN_ACCOUNTS), accounts)
            session.execute(insert(TRANSACTIONS), incoming_transfers(accounts, rng))
        else:
            numbers = [
                {
                    "number": normalise(r.kind, r.value, default_region=region).value,
                    "status": "active",
                }
                for r in rows
                if r.kind == IdentifierKind.PHONE
            ]
            session.execute(insert(BUILTIN_NUMBERS), numbers)
        session.commit()


def incoming_transfers(
    accounts: list[dict[str, object]], rng: random.Random
) -> list[dict[str, object]]:
    """One credit per account from a victim's account, 24 to 48 hours before now."""
    now = int(time.time() * 1000)
    return [
        {
            "txn_id": f"T{i:08d}",
            "account_no": a["account_no"],
            "at_ms": now - rng.randint(24 * 3_600_000, 48 * 3_600_000),
            "amount_minor": rng.randint(1, int(str(a["balance_minor"]))),
            "counterparty_account": domestic_account_number(rng),
        }
        for i, a in enumerate(accounts)
    ]


def generate(records_per_responder: int) -> dict[str, list[SyntheticRow]]:
    return {
        "bank-a": generate_bank_records(records_per_responder, 1),
        "bank-b": generate_bank_records(records_per_responder, 2),
        "carrier-1": generate_carrier_records(records_per_responder // 2, 3),
    }


def suspects(data: dict[str, list[SyntheticRow]], seed: int = 7) -> list[Suspect]:
    """A police suspect list: accounts at both banks, numbers at the carrier, unknowns."""
    rng = random.Random(f"suspects:{seed}")
    chosen: list[Suspect] = []
    for node_id, rows in data.items():
        wanted = (
            IdentifierKind.PHONE if node_id.startswith("carrier") else IdentifierKind.BANK_ACCOUNT
        )
        candidates = [r for r in rows if r.kind == wanted]
        chosen += [Suspect(r.kind, r.value, node_id) for r in rng.sample(candidates, 3)]
    chosen.append(Suspect(IdentifierKind.BANK_ACCOUNT, domestic_account_number(rng), ""))
    chosen.append(Suspect(IdentifierKind.PHONE, mobile_number(rng), ""))
    return chosen
