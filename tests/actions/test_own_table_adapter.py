"""A bank points the adapter at its own accounts table through the node configuration."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from gateway import migrate
from gateway.config import ADAPTER_COLUMNS, NodeConfig, load_config
from gateway.db import make_engine
from gateway.identifiers import Identifier, IdentifierKind
from nodes import schema
from nodes.actions.accounts import AccountColumns
from nodes.actions.ledger import TRANSACTIONS, StatedTransaction
from nodes.actions.numbers import NumberColumns
from nodes.actions.orders import Order
from nodes.actions.responder import adapter_for
from nodes.records import current_version, live_records, upsert_records
from tests.postgres import Databases, opened

OWN_TABLE = """
CREATE TABLE core_accounts (
    acct_no TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    bal_fen INTEGER NOT NULL,
    hold_fen INTEGER,
    hold_until INTEGER,
    branch TEXT,
    holder TEXT
)
"""


def config(tmp_path: Path) -> NodeConfig:
    path = tmp_path / "bank.toml"
    path.write_text(
        """
node_id = "bank-z"
role = "bank"
listen = "127.0.0.1:0"
broker_endpoint = "127.0.0.1:1"
database = "bank.db"
pki_bundle = "pki"
adapter_table = "core_accounts"

[adapter_columns]
identifier = "acct_no"
status = "state"
balance_minor = "bal_fen"
held_minor = "hold_fen"
hold_expires_at_ms = "hold_until"
holder_name = "holder"
"""
    )
    return load_config(NodeConfig, path)


def order(action: str, **changes: object) -> Order:
    values: dict[str, object] = {
        "request_id": "a" * 32,
        "action": action,
        "identifier": "6222020200112233445",
        "amount_minor": 50_000,
        "whole_balance": False,
        "duration_hours": 48,
        "target_request_id": "",
        "account_name": "張偉",
        "transaction": StatedTransaction(900, 120_000),
    }
    values.update(changes)
    return Order(**values)  # type: ignore[arg-type]


def test_stop_payment_and_release_on_the_banks_own_table(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    engine = make_engine(cfg.database)
    schema.metadata.create_all(engine)  # the gateway's own tables (holds), not the bank's
    with engine.begin() as conn:
        conn.execute(text(OWN_TABLE))
        conn.execute(
            text(
                "INSERT INTO core_accounts VALUES "
                "('6222020200112233445', 'active', 80000, NULL, NULL, 'Haidian', '张伟')"
            )
        )
        conn.execute(
            insert(TRANSACTIONS).values(
                txn_id="t1",
                account_no="6222020200112233445",
                at_ms=500,
                amount_minor=120_000,
                counterparty_account="",
            )
        )
    adapter = adapter_for(cfg)
    with Session(engine) as session, session.begin():
        outcome = adapter.execute(session, order("STOP_PAYMENT"), now_ms=1_000)
    assert (outcome.outcome, outcome.executed_amount_minor) == ("EXECUTED", 50_000)
    assert outcome.hold_expires_at_ms == 1_000 + 48 * 3_600_000
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT state, bal_fen, hold_fen, hold_until, branch FROM core_accounts")
        ).one()
    assert tuple(row) == ("active", 80_000, 50_000, 1_000 + 48 * 3_600_000, "Haidian")

    with Session(engine) as session, session.begin():
        outcome = adapter.execute(
            session,
            order("RELEASE", request_id="b" * 32, target_request_id="a" * 32),
            now_ms=2_000,
        )
    assert outcome.outcome == "EXECUTED"
    with engine.connect() as conn:
        row = conn.execute(text("SELECT state, hold_fen, hold_until FROM core_accounts")).one()
    assert tuple(row) == ("active", 0, 0)


OWN_LEDGER = """
CREATE TABLE core_postings (
    posting_no TEXT PRIMARY KEY,
    acct_no TEXT NOT NULL,
    posted_ms INTEGER NOT NULL,
    fen INTEGER NOT NULL,
    other_acct TEXT
)
"""


def test_the_banks_own_ledger_answers_the_stop_payment_check(tmp_path: Path) -> None:
    cfg = NodeConfig(
        **{
            **config(tmp_path).__dict__,
            "transactions_table": "core_postings",
            "transaction_columns": {
                "txn_id": "posting_no",
                "account": "acct_no",
                "at_ms": "posted_ms",
                "amount_minor": "fen",
                "counterparty": "other_acct",
            },
        }
    )
    engine = make_engine(cfg.database)
    schema.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(text(OWN_TABLE))
        conn.execute(text(OWN_LEDGER))
        conn.execute(
            text(
                "INSERT INTO core_accounts VALUES "
                "('6222020200112233445', 'active', 80000, NULL, NULL, 'Haidian', '张伟')"
            )
        )
        conn.execute(
            text("INSERT INTO core_postings VALUES ('P1', '6222020200112233445', 900, 7000, '')")
        )
    adapter = adapter_for(cfg)
    with Session(engine) as session, session.begin():
        wrong = adapter.execute(session, order("STOP_PAYMENT"), now_ms=1_000)  # states 120,000
        right = adapter.execute(
            session,
            order("STOP_PAYMENT", transaction=StatedTransaction(1_000, 7_000)),
            now_ms=1_000,
        )
    assert (wrong.outcome, wrong.reason) == (
        "REJECTED",
        "transaction: the amount differs from the bank's record at the stated time",
    )
    assert right.outcome == "EXECUTED"
    bad = NodeConfig(**{**cfg.__dict__, "transaction_columns": {"acount": "acct_no"}})
    with pytest.raises(ValueError, match="transaction_columns: unknown keys acount"):
        adapter_for(bad)


def test_unknown_column_key_is_a_configuration_error(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    bad = NodeConfig(**{**cfg.__dict__, "adapter_columns": {"acount": "acct_no"}})
    with pytest.raises(ValueError, match="adapter_columns: unknown keys acount"):
        adapter_for(bad)


SUBSCRIBERS = """
CREATE TABLE subscribers (
    msisdn VARCHAR(20) PRIMARY KEY,
    state VARCHAR(12) NOT NULL,
    plan TEXT
)
"""
PHONE = "+8613812345678"


def carrier_config(tmp_path: Path, database: str) -> NodeConfig:
    path = tmp_path / "carrier.toml"
    path.write_text(
        f"""
