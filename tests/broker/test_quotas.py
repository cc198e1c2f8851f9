"""Quotas and size bounds at the broker, end to end, on SQLite and on PostgreSQL.

The broker's counters live in its database: they survive a restart, count every action
kind together as well as each kind, count bytes, and lose nothing when two brokers count
at once. Each test moves the broker's counters to an hour of its own on a manual clock,
so that no test sees another's counts.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from gateway import migrate
from gateway.audit.store import AuditEntryRow
from gateway.broker.models import MessageRow
from gateway.broker.quotas import QuotaCounter
from gateway.broker.server import RunningBroker
from gateway.envelope.build import Draft, now_ms
from gateway.transport import TlsFiles, secure_channel
from gateway.v1 import gateway_pb2 as pb
from gateway.v1 import gateway_pb2_grpc as rpc
from nodes.actions.orders import request_payload
from nodes.journal import InboundRow
from tests.consortium import Consortium, running
from tests.postgres import opened

HOUR = 3_600_000
NODES = ("police-1", "bank-a")
CASE = {"case_ref": "C-QUOTA", "legal_basis": "Anti-Telecom-Fraud Law art. 11"}
_HOURS_USED = [0]


class ManualClock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def own_hour() -> ManualClock:
    """A clock early in an hour no other test of the module counts in."""
    _HOURS_USED[0] += 10
    return ManualClock((now_ms() // HOUR + 5 + _HOURS_USED[0]) * HOUR + 1_000)


@pytest.fixture
def broker(backend_consortium: Consortium) -> Iterator[RunningBroker]:
    with running(backend_consortium, NODES) as (broker, _nodes):
        broker.broker.rates.clock_ms = own_hour()
        yield broker


def stub_as(c: Consortium, node_id: str) -> rpc.BrokerStub:
    bundle = c.pki.bundle(node_id)
    tls = TlsFiles(bundle.tls_cert, bundle.tls_key, bundle.ca_cert)
    return rpc.BrokerStub(secure_channel(f"127.0.0.1:{c.broker_port}", "broker", tls))


def signed(c: Consortium, draft: Draft) -> pb.Envelope:
    return draft.sign(c.pki.bundle(draft.sender).keys().signing)


def ping(sender: str = "police-1", recipient: str = "bank-a", payload: bytes = b"{}") -> Draft:
    return Draft(
        sender=sender, recipients=[recipient], kind="PING", payload=payload, purpose="test"
    )


def action(c: Consortium, kind: str) -> Draft:
    bank = c.pki.directory().get("bank-a")
    assert bank is not None
    return Draft(
        sender="police-1",
        recipients=["bank-a"],
        kind=kind,
        payload=request_payload("bank_account", "6222020000000001"),
        seal_to=bank.seal_key,
        terms=pb.ActionTerms(
            action=kind,
            amount_minor=1_000,
            duration_hours=2,
            issuing_officer="officer-7",
            approving_officer="chief-2",
        ),
        **CASE,
    )


def refusal(stub: rpc.BrokerStub, envelope: pb.Envelope) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        stub.Submit(envelope, timeout=10)
    return info.value


def size(envelope: pb.Envelope) -> int:
    return len(envelope.header) + len(envelope.payload) + len(envelope.signature)


def decision_entry(c: Consortium, message_id: str) -> dict[str, object]:
    with opened(c.broker_database) as engine, Session(engine) as s:
        for (leaf,) in s.execute(select(AuditEntryRow.leaf).order_by(AuditEntryRow.idx)):
            entry = json.loads(leaf)
            if entry.get("type") == "decision" and entry.get("message_id") == message_id:
                return dict(entry)
    raise AssertionError("no decision entry for the message")


def stored_message(c: Consortium, message_id: str) -> tuple[str, bytes]:
    with opened(c.broker_database) as engine, Session(engine) as s:
        row = s.get(MessageRow, message_id)
        assert row is not None
        return row.state, bytes(row.payload)


@contextmanager
def migrated(database: str) -> Iterator[Engine]:
    """An engine on the broker's database, migrated as a starting broker would."""
    with opened(database) as engine:
        migrate.upgrade(engine, "broker")
        yield engine


