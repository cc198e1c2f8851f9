"""Several brokers over one PostgreSQL database claim each outbox row and deadline once.

Two `Broker`s built from the same configuration stand for two broker processes: each
has its own audit log writer, connection pool and lease name, and they meet only in
the database, as processes do.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from gateway.audit.store import AuditEntryRow
from gateway.broker.core import Broker
from gateway.broker.lifecycle import check_deadlines
from gateway.broker.models import DeliveryRow, MessageRow
from gateway.broker.outbox import OutboxWorker
from gateway.broker.server import build_broker
from gateway.localnet import Consortium
from tests.postgres import fresh_schema

pytestmark = pytest.mark.postgres

NOW = 1_800_000_000_000
LEASE_S = 30.0


@pytest.fixture
def brokers(tmp_path: Path) -> Iterator[tuple[Broker, Broker, str]]:
    with fresh_schema() as url:
        consortium = Consortium.create(tmp_path, database_urls={"broker": url})
        first, _ = build_broker(consortium.broker_config())
        second, _ = build_broker(consortium.broker_config())
        try:
            yield first, second, url
        finally:
            first.close()
            second.close()
            first.audit.engine.dispose()
            second.audit.engine.dispose()


def add_messages(url: str, count: int, **values: object) -> list[str]:
    """`count` stored action requests, each with one pending delivery due at NOW."""
    ids = [f"{i:032x}" for i in range(1, count + 1)]
    engine = create_engine(url)
    with Session(engine) as session:
        for message_id in ids:
            session.add(
                MessageRow(
                    message_id=message_id,
                    sender="police-1",
                    kind="STOP_PAYMENT",
                    case_ref="C-HA",
                    recipients=json.dumps(["bank-a"]),
                    reply_to="",
                    created_at_ms=NOW - 1000,
                    expires_at_ms=NOW + 3_600_000,
                    received_at_ms=NOW - 1000,
                    header=b"h",
                    payload=b"p",
                    signature=b"s",
                    **values,
                )
            )
            session.add(
                DeliveryRow(message_id=message_id, recipient="bank-a", next_attempt_at_ms=NOW)
            )
        session.commit()
    engine.dispose()
    return ids


def worker(broker: Broker) -> OutboxWorker:
    return OutboxWorker(broker, batch=40, lease_s=LEASE_S, attempt_s=5.0)


def test_two_brokers_claiming_at_once_get_disjoint_rows_covering_the_outbox(
    brokers: tuple[Broker, Broker, str],
) -> None:
    first, second, url = brokers
    add_messages(url, 60)
    workers = [worker(first), worker(second)]
    claimed: list[list[int]] = [[], []]
    start = threading.Barrier(2)

    def claim_all(i: int) -> None:
        start.wait()
        while batch := workers[i].claim(NOW):
            claimed[i].extend(c.delivery_id for c in batch)

    threads = [threading.Thread(target=claim_all, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    both = claimed[0] + claimed[1]
    assert len(both) == len(set(both)) == 60
    engine = create_engine(url)
    with Session(engine) as session:
        owners = dict(session.execute(select(DeliveryRow.id, DeliveryRow.lease_owner)).all())
    engine.dispose()
    assert {owners[i] for i in claimed[0]} <= {workers[0].owner}
    assert {owners[i] for i in claimed[1]} <= {workers[1].owner}


def test_a_dead_brokers_claims_are_taken_over_once_their_lease_ends(
    brokers: tuple[Broker, Broker, str],
) -> None:
    first, second, url = brokers
    add_messages(url, 5)
    dead, alive = worker(first), worker(second)
    assert len(dead.claim(NOW)) == 5  # and then it dies without attempting them
    assert alive.claim(NOW + int(LEASE_S * 1000) - 1) == []
    taken = alive.claim(NOW + int(LEASE_S * 1000))
    assert len(taken) == 5


def test_claims_let_go_are_claimable_at_once(brokers: tuple[Broker, Broker, str]) -> None:
    first, second, url = brokers
    add_messages(url, 3)
    one, other = worker(first), worker(second)
    one.release(one.claim(NOW))
    assert len(other.claim(NOW)) == 3


def test_a_retry_by_a_broker_whose_claim_was_taken_over_changes_nothing(
    brokers: tuple[Broker, Broker, str],
) -> None:
    first, second, url = brokers
    add_messages(url, 1)
    slow, fast = worker(first), worker(second)
    [claim] = slow.claim(NOW)
    fast.claim(NOW + int(LEASE_S * 1000))
    slow._retry(claim.delivery_id, "bank-a: UNAVAILABLE")
    engine = create_engine(url)
    with Session(engine) as session:
        row = session.get(DeliveryRow, claim.delivery_id)
        assert row is not None
        assert (row.attempts, row.lease_owner, row.last_error) == (0, fast.owner, "")
    engine.dispose()


def test_deadlines_checked_by_two_brokers_at_once_are_flagged_and_audited_once(
    brokers: tuple[Broker, Broker, str],
) -> None:
    """Two checks racing for the same rows: one flags them; the other skips the rows
    it finds locked, or, had it read them first, loses the race for the next log index
    and runs again on top of what was committed (`gateway.audit.log`)."""
    first, second, url = brokers
    ids = add_messages(url, 40, answer_due_at_ms=NOW - 1, state="delivered")
    counts: list[tuple[int, int]] = []
    start = threading.Barrier(2)

    def check(broker: Broker) -> None:
        start.wait()
        for at in range(NOW, NOW + 5):
            counts.append(check_deadlines(broker.audit, at))

    threads = [threading.Thread(target=check, args=(b,)) for b in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sum(overdue for overdue, _ in counts) == 40
    engine = create_engine(url)
    with Session(engine) as session:
        leaves = [json.loads(leaf) for leaf in session.scalars(select(AuditEntryRow.leaf))]
        flagged = session.scalar(select(func.count()).where(MessageRow.overdue == 1))
    engine.dispose()
    overdue = sorted(e["message_id"] for e in leaves if e.get("type") == "deadline")
    assert overdue == ids
    assert flagged == 40
