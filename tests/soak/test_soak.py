"""Soak: every call a node makes through a real broker finishes, whatever happens meanwhile.

Broker, police, bank and carrier serve over mTLS in this process (so a hang's stacks
show every side). For SOAK_S seconds, threads of the police node run targeted match
queries, bulk PSI sessions, stop-payments and freezes, and checkpoint reads, each call
under a watchdog deadline; every node refetches the directory after DIRECTORY_TTL_S.
A third of the way in, the directory is re-signed (a new member, a new serial); two
thirds in, the broker is stopped and started again. A call may fail only with
UNAVAILABLE, only around the restart, and is then retried. At the end every action
request must have exactly one receipt, and each answer must be the one expected from
the planted records.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.broker.models import MessageRow
from gateway.broker.server import RunningBroker, serve_broker
from gateway.bulk_psi import save_offer
from gateway.bulk_psi.errors import BulkPsiError
from gateway.crypto.oprf import generate_key_pair
from gateway.identifiers import IdentifierKind, normalise
from gateway.localnet import Consortium
from gateway.synthetic import (
    domestic_account_number,
    generate_bank_records,
    generate_carrier_records,
    mobile_number,
)
from nodes.actions.police import ActionSpec, issue_action
from nodes.bulk_psi import run_psi
from nodes.matching import query_responders
from nodes.records import upsert_records
from nodes.runtime import RunningNode, serve_node
from tests.actions.seed import HOLDER, PAID, seed_accounts
from tests.consortium import client, request_state
from tests.matching.test_broker_query import load
from tests.postgres import opened
from tests.waiting import wait_for
from tests.watchdog import Watchdog, run_threads

pytestmark = [pytest.mark.slow, pytest.mark.timeout(290)]

SOAK_S = float(os.environ.get("GATEWAY_SOAK_S", "100"))
DIRECTORY_TTL_S = 0.2
CALL_TIMEOUT_S = 10.0
DEADLINE_S = 60.0
"""Any one call (a PSI session is several exchanges, each with retries) ends within this."""
RESTART_GRACE_S = 10.0
"""After the broker is back, calls may still fail for this long (channels reconnect)."""
MATCHES = 60
"""Queries to two responders: 120 MATCH_QUERY messages of the 200 an hour policy allows."""
PSI_SESSIONS = 15
"""Of up to 8 exchanges each: 120 PSI_REQUEST messages of the 200 allowed."""
ACTIONS = 120
"""Half stop-payments, half freezes: 60 of each kind of the 100 allowed."""
NODES = ("police-1", "bank-a", "carrier-1")
CASE = {"case_ref": "C-SOAK-1", "legal_basis": "Anti-Telecom-Fraud Law art. 11"}
BANK = generate_bank_records(60, seed=31)
CARRIER = generate_carrier_records(40, seed=32)
STOP_ACCOUNTS = [domestic_account_number(random.Random(f"stop:{i}")) for i in range(150)]
"""An account may be stopped twice: each stop-payment takes an account of its own."""
FREEZE_ACCOUNTS = [domestic_account_number(random.Random(f"freeze:{i}")) for i in range(300)]


@dataclass
class Plan:
    """What the run will ask, with the answers computed from the planted rows."""

    query: list = field(default_factory=list)
    expected_matches: dict[str, int] = field(default_factory=dict)
    psi_expected: set[str] = field(default_factory=set)


def plant(c: Consortium) -> Plan:
    for node_id in NODES:
        text = c.config_path(node_id).read_text()
        text = text.replace("directory_ttl_s = 30.0", f"directory_ttl_s = {DIRECTORY_TTL_S}")
        text = text.replace("call_timeout_s = 30.0", f"call_timeout_s = {CALL_TIMEOUT_S}")
        c.config_path(node_id).write_text(text)
    load(c, "bank-a", BANK)
    load(c, "carrier-1", CARRIER)
    seed_accounts(
        c, "bank-a", dict.fromkeys(STOP_ACCOUNTS, 10**12) | dict.fromkeys(FREEZE_ACCOUNTS, 5_000)
    )

    # Bulk PSI: the police's suspects against the carrier's active phones.
    carrier_phones = [r for r in CARRIER if r.kind is IdentifierKind.PHONE]
    rng = random.Random("suspects")
    suspects = [r.value for r in carrier_phones[:20]] + [mobile_number(rng) for _ in range(20)]
    police = client(c, "police-1")
    carrier = client(c, "carrier-1")
    try:
        upsert_records(
            police.engine,
            [(normalise(IdentifierKind.PHONE, v), {"flag": "suspect"}) for v in suspects],
        )
        save_offer(carrier.engine, "phone", IdentifierKind.PHONE, {"status": "ACTIVE"})
    finally:
        police.client.close()
        carrier.client.close()
    active = {r.value for r in carrier_phones if r.attributes["status"] == "ACTIVE"}

    card = next(r for r in BANK if r.kind is IdentifierKind.BANK_CARD)
    phone = carrier_phones[0]
    return Plan(
        query=[normalise(card.kind, card.value), normalise(phone.kind, phone.value)],
        expected_matches={"bank-a": 1, "carrier-1": 1},
        psi_expected={normalise(IdentifierKind.PHONE, v).value for v in suspects} & active,
    )


@dataclass
class Restart:
    """When the broker was away; failures outside this window are real failures."""

    started: float = float("inf")
    ended: float = float("inf")

    def covers(self, t: float) -> bool:
        return self.started <= t <= self.ended + RESTART_GRACE_S


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: Counter[str] = field(default_factory=Counter)
    retried: Counter[str] = field(default_factory=Counter)
    actions: list[str] = field(default_factory=list)


@contextmanager
def serving(c: Consortium) -> Iterator[tuple[list[RunningBroker], dict[str, RunningNode]]]:
    brokers = [serve_broker(c.broker_config())]
    nodes: dict[str, RunningNode] = {}
    try:
        for node_id in NODES:
            nodes[node_id] = serve_node(c.node_config(node_id))
        yield brokers, nodes
    finally:
        for node in nodes.values():
            node.stop(0)
        brokers[-1].stop(0)


def test_every_call_finishes_through_resigning_and_a_broker_restart(tmp_path: Path) -> None:
    c = Consortium.create(tmp_path)
    plan = plant(c)
    restart = Restart()
    tally = Tally()
    stop = threading.Event()

    def unavailable(code: grpc.StatusCode | None, what: str, detail: str = "") -> None:
        """A failed call: fine (and retried) only if UNAVAILABLE around the restart."""
        now = time.monotonic()
        if code is grpc.StatusCode.UNAVAILABLE and restart.covers(now):
            with tally.lock:
                tally.retried[what] += 1
            time.sleep(0.2)  # back off while the broker is away
            return
        raise AssertionError(f"{what} failed with {code} outside the restart window: {detail}")

    def loop(what: str, call: Callable[[], None], per_run: int) -> Callable[[], None]:
        """Repeat `call` about `per_run` times over the run (the broker's hourly quotas)."""
        interval = SOAK_S / per_run

        def work() -> None:
            while not stop.is_set():
                began = time.monotonic()
                with watchdog.call(what, DEADLINE_S):
                    call()
                stop.wait(max(0.0, began + interval - time.monotonic()))

        return work

    with serving(c) as (brokers, nodes):
        police = client(c, "police-1")

        def match() -> None:
            outcomes = query_responders(police, plan.query, ["bank-a", "carrier-1"], **CASE)
            errors = [o.error for o in outcomes if o.error]
            if errors:
                code = grpc.StatusCode.UNAVAILABLE if "UNAVAILABLE" in errors[0] else None
                return unavailable(code, "match", errors[0])
            assert {o.node_id: len(o.matches) for o in outcomes} == plan.expected_matches
            with tally.lock:
                tally.done["match"] += 1

        def psi() -> None:
            try:
                outcome = run_psi(
                    police,
                    peer="carrier-1",
                    kind="phone",
                    where={"flag": "suspect"},
                    responder_set="phone",
                    chunk_size=10,
                    **CASE,
                )
            except BulkPsiError as exc:
                return unavailable(exc.status, "psi", exc.reason)
            assert outcome.matches is not None
            assert {i.value for i in outcome.matches} == plan.psi_expected
            with tally.lock:
                tally.done["psi"] += 1

        freeze_pool = iter(FREEZE_ACCOUNTS)
        stop_pool = iter(STOP_ACCOUNTS)

        def action() -> None:
            with tally.lock:
                n = len(tally.actions)
            if n % 2:
                spec = ActionSpec(
                    recipient="bank-a",
                    action="FREEZE",
                    identifier_kind="bank_account",
                    identifier=next(freeze_pool),
                    whole_balance=True,
                    duration_hours=72,
                    issuing_officer="o-1",
                    approving_officer="o-2",
                    **CASE,
                )
            else:
                spec = ActionSpec(
                    recipient="bank-a",
                    action="STOP_PAYMENT",
                    identifier_kind="bank_account",
                    identifier=next(stop_pool),
                    amount_minor=100,
                    duration_hours=24,
                    account_name=HOLDER,
                    transaction=PAID,
                    issuing_officer="o-1",
                    approving_officer="o-2",
                    **CASE,
                )
            try:
                submitted = issue_action(police, spec)
            except grpc.RpcError as exc:
                return unavailable(exc.code(), "action", exc.details())  # type: ignore[attr-defined]
            with tally.lock:
                tally.actions.append(submitted.message_id)
                tally.done["action"] += 1

        def checkpoint() -> None:
            try:
                police.client.latest_checkpoint()
            except grpc.RpcError as exc:
                return unavailable(exc.code(), "checkpoint", exc.details())  # type: ignore[attr-defined]
            with tally.lock:
                tally.done["checkpoint"] += 1

        def events() -> None:
            """The directory re-signed at a third of the run, the broker restarted at two."""
            began = time.monotonic()
            stop.wait(SOAK_S / 3)
            with watchdog.call("re-sign the directory", DEADLINE_S):
                old_serial = c.pki.directory().serial
                c.pki.issue("bank-z", "bank", agency="Bank Z", oprf_key_factory=generate_key_pair)
                new_serial = c.pki.directory().serial
                assert new_serial > old_serial
                # Every node, with the broker in between, moves to the new directory.
                for node in nodes.values():
                    wait_for(lambda n=node: n.ctx.client.directory().serial == new_serial)
                wait_for(lambda: police.client.directory().serial == new_serial)
            stop.wait(max(0.0, began + 2 * SOAK_S / 3 - time.monotonic()))
            with watchdog.call("restart the broker", DEADLINE_S):
                restart.started = time.monotonic()
                brokers[-1].stop(0)
                brokers.append(serve_broker(c.broker_config()))
                restart.ended = time.monotonic()
            stop.wait(max(0.0, began + SOAK_S - time.monotonic()))
            stop.set()

        workers = [
            loop("match", match, MATCHES // 2),
            loop("match", match, MATCHES // 2),
            loop("psi", psi, PSI_SESSIONS),
            loop("action", action, ACTIONS),
            loop("checkpoint", checkpoint, 10 * ACTIONS),
            events,
        ]
        try:
            with Watchdog() as watchdog:
                errors = run_threads(watchdog, workers, timeout_s=SOAK_S + 2 * DEADLINE_S)
            assert errors == [], errors

            # Every action request is executed, and the police node holds its receipt.
            actions = set(tally.actions)
            wait_for(
                lambda: all(request_state(police, a) == "executed" for a in actions),
                timeout=DEADLINE_S,
            )
            # So is any the broker took but could not acknowledge before it stopped.
            wait_for(lambda: set(receipts(c)) >= set(requests(c)), timeout=DEADLINE_S)
        finally:
            stop.set()
            police.client.close()

    requested = requests(c)
    assert actions <= set(requested) and len(requested) == len(set(requested))
    assert receipts(c) == Counter(requested)  # exactly one receipt per request
    assert tally.done["match"] > 0 and tally.done["psi"] > 0 and tally.done["checkpoint"] > 0
    assert tally.done["action"] == len(actions) > 0
    print(f"soak: {dict(tally.done)} done, {dict(tally.retried)} retried")


def requests(c: Consortium) -> list[str]:
    """The action requests the broker holds, from its database."""
    with opened(c.broker_database) as broker, Session(broker) as s:
        kinds = MessageRow.kind.in_(("STOP_PAYMENT", "FREEZE"))
        return list(s.scalars(select(MessageRow.message_id).where(kinds)))


def receipts(c: Consortium) -> Counter[str]:
    """How many receipts the broker holds for each request it holds one for."""
    with opened(c.broker_database) as broker, Session(broker) as s:
        receipt = MessageRow.kind == "ACTION_RECEIPT"
        return Counter(s.scalars(select(MessageRow.reply_to).where(receipt)))
