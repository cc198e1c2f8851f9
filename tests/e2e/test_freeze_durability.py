"""Nothing acknowledged is lost: bank down, broker killed with -9, both come back.

Broker, police and bank run as separate processes. Police requests are acknowledged
while the bank is down (so they wait in the broker's outbox); the broker is then
killed without warning, the bank started, the broker restarted. Every acknowledged
request must reach the bank exactly once and its receipt must reach the police.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.db import make_engine
from gateway.localnet import Consortium, Processes, processes
from gateway.synthetic import domestic_account_number
from nodes.actions.holds import HoldRow
from nodes.actions.police import ActionRequestRow, issue_action
from nodes.journal import InboundRow
from tests.actions.seed import account, seed_accounts, spec
from tests.consortium import client

pytestmark = pytest.mark.slow

REQUESTS = 20
ACCOUNTS = [domestic_account_number(random.Random(f"durable:{i}")) for i in range(REQUESTS)]
"""An account may be stopped twice: each request stops an account of its own."""


@pytest.fixture
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Consortium, Processes]]:
    c = Consortium.create(tmp_path_factory.mktemp("durable"))
    seed_accounts(c, "bank-a", dict.fromkeys(ACCOUNTS, 10_000_000))
    with processes(c) as procs:
        yield c, procs


def test_acknowledged_requests_survive_bank_downtime_and_a_broker_kill(
    net: tuple[Consortium, Processes],
) -> None:
    c, procs = net
    procs.start_broker()
    procs.start_node("police-1")
    police = client(c, "police-1")
    acknowledged = []
    try:
        for i in range(REQUESTS):
            result = issue_action(
                police,
                spec(case_ref="C-DURABLE", amount_minor=1_000 + i, identifier=ACCOUNTS[i]),
            )
            acknowledged.append(result.message_id)
    finally:
        police.client.close()

    procs.kill("broker", signal.SIGKILL)
    procs.start_node("bank-a")
    procs.start_broker()

    police_db = make_engine(c.node_config("police-1").database)
    bank_db = make_engine(c.node_config("bank-a").database)
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        with Session(police_db) as s:
            states = s.scalars(
                select(ActionRequestRow.state).where(ActionRequestRow.request_id.in_(acknowledged))
            ).all()
        if len(states) == REQUESTS and all(state == "executed" for state in states):
            break
        time.sleep(0.25)
    else:
        raise AssertionError(f"receipts missing: {states}")

    with Session(bank_db) as s:
        holds = s.scalars(select(HoldRow.request_id)).all()
        inbound = s.scalar(
            select(func.count()).select_from(InboundRow).where(InboundRow.kind == "STOP_PAYMENT")
        )
    assert sorted(holds) == sorted(acknowledged)  # each request held exactly once
    assert inbound == REQUESTS
    for i, number in enumerate(ACCOUNTS):
        assert account(c, "bank-a", number)["held_minor"] == 1_000 + i
