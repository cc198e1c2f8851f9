"""Whole-log verification finds tampering, deletion, reordering, insertion and bad keys.

Each test writes a real log through `AuditLog` into a fresh broker database (SQLite, then
PostgreSQL), with a signed checkpoint after every append (as the broker signs one per
receipt), tampers with the rows the way a broker operator could, and checks where
verification points.
"""

from __future__ import annotations

import gc
import sys
import warnings

import pytest
from sqlalchemy import Engine, delete, update
from sqlalchemy.orm import Session

from gateway.audit.log import AuditLog, canonical_json
from gateway.audit.merkle import leaf_hash
from gateway.audit.note import Ed25519Signer
from gateway.audit.source import stored_checkpoints, stored_entries
from gateway.audit.store import AuditEntryRow
from gateway.audit.verify import VerifyReport, verify_log
from tests.audit.conftest import ORIGIN

ENTRIES = 12


@pytest.fixture
def engine(broker_engine: Engine, signer: Ed25519Signer) -> Engine:
    """A log of ENTRIES entries with a signed checkpoint after each."""
    log = AuditLog(broker_engine, signer, ORIGIN)
    for i in range(ENTRIES):  # each commit signs a checkpoint of the tree it leaves
        entry = {"type": "decision", "at_ms": 1000 + i, "kind": "PING", "n": i}
        log.run(lambda _session, append, entry=entry: append(entry))
    log.close()
    return broker_engine


def verify(engine: Engine, signer: Ed25519Signer) -> VerifyReport:
    return verify_log(
        stored_entries(engine), stored_checkpoints(engine), [signer.verifier()], ORIGIN
    )


def rewrite(engine: Engine, index: int, entry: dict[str, object], *, fix_hash: bool) -> None:
    leaf = canonical_json(entry)
    values: dict[str, object] = {"leaf": leaf}
    if fix_hash:
        values["leaf_hash"] = leaf_hash(leaf)
    with Session(engine) as s:
        s.execute(update(AuditEntryRow).where(AuditEntryRow.idx == index).values(**values))
        s.commit()


def test_untouched_log_verifies(engine: Engine, signer: Ed25519Signer) -> None:
    report = verify(engine, signer)
    assert report.ok, report.problems
    assert (report.entries, report.checkpoints) == (ENTRIES, ENTRIES)


def test_changed_entry_is_found_by_its_stored_hash(engine: Engine, signer: Ed25519Signer) -> None:
    rewrite(
        engine, 5, {"type": "decision", "at_ms": 1005, "kind": "FREEZE", "n": 5}, fix_hash=False
    )
    report = verify(engine, signer)
    assert not report.ok
    assert report.first_bad_entry == 5


def test_changed_entry_with_recomputed_hash_is_found_by_the_checkpoints(
    engine: Engine, signer: Ed25519Signer
) -> None:
    rewrite(engine, 7, {"type": "decision", "at_ms": 1007, "kind": "FREEZE", "n": 7}, fix_hash=True)
    report = verify(engine, signer)
    assert not report.ok
    assert report.first_bad_entry == 7
    assert "between 7 and 7" in str(report.problems[0])


def test_deleted_entry_is_reported_where_the_gap_is(engine: Engine, signer: Ed25519Signer) -> None:
    with Session(engine) as s:
        s.execute(delete(AuditEntryRow).where(AuditEntryRow.idx == 3))
        s.commit()
    report = verify(engine, signer)
    assert report.first_bad_entry == 3
    assert "missing" in str(report.problems[0])


def test_entries_removed_from_the_end_are_reported(engine: Engine, signer: Ed25519Signer) -> None:
    with Session(engine) as s:
        s.execute(delete(AuditEntryRow).where(AuditEntryRow.idx >= 10))
        s.commit()
    report = verify(engine, signer)
    assert report.first_bad_entry == 10
    assert "removed from the end" in str(report.problems[0])


def test_reordered_entries_are_found(engine: Engine, signer: Ed25519Signer) -> None:
    entries = {e.position: e for e in stored_entries(engine)}
    with Session(engine) as s:
        for a, b in ((4, 8), (8, 4)):
            s.execute(
                update(AuditEntryRow)
                .where(AuditEntryRow.idx == a)
                .values(leaf=entries[b].leaf, leaf_hash=entries[b].stored_hash)
            )
        s.commit()
    report = verify(engine, signer)
    assert report.first_bad_entry == 4


def test_inserted_entry_is_found(engine: Engine, signer: Ed25519Signer) -> None:
    # Shift entries 6.. up by one and put a forged entry at 6, hashes all recomputed.
    entries = list(stored_entries(engine))
    with Session(engine) as s:
        s.execute(delete(AuditEntryRow).where(AuditEntryRow.idx >= 6))
        forged = canonical_json({"type": "decision", "at_ms": 1006, "kind": "PING", "n": -1})
        s.add(AuditEntryRow(idx=6, leaf=forged, leaf_hash=leaf_hash(forged), at_ms=1006))
        for e in entries[6:]:
            s.add(
                AuditEntryRow(idx=e.position + 1, leaf=e.leaf, leaf_hash=leaf_hash(e.leaf), at_ms=0)
            )
        s.commit()
    report = verify(engine, signer)
    assert report.first_bad_entry == 6


def test_checkpoint_signed_by_another_key_is_reported(
    engine: Engine, signer: Ed25519Signer
) -> None:
    other = Ed25519Signer.generate(ORIGIN)
    report = verify_log(
        stored_entries(engine), stored_checkpoints(engine), [other.verifier()], ORIGIN
    )
    assert not report.ok
    assert report.problems[0].checkpoint_size == 1
    assert "signature" in str(report.problems[0])


def test_a_reader_stopping_early_leaves_no_cursor_open(engine: Engine) -> None:
    """`gateway audit verify` stops at the first gap; the streamed read must still close."""
    entries = stored_entries(engine)
    assert next(entries).position == 0
    gc.collect()  # other tests' garbage first, so that only this reader's is judged
    unraisable: list[sys.UnraisableHookArgs] = []
    previous, sys.unraisablehook = sys.unraisablehook, unraisable.append
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)
            del entries
            gc.collect()
    finally:
        sys.unraisablehook = previous
    assert [str(u.exc_value) for u in unraisable if "ursor" in str(u.exc_value)] == []
