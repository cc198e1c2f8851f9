"""The demo's fund-control steps, on the first matched account of the case.

The police inquire (the holder and the incoming transfers of the last week), stop the
victim's transfer with what the answer showed (holder's name, time, amount,
counterparty), hand the stop-payment over to a freeze, renew the freeze, and order the
amount returned to the victim's account at the other bank. Each step is a request
through the broker, with its audit entry, and a receipt signed by the bank; the demo
sends each as its staff do, drafted by one officer and approved by another.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from gateway.identifiers import IdentifierKind
from gateway.workdays import BEIJING
from nodes.actions.fund import inquiry_answer, inquiry_spec, renewal_spec, return_spec
from nodes.actions.ledger import StatedTransaction
from nodes.actions.orders import Victim
from nodes.actions.police import ActionRequestRow, ActionSpec
from nodes.broker_client import Submitted
from nodes.runtime import NodeContext

Sender = Callable[[ActionSpec], Submitted]
"""How the demo sends a request: drafted by one officer, approved by another."""
VICTIM_NAME = "王芳"
DAY_MS = 24 * 3_600_000


@dataclass(frozen=True)
class Step:
    label: str
    request_id: str
    leaf_index: int
    state: str
    detail: str


def _settled(police: NodeContext, request_id: str, timeout_s: float = 20.0) -> ActionRequestRow:
    deadline = time.monotonic() + timeout_s
    while True:
        with Session(police.engine) as session:
            row = session.get(ActionRequestRow, request_id)
        if row is not None and (row.state != "requested" or time.monotonic() > deadline):
            return row
        time.sleep(0.1)


def run_fund_control(
    police: NodeContext,
    send_spec: Sender,
    console: Console,
    account: str,
    bank: str,
    victim_bank: str,
    case_ref: str,
    basis: str,
) -> list[Step]:
    """Every step in order; stops at the first one whose receipt is not EXECUTED."""
    steps: list[Step] = []

    def step(
        label: str, send: Callable[[], Submitted], detail: Callable[[ActionRequestRow], str]
    ) -> ActionRequestRow | None:
        sent = send()
        row = _settled(police, sent.message_id)
        shown = detail(row) if row.state == "executed" else row.reason
        steps.append(Step(label, sent.message_id, sent.leaf_index, row.state, shown))
        return row if row.state == "executed" else None

    def money(minor: int) -> str:
        return f"{minor / 100:,.2f} CNY"

    now = int(time.time() * 1000)
    asked = step(
        "inquiry: holder and last week's transfers",
        lambda: send_spec(
            inquiry_spec(bank, "bank_account", account, (now - 7 * DAY_MS, now), case_ref, basis)
        ),
        lambda r: "answer sealed to the police",
    )
    answer = inquiry_answer(police, asked.request_id) if asked is not None else None
    credits = [
        t
        for t in (answer or {}).get("transactions", [])  # type: ignore[attr-defined]
        if isinstance(t, dict) and int(t.get("amount_minor", 0)) > 0
    ]
    if answer is None or not credits:
        _show(console, steps)
        return steps
    fields = answer.get("fields", {})
    holder = str(fields.get("holder_name", "")) if isinstance(fields, dict) else ""
    paid = credits[-1]
    amount = int(paid["amount_minor"])
    victim_account = str(paid["counterparty_account"])
    stated = StatedTransaction(int(paid["at_ms"]), amount, victim_account)

    def spec(action: str, **terms: object) -> ActionSpec:
        return ActionSpec(
            recipient=bank,
            action=action,
            case_ref=case_ref,
            legal_basis=basis,
            issuing_officer="",
            approving_officer="",
            **terms,  # type: ignore[arg-type]
        )

    stopped = step(
        f"stop-payment: {holder}'s account, the transfer of {money(amount)}",
        lambda: send_spec(
            spec(
                "STOP_PAYMENT",
                identifier_kind=IdentifierKind.BANK_ACCOUNT.value,
                identifier=account,
                amount_minor=amount,
                duration_hours=48,
                account_name=holder,
                transaction=stated,
            ),
        ),
        lambda r: f"{money(r.executed_amount_minor)} held for 48 h",
    )
    if stopped is None:
        _show(console, steps)
        return steps
    released = step(
        "release the stop-payment: a freeze takes over",
        lambda: send_spec(spec("RELEASE", target_request_id=stopped.request_id)),
        lambda r: "released",
    )
    frozen = released and step(
        "freeze: the amount, for 180 days",
        lambda: send_spec(
            spec(
                "FREEZE",
                identifier_kind=IdentifierKind.BANK_ACCOUNT.value,
                identifier=account,
                amount_minor=amount,
                duration_hours=4320,
            ),
        ),
        lambda r: f"{money(r.executed_amount_minor)} frozen",
    )
    renewed = frozen and step(
        "renew the freeze: 180 days more",
        lambda: send_spec(renewal_spec(police, frozen.request_id, 4320, basis)),
        lambda r: f"until {time.strftime('%Y-%m-%d', time.gmtime(r.hold_expires_at_ms / 1000))}",
    )
    if renewed and frozen:
        step(
            f"return to the victim's account at {victim_bank}",
            lambda: send_spec(
                return_spec(
                    police,
                    frozen.request_id,
                    amount,
                    Victim(victim_bank, victim_account, VICTIM_NAME),
                    basis,
                )
            ),
            lambda r: (
                f"{money(r.executed_amount_minor)} transferred; due by the end of "
                f"{datetime.fromtimestamp((r.due_at_ms - 1) / 1000, BEIJING):%Y-%m-%d} (Beijing)"
            ),
        )
    _show(console, steps)
    return steps


def _show(console: Console, steps: list[Step]) -> None:
    table = Table(title="Fund control on the first matched account (every step via the broker)")
    for column in ("step", "request", "audit entry", "receipt", "detail"):
        table.add_column(column)
    for s in steps:
        table.add_row(s.label, s.request_id[:12], str(s.leaf_index), s.state, s.detail)
    console.print(table)
