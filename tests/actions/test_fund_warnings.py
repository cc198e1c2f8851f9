"""The desk's warnings: a hold close to its expiry, a return past its working days."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.config import NodeConfig
from nodes.actions.fund import warning
from nodes.actions.police import ActionRequestRow

HOUR = 3_600_000
NOW = 1_790_000_000_000
CONFIG = NodeConfig(
    node_id="police-1",
    role="police",
    listen="127.0.0.1:0",
    broker_endpoint="127.0.0.1:1",
    database="police.db",
    pki_bundle=Path("pki"),
    freeze_warning_hours=168,
    stop_payment_warning_hours=6,
)


def row(action: str, state: str = "executed", expires: int = 0, due: int = 0) -> ActionRequestRow:
    return ActionRequestRow(
        request_id="r" * 32,
        action=action,
        state=state,
        hold_expires_at_ms=expires,
        due_at_ms=due,
    )


def test_a_freeze_warns_within_its_window_and_says_to_renew() -> None:
    assert warning(row("FREEZE", expires=NOW + 169 * HOUR), CONFIG, NOW) == ""
    text = warning(row("FREEZE", expires=NOW + 50 * HOUR), CONFIG, NOW)
    assert text == "expires in 2 d 2 h: renew it before then"
    assert warning(row("FREEZE", "extended", NOW + 3 * HOUR), CONFIG, NOW).startswith(
        "expires in 3 h 0 min"
    )
    assert warning(row("FREEZE", expires=NOW - 1), CONFIG, NOW) == "expired"
    assert warning(row("FREEZE", "released", NOW + HOUR), CONFIG, NOW) == ""


def test_a_stop_payment_warns_six_hours_ahead_and_says_to_freeze() -> None:
    assert warning(row("STOP_PAYMENT", expires=NOW + 7 * HOUR), CONFIG, NOW) == ""
    text = warning(row("STOP_PAYMENT", expires=NOW + 5 * HOUR + 30 * 60_000), CONFIG, NOW)
    assert text == "expires in 5 h 30 min: freeze the account before then"


def test_a_return_not_completed_by_its_due_date_is_overdue() -> None:
    assert warning(row("RETURN_FUNDS", "delivered", due=NOW + 1), CONFIG, NOW) == ""
    assert "overdue" in warning(row("RETURN_FUNDS", "delivered", due=NOW), CONFIG, NOW)
    assert warning(row("RETURN_FUNDS", "executed", due=NOW - HOUR), CONFIG, NOW) == ""


def test_an_inquiry_answer_is_cut_to_fit_the_receipts_bound() -> None:
    from nodes.actions.inquiry import ANSWER_BYTES, within_budget

    transaction = {"txn_id": "t" * 64, "at_ms": 2**62, "amount_minor": -(2**62)}
    answer: dict[str, object] = {
        "fields": {"holder_name": "张" * 400, "status": "active"},
        "transactions": [dict(transaction, counterparty_account="9" * 34) for _ in range(80)],
        "more_transactions": False,
    }
    cut = within_budget(answer)
    assert len(json.dumps(cut).encode()) <= ANSWER_BYTES
    assert cut["more_transactions"] is True
    assert 0 < len(cut["transactions"]) < 80  # type: ignore[arg-type]
    assert cut["fields"] == {"holder_name": "张" * 400, "status": "active"}  # kept whole
    huge: dict[str, object] = {"fields": {"holder_name": "张" * 2500}, "transactions": []}
    assert within_budget(huge)["fields"] == {"holder_name": "张" * 256}
