"""The staff trail is a hash chain: edits, insertions and deletions are found."""

from __future__ import annotations

import hashlib
import json
import threading

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from nodes.staff.trail import GENESIS, StaffEventRow, recent, record, verify_trail


def fill(engine: Engine, n: int = 5) -> None:
    for i in range(n):
        record(engine, f"user-{i % 2}", "login", "ok", f"event {i}")


def test_chain_links_each_event_to_the_one_before(engine: Engine) -> None:
    fill(engine, 3)
    with Session(engine) as s:
        rows = list(s.scalars(select(StaffEventRow).order_by(StaffEventRow.id)))
    assert [r.id for r in rows] == [1, 2, 3]
    prev = GENESIS
    for r in rows:
        fields = [r.id, r.at_ms, r.user_id, r.event, r.outcome, r.detail, prev]
        expected = hashlib.sha256(
            json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
        ).hexdigest()
        assert (r.prev_hash, r.entry_hash) == (prev, expected)
        prev = r.entry_hash
    assert verify_trail(engine) == []


def test_an_edited_event_is_found(engine: Engine) -> None:
    fill(engine)
    with engine.begin() as conn:
        conn.execute(update(StaffEventRow).where(StaffEventRow.id == 3).values(outcome="refused"))
    assert verify_trail(engine) == ["event 3: content does not match its hash"]


def test_a_deleted_event_is_found(engine: Engine) -> None:
    fill(engine)
    with engine.begin() as conn:
        conn.execute(delete(StaffEventRow).where(StaffEventRow.id == 2))
    assert verify_trail(engine) == [
        "event 2 to 2 missing",
        "event 3: does not follow the event before it",
    ]


def test_a_rehashed_edit_breaks_the_next_link(engine: Engine) -> None:
    """Editing an event and recomputing its own hash still breaks the chain after it."""
    fill(engine)
    with Session(engine) as s, s.begin():
        row = s.get(StaffEventRow, 2)
        assert row is not None
        row.user_id = "someone-else"
        fields = [row.id, row.at_ms, row.user_id, row.event, row.outcome, row.detail, row.prev_hash]
        row.entry_hash = hashlib.sha256(
            json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
        ).hexdigest()
    assert verify_trail(engine) == ["event 3: does not follow the event before it"]


def test_concurrent_writers_keep_one_chain(engine: Engine) -> None:
    def write(name: str) -> None:
        for i in range(8):
            record(engine, name, "draft", "ok", f"draft {i}")

    threads = [threading.Thread(target=write, args=(f"user-{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert verify_trail(engine) == []
    assert len(recent(engine, 100)) == 32


def test_recent_is_newest_first_and_filters_by_user(engine: Engine) -> None:
    fill(engine, 5)
    assert [e.detail for e in recent(engine, 2)] == ["event 4", "event 3"]
    assert [e.detail for e in recent(engine, 10, user_id="user-1")] == ["event 3", "event 1"]


def test_an_event_joins_the_callers_transaction(engine: Engine) -> None:
    """Recorded through a session, the event is undone with the caller's work."""
    fill(engine, 1)
    with Session(engine) as s:
        s.begin()
        record(s, "user-9", "approve", "ok", "draft x")
        s.rollback()
    assert [e.user_id for e in recent(engine, 10)] == ["user-0"]
    assert verify_trail(engine) == []
