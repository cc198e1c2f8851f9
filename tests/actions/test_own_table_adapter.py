"""A bank points the adapter at its own accounts table through the node configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from gateway.config import NodeConfig, load_config
from gateway.db import make_engine
from nodes import schema
from nodes.actions.orders import Order
from nodes.actions.responder import adapter_for

OWN_TABLE = """
CREATE TABLE core_accounts (
    acct_no TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    bal_fen INTEGER NOT NULL,
    hold_fen INTEGER,
    hold_until INTEGER,
    branch TEXT
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
                "('6222020200112233445', 'active', 80000, NULL, NULL, 'Haidian')"
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


def test_unknown_column_key_is_a_configuration_error(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    bad = NodeConfig(**{**cfg.__dict__, "adapter_columns": {"acount": "acct_no"}})
    with pytest.raises(ValueError, match="adapter_columns: unknown keys acount"):
        adapter_for(bad)