node_id = "carrier-z"
role = "carrier"
listen = "127.0.0.1:0"
broker_endpoint = "127.0.0.1:1"
database = "{database}"
pki_bundle = "pki"
adapter_table = "subscribers"

[adapter_columns]
identifier = "msisdn"
status = "state"
"""
    )
    return load_config(NodeConfig, path)


def test_a_carrier_suspends_on_its_own_subscribers_table_and_the_label_follows(
    tmp_path: Path, databases: Databases
) -> None:
    cfg = carrier_config(tmp_path, databases.url("carrier"))
    with opened(cfg.database) as engine:
        migrate.upgrade(engine, "node")
        with engine.begin() as conn:
            conn.execute(text(SUBSCRIBERS))
            conn.execute(text(f"INSERT INTO subscribers VALUES ('{PHONE}', 'active', 'prepaid')"))
        phone = Identifier(IdentifierKind.PHONE, PHONE)
        upsert_records(engine, [(phone, {"record_id": "S1", "status": "active"})])
        version = current_version(engine)
        adapter = adapter_for(cfg)
        suspend = order("SUSPEND_NUMBER", identifier=PHONE, duration_hours=72)
        with Session(engine) as session, session.begin():
            assert adapter.execute(session, suspend, now_ms=1_000).outcome == "EXECUTED"
        with engine.connect() as conn:
            state = conn.execute(text("SELECT state, plan FROM subscribers")).one()
        assert tuple(state) == ("suspended", "prepaid")
        [record] = live_records(engine)
        assert record.attribute_map() == {"record_id": "S1", "status": "suspended"}
        assert current_version(engine) > version, "the index will redo this record"

        restore = order("RESTORE_NUMBER", request_id="b" * 32, target_request_id="a" * 32)
        with Session(engine) as session, session.begin():
            assert adapter.execute(session, restore, now_ms=2_000).outcome == "EXECUTED"
        [record] = live_records(engine)
        assert record.attribute_map()["status"] == "active"


def test_the_configs_column_keys_are_the_adapters() -> None:
    """gateway.config validates [adapter_columns] without importing nodes: keep them equal."""
    assert ADAPTER_COLUMNS["bank"] == tuple(f.name for f in fields(AccountColumns))
    assert ADAPTER_COLUMNS["carrier"] == tuple(f.name for f in fields(NumberColumns))


def test_node_check_fails_on_a_ledger_it_cannot_read(tmp_path: Path) -> None:
    from nodes.preflight.tables import check_action_table

    cfg = NodeConfig(**{**config(tmp_path).__dict__, "transactions_table": "no_such_ledger"})
    engine = make_engine(cfg.database)
    schema.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(text(OWN_TABLE))
    checked = check_action_table(engine, cfg)
    assert checked.failed
    assert "cannot read the ledger no_such_ledger" in checked.detail
    assert "fix transactions_table and [transaction_columns]" in checked.detail
