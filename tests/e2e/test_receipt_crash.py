"""A broker killed at any step of receipt handling: broker, bank and police still agree.

Broker, police and bank run as separate processes. The broker is started with a crash
point (`gateway.faults`) and dies by SIGKILL at that step of handling the bank's
receipt for one stop-payment; it is then restarted without one. Afterwards the bank
holds the money once, the broker's request is "executed" with exactly one receipt and
one "executed" entry, the police hold the same receipt, and the audit log verifies.

Before receipts were recorded in one transaction with the request's state, a crash
between the two left the request "delivered" at the broker for good: the bank's
re-sent receipt was refused as a replay.
"""

from __future__ import annotations

import json
import signal
import subprocess

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.audit.store import AuditEntryRow
from gateway.broker.models import MessageRow
from gateway.db import make_engine
from gateway.faults import CRASH_AT_VARIABLE
from gateway.localnet import Consortium, gateway_command, processes
from nodes.actions.holds import HoldRow
from nodes.actions.police import ActionRequestRow, issue_action
from nodes.journal import InboundRow
from tests.actions.seed import ACCOUNT, account, seed_accounts, spec
from tests.consortium import client, request_state
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

AMOUNT = 25_000
STEPS = ("receipt.received", "receipt.staged", "receipt.committed", "receipt.forwarded")
"""Bank's reply in hand; receipt and state staged, not committed; committed, not yet
routed on; routed to the police, the police's outbox row not yet closed."""


@pytest.mark.parametrize("step", STEPS)
def test_broker_killed_at_each_step_of_receipt_handling(
    step: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    c = Consortium.create(tmp_path_factory.mktemp("crash"))
    seed_accounts(c, "bank-a", {ACCOUNT: 1_000_000})
    with processes(c) as procs:
        procs.start_broker(env={CRASH_AT_VARIABLE: step})
        procs.start_node("bank-a")
        procs.start_node("police-1")
        police = client(c, "police-1")
        try:
            request_id = issue_action(
                police,
                spec(case_ref="C-CRASH", amount_minor=AMOUNT),
            ).message_id
            broker_log = procs.logs["broker"]
            exit_code = procs.wait_exit("broker", timeout_s=90)
            assert exit_code == -signal.SIGKILL, broker_log.read_text()[-3000:]
            procs.start_broker()
            wait_for(lambda: request_state(police, request_id) == "executed", timeout=90)
        finally:
            police.client.close()
        procs.kill("broker")  # a clean stop, so the log is read at rest
        assert_all_agree(c, request_id)


def assert_all_agree(c: Consortium, request_id: str) -> None:
    bank = make_engine(c.node_config("bank-a").database)
    with Session(bank) as s:
        holds = s.scalars(select(HoldRow.request_id)).all()
        executions = s.scalar(
            select(func.count()).select_from(InboundRow).where(InboundRow.kind == "STOP_PAYMENT")
        )
    bank.dispose()
    assert holds == [request_id] and executions == 1  # executed once
    assert account(c, "bank-a", ACCOUNT)["held_minor"] == AMOUNT

    broker = make_engine(c.broker_database)
    with Session(broker) as s:
        request = s.get(MessageRow, request_id)
        receipts = s.scalars(
            select(MessageRow.message_id)
            .where(MessageRow.reply_to == request_id)
            .where(MessageRow.kind == "ACTION_RECEIPT")
        ).all()
        leaves = [json.loads(leaf) for leaf in s.scalars(select(AuditEntryRow.leaf)).all()]
    broker.dispose()
    assert request is not None and request.state == "executed" and request.hold_expires_at_ms > 0
    assert len(receipts) == 1
    [receipt_id] = receipts
    executed = [
        e
        for e in leaves
        if e["type"] == "lifecycle" and e["message_id"] == request_id and e["state"] == "executed"
    ]
    decided = [e for e in leaves if e["type"] == "decision" and e["message_id"] == receipt_id]
    delivered = [
        (e["message_id"], e["recipient"])
        for e in leaves
        if e["type"] == "delivery" and e["state"] == "delivered"
    ]
    assert len(executed) == 1
    assert [e["decision"] for e in decided] == ["ALLOW"]
    assert delivered.count((request_id, "bank-a")) == 1
    assert delivered.count((receipt_id, "police-1")) == 1

    police = make_engine(c.node_config("police-1").database)
    with Session(police) as s:
        kept = s.get(ActionRequestRow, request_id)
    police.dispose()
    assert kept is not None and kept.receipt_id == receipt_id

    verified = subprocess.run(
        gateway_command(
            "audit", "verify", "--database", c.broker_database, "--pki", str(c.root / "pki")
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