def journalled(c: Consortium, node_id: str, message_id: str) -> bool:
    with opened(c.node_config(node_id).database) as engine, Session(engine) as s:
        return s.get(InboundRow, message_id) is not None


# -- sizes ---------------------------------------------------------------------------------


def test_oversized_ping_is_denied_audited_and_not_stored(
    backend_consortium: Consortium, broker: RunningBroker
) -> None:
    c = backend_consortium
    payload = b"x" * 257  # the bound is 256 bytes
    draft = ping(payload=payload)
    err = refusal(stub_as(c, "police-1"), signed(c, draft))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "forbid-oversized-ping-pong" in (err.details() or "")
    entry = decision_entry(c, draft.message_id)
    assert (entry["decision"], entry["policy_ids"]) == ("DENY", ["forbid-oversized-ping-pong"])
    assert entry["payload_bytes"] == len(payload)
    assert stored_message(c, draft.message_id) == ("denied", b"")
    assert not journalled(c, "bank-a", draft.message_id)

    at_bound = ping(payload=b"x" * 256)
    assert stub_as(c, "police-1").Submit(signed(c, at_bound), timeout=10).decision == "ALLOW"


# -- quotas --------------------------------------------------------------------------------


def test_quota_survives_a_broker_restart(backend_consortium: Consortium) -> None:
    c = backend_consortium
    clock = own_hour()
    with running(c, NODES) as (first, _nodes):
        first.broker.rates.clock_ms = clock
        # as if police-1 had sent 35999 pings this hour, then the 36000th, the last allowed
        first.broker.rates.hit("police-1", "PING", 0, messages=35_999)
        assert stub_as(c, "police-1").Submit(signed(c, ping()), timeout=10).decision == "ALLOW"
    with running(c, NODES) as (second, _nodes):
        second.broker.rates.clock_ms = clock
        err = refusal(stub_as(c, "police-1"), signed(c, ping()))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "forbid-pings-over-quota" in (err.details() or "")


def test_stop_payment_after_freezes_is_over_the_all_actions_quota(
    backend_consortium: Consortium, broker: RunningBroker
) -> None:
    c = backend_consortium
    counters = broker.broker.rates
    # as if police-1 had used up its freezes (100) and extensions (100) this hour
    counters.hit("police-1", "FREEZE", 0, messages=100)
    counters.hit("police-1", "EXTEND", 0, messages=100)
    stop = action(c, "STOP_PAYMENT")
    err = refusal(stub_as(c, "police-1"), signed(c, stop))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    entry = decision_entry(c, stop.message_id)
    assert (entry["decision"], entry["policy_ids"]) == ("DENY", ["forbid-all-actions-over-quota"])
    assert stored_message(c, stop.message_id) == ("denied", b"")


def test_bytes_quota_counts_every_kind_of_a_sender(
    backend_consortium: Consortium, broker: RunningBroker
) -> None:
    c = backend_consortium
    counters = broker.broker.rates
    stub = stub_as(c, "bank-a")
    first, second = signed(c, ping("bank-a", "police-1")), signed(c, ping("bank-a", "police-1"))
    quota = 256 * 2**20
    # bank-a sent other kinds worth the quota less its next ping this hour
    counters.hit("bank-a", "PSI_REQUEST", quota - size(first), messages=0)
    assert stub.Submit(first, timeout=10).decision == "ALLOW"  # exactly at the quota
    err = refusal(stub, second)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "forbid-bytes-over-quota" in (err.details() or "")


# -- two brokers counting at once ---------------------------------------------------------------


