"""The demo's alert step: a bank teller's alert leads to a stop-payment.

A teller at the bank holding a matched account sees a suspicious withdrawal and raises
a SUSPICIOUS_ACCOUNT alert, naming herself as the reporter (sealed separately), to the
police node of the branch's region (Shanghai, 310000, in the demo's directory). The
police desk receives it; a tip-off reader opens the reporter (recorded in the staff
trail); an officer drafts a stop-payment from the alert in one step and an approver
approves it; the bank executes it and its receipt comes back.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.localnet import Consortium
from nodes.actions.accounts import BUILTIN_ACCOUNTS
from nodes.actions.ledger import TRANSACTIONS
from nodes.actions.police import ActionRequestRow
from nodes.alerts.inbox import draft_stop_payment, get_alert, open_reporter
from nodes.alerts.report import AlertReport, Reporter
from nodes.alerts.sender import raise_alert
from nodes.runtime import NodeContext, open_node
from nodes.staff.accounts import StaffUser
from nodes.staff.drafts import approve_draft, get_draft

BRANCH_REGION = "310104"
"""Xuhui district, Shanghai (GB/T 2260): inside police-1's jurisdiction, 310000."""
TELLER = Reporter("teller", "陈静", "ext. 2207", "T-2207")
CASE = "C-2026-ALERT-001"
BASIS = "反电信网络诈骗法 第二十五条"


def _account_facts(bank: NodeContext, account: str) -> tuple[str, int, int]:
    """What the teller sees on her own screen: holder, the latest credit's time and amount."""
    with Session(bank.engine) as session:
        holder = session.scalar(
            select(BUILTIN_ACCOUNTS.c.holder_name).where(BUILTIN_ACCOUNTS.c.account_no == account)
        )
        credit = session.execute(
            select(TRANSACTIONS.c.at_ms, TRANSACTIONS.c.amount_minor)
            .where(TRANSACTIONS.c.account_no == account, TRANSACTIONS.c.amount_minor > 0)
            .order_by(TRANSACTIONS.c.at_ms.desc())
            .limit(1)
        ).one()
    return str(holder or ""), int(credit.at_ms), int(credit.amount_minor)


def _wait(check: Callable[[], bool], timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def run_teller_alert(
    consortium: Consortium,
    police: NodeContext,
    console: Console,
    account: str,
    bank_id: str,
    staff: tuple[StaffUser, StaffUser, StaffUser],
) -> bool:
    """The whole step; True if the stop-payment drafted from the alert was executed."""
    officer, approver, reader = staff
    bank = open_node(consortium.node_config(bank_id))
    try:
        holder, txn_at, amount = _account_facts(bank, account)
        sent = raise_alert(
            bank,
            AlertReport(
                kind="SUSPICIOUS_ACCOUNT",
                region=BRANCH_REGION,
                identifier_kind="bank_account",
                identifier=account,
                category="unusual_withdrawal",
                seen="customer withdrawing the transfer in cash while on the phone with a "
                "caller posing as police",
                seen_at_ms=int(time.time() * 1000),
                branch="Xuhui sub-branch",
                holder_name=holder,
                txn_at_ms=txn_at,
                txn_amount_minor=amount,
            ),
            raised_by="teller-app",
            reporter=TELLER,
        )
    finally:
        bank.client.close()
    rows: list[tuple[str, str]] = [
        (
            "teller's alert",
            f"{sent.alert_id[:12]} {bank_id} → {sent.recipient}, audit entry {sent.leaf_index}",
        )
    ]
    arrived = _wait(lambda: get_alert(police, sent.alert_id) is not None)
    rows.append(("police desk", "received, reporter sealed" if arrived else "NOT received"))
    state = "not sent"
    if arrived:
        opened = open_reporter(police, reader, sent.alert_id)
        rows.append(("tip-off reader", f"opened the reporter ({opened.role}); staff trail entry"))
        draft_id = draft_stop_payment(
            police, officer, sent.alert_id, case_ref=CASE, legal_basis=BASIS
        )
        draft = get_draft(police.engine, draft_id)
        assert draft is not None
        submitted = approve_draft(police, approver, draft_id, expected_sha256=draft.spec_sha256)
        rows.append(
            (
                "stop-payment",
                f"drafted by {officer.user_id}, approved by "
                f"{approver.user_id}, request {submitted.message_id[:12]}",
            )
        )

        def settled() -> bool:
            with Session(police.engine) as session:
                row = session.get(ActionRequestRow, submitted.message_id)
            return row is not None and row.state != "requested"

        _wait(settled)
        with Session(police.engine) as session:
            row = session.get(ActionRequestRow, submitted.message_id)
            state = row.state if row is not None else "lost"
        rows.append(("bank's receipt", state))
    table = Table(title="A teller's alert leads to a stop-payment", show_header=False)
    for label, detail in rows:
        table.add_row(label, detail)
    console.print(table)
    return state == "executed"
