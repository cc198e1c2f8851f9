"""A bank killed in the middle of a return of funds: nothing half-done, then done once.

Broker, police and bank run as separate processes. The bank is restarted with a crash
point (`gateway.faults`) and dies by SIGKILL after it has debited the frozen account
and before it has credited the victim (inside the delivery's transaction). Its books
must show nothing of the return; restarted without the crash point, it receives the
broker's redelivery and executes the return exactly once.
"""

from __future__ import annotations

import signal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.faults import CRASH_AT_VARIABLE
from gateway.localnet import Consortium, processes
from nodes.actions.fund import Officers, return_funds
from nodes.actions.holds import HoldRow
from nodes.actions.ledger import TRANSACTIONS, TransferRow
from nodes.actions.orders import Victim
from nodes.actions.police import issue_action
from tests.actions.seed import account, seed_accounts, spec
from tests.consortium import client, request_state
from tests.postgres import opened
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

SUSPECT = "6222020200112233445"
VICTIM = "6222020200123456789"


def books(c: Consortium) -> tuple[object, ...]:
    with opened(c.node_config("bank-a").database) as engine, Session(engine) as s:
        transfers = s.scalar(select(func.count()).select_from(TransferRow))
        postings = s.scalar(select(func.count()).select_from(TRANSACTIONS))
        holds = tuple(s.execute(select(HoldRow.request_id, HoldRow.amount_minor)).all())
    suspect, victim = account(c, "bank-a", SUSPECT), account(c, "bank-a", VICTIM)
    return (
        transfers,
        postings,
        holds,
        suspect["balance_minor"],
        suspect["held_minor"],
        victim["balance_minor"],
    )


def test_bank_killed_mid_return_has_no_half_done_return_and_executes_it_once(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    c = Consortium.create(tmp_path_factory.mktemp("return-crash"))
    seed_accounts(c, "bank-a", {SUSPECT: 1_000_000, VICTIM: 0})
    with processes(c) as procs:
        procs.start_broker()
        procs.start_node("bank-a")
        procs.start_node("police-1")
        police = client(c, "police-1")
        try:
            frozen = issue_action(
                police,
                spec(
                    identifier=SUSPECT,
                    action="FREEZE",
                    amount_minor=600_000,
                    duration_hours=72,
                    case_ref="C-RETURN",
                    account_name="",
                    transaction=None,
                ),
            ).message_id
            wait_for(lambda: request_state(police, frozen) == "executed", timeout=60)
            before = books(c)

            procs.kill("bank-a")
            procs.start_node("bank-a", env={CRASH_AT_VARIABLE: "bank-return-debited"})
            order = return_funds(
                police,
                frozen,
                250_000,
                Victim("bank-a", VICTIM, "张伟"),
                "art. 11",
                Officers("officer-7", "chief-2"),
            ).message_id
            log = procs.logs["bank-a"]
            assert procs.wait_exit("bank-a", timeout_s=90) == -signal.SIGKILL, log.read_text()
            assert books(c) == before  # the debit died with the transaction

            procs.start_node("bank-a")
            wait_for(lambda: request_state(police, order) == "executed", timeout=90)
        finally:
            police.client.close()
    transfers, postings, holds, balance, held, credited = books(c)
    assert transfers == 1 and postings == int(str(before[1])) + 2
    assert holds == ((frozen, 350_000),)
    assert (balance, held, credited) == (750_000, 350_000, 250_000)