def test_two_brokers_counting_at_once_lose_nothing(backend_consortium: Consortium) -> None:
    """Two counters with their own engines (as two broker processes have) over one
    database, four threads each, all counting the same sender and kind."""
    clock = own_hour()
    with migrated(backend_consortium.broker_database) as engine:
        counters = [QuotaCounter.beside(engine, clock_ms=clock) for _ in range(2)]
        threads, hits, seen = 4, 50, []
        lock = threading.Lock()
        go = threading.Barrier(2 * threads)

        def count(counter: QuotaCounter) -> None:
            go.wait()
            for _ in range(hits):
                usage = counter.hit("bank-b", "MATCH_QUERY", 10)
                with lock:
                    seen.append((usage.kind_messages, usage.bytes))

        workers = [
            threading.Thread(target=count, args=(counter,))
            for counter in counters
            for _ in range(threads)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        assert not any(worker.is_alive() for worker in workers)
        total = 2 * threads * hits
        # each hit saw its own count: none was lost or counted twice
        assert sorted(count for count, _ in seen) == list(range(1, total + 1))
        assert sorted(b for _, b in seen) == [10 * n for n in range(1, total + 1)]
        after = counters[0].hit("bank-b", "MATCH_QUERY", 0, messages=0)
        assert (after.kind_messages, after.bytes) == (total, 10 * total)
        for counter in counters:
            counter.close()


def test_count_slides_out_over_the_next_hour(backend_consortium: Consortium) -> None:
    clock = own_hour()  # 1 s into an hour
    with migrated(backend_consortium.broker_database) as engine:
        counter = QuotaCounter.beside(engine, clock_ms=clock)
        counter.hit("carrier-1", "PING", 100, messages=60)
        clock.now += HOUR  # 1 s into the next hour: 1 s of the previous one slid out
        assert counter.hit("carrier-1", "PING", 0, messages=0).kind_messages == 60
        clock.now += HOUR // 2  # half of the previous hour left: 30 of its 60
        assert counter.hit("carrier-1", "PING", 0, messages=0).kind_messages == 30
        clock.now += HOUR  # two windows on: nothing left
        assert counter.hit("carrier-1", "PING", 7).kind_messages == 1
        counter.close()


def test_count_survives_the_database_dropping_a_connection(
    backend: str, backend_consortium: Consortium
) -> None:
    """The counters' pool does not ping connections before use: a connection the server
    dropped (a restart, an idle timeout) fails once, and the count is retried."""
    if backend != "postgres":
        pytest.skip("a SQLite file does not drop connections")
    clock = own_hour()
    with migrated(backend_consortium.broker_database) as engine:
        counter = QuotaCounter.beside(engine, clock_ms=clock)
        assert counter.hit("bank-b", "PSI_REQUEST", 5).kind_messages == 1
        pooled = counter.engine.raw_connection()  # the one connection the count used
        cursor = pooled.cursor()
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
        pooled.close()
        with engine.connect() as admin:
            assert admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
        assert counter.hit("bank-b", "PSI_REQUEST", 5).kind_messages == 2
        counter.close()


def test_counts_sharing_one_upsert_are_told_apart_in_order(
    backend_consortium: Consortium,
) -> None:
    """Concurrent hits of one sender share upserts (fewer statements than hits), yet each
    is told the counts as if the hits had come one at a time: its bytes are the previous
    hit's plus its own size, whatever order they were queued in."""
    clock = own_hour()
    with migrated(backend_consortium.broker_database) as engine:
        counter = QuotaCounter.beside(engine, clock_ms=clock)
        statements = [0]
        upsert = counter._upsert

        def counted(*args: object) -> list[object]:
            statements[0] += 1
            return upsert(*args)  # type: ignore[arg-type]

        counter._upsert = counted  # type: ignore[method-assign]
        threads, hits, seen = 8, 40, {}
        lock = threading.Lock()
        go = threading.Barrier(threads)

        def count(size: int) -> None:
            go.wait()
            for _ in range(hits):
                usage = counter.hit("carrier-1", "PING", size)
                with lock:
                    seen[usage.kind_messages] = (usage.bytes, size)

        workers = [threading.Thread(target=count, args=(n + 1,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        assert not any(worker.is_alive() for worker in workers)
        total = threads * hits
        assert sorted(seen) == list(range(1, total + 1))
        previous = 0
        for n in range(1, total + 1):
            after, size = seen[n]
            assert after == previous + size, f"hit {n}"
            previous = after
        assert previous == hits * sum(range(1, threads + 1))
        assert statements[0] < total
        counter.close()
