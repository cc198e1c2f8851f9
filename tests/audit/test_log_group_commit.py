"""`AuditLog.run` under concurrency: staged rows and entries land together, the log stays
one verifiable tree, and a replayed key fails only its own caller (SQLite and PostgreSQL)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from gateway.audit.log import Append, AuditLog
from gateway.audit.note import Ed25519Signer
from gateway.audit.source import stored_checkpoints, stored_entries
from gateway.audit.store import CheckpointRow
from gateway.audit.verify import VerifyReport, verify_log
from gateway.broker.models import EventRow, MessageRow
from tests.audit.conftest import ORIGIN

CALLERS = 12


@pytest.fixture
def log(broker_engine: Engine, signer: Ed25519Signer) -> Iterator[AuditLog]:
    log = AuditLog(broker_engine, signer, ORIGIN)
    yield log
    log.close()


def verify_stored(engine: Engine, signer: Ed25519Signer) -> VerifyReport:
    """What `gateway audit verify` finds in the stored entries and checkpoints."""
    return verify_log(
        stored_entries(engine), stored_checkpoints(engine), [signer.verifier()], ORIGIN
    )


def message(message_id: str) -> dict[str, object]:
    return {
        "message_id": message_id,
        "sender": "police-1",
        "kind": "PING",
        "case_ref": "C-1",
        "recipients": '["bank-a"]',
        "reply_to": "",
        "created_at_ms": 1,
        "expires_at_ms": 2,
        "received_at_ms": 1,
        "header": b"h",
        "payload": b"",
        "signature": b"s",
        "state": "requested",
    }


def store(message_id: str, with_detail: bool) -> Callable[[Session, Append], int]:
    def work(_session: Session, append: Append) -> int:
        row = append.row(MessageRow, **message(message_id))
        index = append({"type": "decision", "at_ms": 1, "message_id": message_id})
        row["audit_index"] = index
        event = {"message_id": message_id, "state": "requested", "at_ms": 1}
        if with_detail:  # rows of one table naming different columns share one INSERT
            event["detail"] = "with a detail"
        append.row(EventRow, **event)
        return index

    return work


def run_concurrently(log: AuditLog, ids: list[str]) -> list[int | Exception]:
    start = threading.Barrier(len(ids))

    def one(n: int) -> int | Exception:
        start.wait()
        try:
            result: int = log.run(store(ids[n], with_detail=n % 2 == 0))
            return result
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(len(ids)) as pool:
        return list(pool.map(one, range(len(ids))))


def test_concurrent_runs_make_one_verifiable_log(log: AuditLog, signer: Ed25519Signer) -> None:
    ids = [f"m{n:03d}" for n in range(CALLERS)]
    indexes = run_concurrently(log, ids)
    assert sorted(i for i in indexes if isinstance(i, int)) == list(range(CALLERS))
    with Session(log.engine) as session:
        rows = {r.message_id: r for r in session.scalars(select(MessageRow))}
        events = session.scalars(select(EventRow)).all()
    assert {m: rows[m].audit_index for m in ids} == dict(zip(ids, indexes, strict=True))
    assert rows["m001"].overdue == 0 and rows["m001"].hold_expires_at_ms == 0  # defaults
    details = {e.message_id: e.detail for e in events}
    assert details["m000"] == "with a detail" and details["m001"] == ""
    report = verify_stored(log.engine, signer)
    assert report.ok, report.problems
    assert report.entries == CALLERS
    assert 1 <= report.checkpoints <= CALLERS  # one per group commit


def test_a_replayed_message_fails_alone(log: AuditLog, signer: Ed25519Signer) -> None:
    log.run(store("seen", with_detail=False))
    ids = [f"n{n:03d}" for n in range(CALLERS)]
    ids[5] = "seen"
    results = run_concurrently(log, ids)
    assert isinstance(results[5], IntegrityError)
    good = sorted(r for n, r in enumerate(results) if n != 5 and isinstance(r, int))
    assert good == list(range(1, CALLERS))
    with Session(log.engine) as session:
        assert len(session.scalars(select(MessageRow)).all()) == CALLERS
        assert len(session.scalars(select(EventRow)).all()) == CALLERS
    report = verify_stored(log.engine, signer)
    assert report.ok, report.problems
    assert report.entries == CALLERS


def test_a_commit_that_fails_last_leaves_the_log_and_pool_usable(
    log: AuditLog, signer: Ed25519Signer
) -> None:
    """The checkpoint is the last row before the commit, so on PostgreSQL its failure
    surfaces only at the batched commit; the connection must not return to the pool
    half-way through that failed transaction, and the tree must not keep the entry."""
    log.run(store("first", with_detail=False))
    with Session(log.engine) as session:  # as if a replica had signed size 2 already
        session.add(CheckpointRow(size=2, note="stray", at_ms=1))
        session.commit()
    with pytest.raises(IntegrityError):
        log.run(store("second", with_detail=False))
    assert log.size == 1
    with Session(log.engine) as session:
        session.delete(session.get(CheckpointRow, 2))
        session.commit()
    assert log.run(store("second", with_detail=True)) == 1
    with Session(log.engine) as session:
        assert sorted(session.scalars(select(MessageRow.message_id))) == ["first", "second"]
    report = verify_stored(log.engine, signer)
    assert report.ok and report.entries == 2, report.problems


def test_a_lost_database_connection_costs_at_most_one_commit(
    log: AuditLog, signer: Ed25519Signer, backend: str
) -> None:
    """Busy logs keep their commit connection between commits; if the server drops it,
    the commit on it fails whole and the next one reconnects."""
    if backend != "postgres":
        pytest.skip("needs a server that can drop a client's connection")
    log.run(store("first", with_detail=False))
    writer = log._writer
    assert writer is not None
    backend_pid = writer.connection.driver_connection.info.backend_pid  # type: ignore[union-attr]
    with log.engine.connect() as admin:
        admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend_pid})
    with contextlib.suppress(OperationalError):
        log.run(store("second", with_detail=False))
    log.run(store("third", with_detail=False))
    with Session(log.engine) as session:
        stored = set(session.scalars(select(MessageRow.message_id)))
    assert {"first", "third"} <= stored <= {"first", "second", "third"}
    report = verify_stored(log.engine, signer)
    assert report.ok and report.entries == len(stored), report.problems


def test_two_logs_on_one_database_append_in_turn_without_losing_entries(
    broker_engine: Engine, signer: Ed25519Signer
) -> None:
    """Two broker processes on one database (replicas, or a restart overlapping the old
    process): each appends after what the other committed, and the log stays one tree."""
    first = AuditLog(broker_engine, signer, ORIGIN)
    second = AuditLog(broker_engine, signer, ORIGIN)
    try:
        assert first.run(store("a1", with_detail=False)) == 0
        assert second.run(store("b1", with_detail=False)) == 1
        assert first.run(store("a2", with_detail=False)) == 2
        ids = [f"c{n:03d}" for n in range(CALLERS)]

        def one(n: int) -> int:
            log = first if n % 2 else second
            result: int = log.run(store(ids[n], with_detail=False))
            return result

        with ThreadPoolExecutor(4) as pool:
            indexes = list(pool.map(one, range(CALLERS)))
        assert sorted(indexes) == list(range(3, 3 + CALLERS))
    finally:
        first.close()
        second.close()
    with Session(broker_engine) as session:
        rows = {r.message_id: r.audit_index for r in session.scalars(select(MessageRow))}
    assert rows["a1"] == 0 and rows["b1"] == 1 and rows["a2"] == 2
    assert {rows[m] for m in ids} == set(indexes)
    report = verify_stored(broker_engine, signer)
    assert report.ok, report.problems
    assert report.entries == 3 + CALLERS


def test_a_writer_that_loses_the_optimistic_race_appends_under_the_lock(
    broker_engine: Engine, signer: Ed25519Signer
) -> None:
    """Another writer commits while this one's group is being staged (a busier replica
    won the race): the group is run again on top of it, under the lock that keeps the
    other writers out, and the append does not fail for it."""
    busy = AuditLog(broker_engine, signer, ORIGIN)
    slow = AuditLog(broker_engine, signer, ORIGIN)
    raced: list[str] = []

    def losing(session: Session, append: Append) -> int:
        if not raced:  # the other writer takes the index first
            raced.append("busy0")
            busy.run(store(raced[-1], with_detail=False))
        return store("slow", with_detail=False)(session, append)

    try:
        index = slow.run(losing)
        after = slow.run(store("next", with_detail=False))
    finally:
        busy.close()
        slow.close()
    assert raced == ["busy0"]
    assert (index, after) == (1, 2)  # after the other writer's entry 0
    with Session(broker_engine) as session:
        rows = {r.message_id: r.audit_index for r in session.scalars(select(MessageRow))}
    assert rows == {"busy0": 0, "slow": 1, "next": 2}
    report = verify_stored(broker_engine, signer)
    assert report.ok and report.entries == 3, report.problems
