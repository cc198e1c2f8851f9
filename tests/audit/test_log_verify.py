"""Whole-log verification finds tampering, deletion, reordering, insertion and bad keys.

Each test writes a real log through `AuditLog` into a fresh broker database (SQLite, then
PostgreSQL), with a signed checkpoint after every commit (one entry each, or three for
`grouped`, as the broker's group commits sign one per group), tampers with the rows the
way a broker operator could, and checks where verification points. The attacker's
cheapest moves come first: delete the checkpoints above a change, delete them all,
truncate the tail with its checkpoints, roll back, fork, swap.
"""

from __future__ import annotations

import gc
import sys
import warnings

import pytest
from sqlalchemy import Engine, delete, update
from sqlalchemy.orm import Session

from gateway.audit.checkpoint import Checkpoint, format_checkpoint, open_checkpoint
from gateway.audit.log import AuditLog, canonical_json
from gateway.audit.merkle import leaf_hash, root_from_leaf_hashes
from gateway.audit.note import Ed25519Signer, sign_note
from gateway.audit.source import stored_checkpoints, stored_entries
from gateway.audit.store import AuditEntryRow, CheckpointRow
from gateway.audit.verify import StoredEntry, TrustedCheckpoint, VerifyReport, verify_log
from gateway.broker.lifecycle import check_deadlines
from gateway.broker.models import MessageRow
from tests.audit.conftest import ORIGIN

ENTRIES = 12
GROUP = 3


@pytest.fixture
def engine(broker_engine: Engine, signer: Ed25519Signer) -> Engine:
    """A log of ENTRIES entries with a signed checkpoint after each."""
    log = AuditLog(broker_engine, signer, ORIGIN)
    for i in range(ENTRIES):  # each commit signs a checkpoint of the tree it leaves
        entry = {"type": "decision", "at_ms": 1000 + i, "kind": "PING", "n": i}
        log.run(lambda _session, append, entry=entry: append(entry))
    log.close()
    return broker_engine


@pytest.fixture
def grouped(broker_engine: Engine, signer: Ed25519Signer) -> Engine:
    """A log of ENTRIES entries committed GROUP at a time: checkpoints 3, 6, 9 and 12."""
    log = AuditLog(broker_engine, signer, ORIGIN)
    for first in range(0, ENTRIES, GROUP):
        entries = [
            {"type": "decision", "at_ms": 1000 + i, "kind": "PING", "n": i}
            for i in range(first, first + GROUP)
        ]
        log.run(lambda _session, append, entries=entries: [append(e) for e in entries])
    log.close()
    return broker_engine


def verify(
    engine: Engine, signer: Ed25519Signer, trusted: tuple[TrustedCheckpoint, ...] = ()
) -> VerifyReport:
    return verify_log(
        stored_entries(engine),
        stored_checkpoints(engine),
        [signer.verifier()],
        ORIGIN,
        trusted=trusted,
    )


def delete_checkpoints(engine: Engine, above: int) -> None:
    with Session(engine) as s:
        s.execute(delete(CheckpointRow).where(CheckpointRow.size > above))
        s.commit()


def delete_entries(engine: Engine, start: int) -> None:
    with Session(engine) as s:
        s.execute(delete(AuditEntryRow).where(AuditEntryRow.idx >= start))
        s.commit()


def trusted_at(engine: Engine, signer: Ed25519Signer, size: int) -> TrustedCheckpoint:
    """The stored checkpoint of `size`, as a witness would have kept it."""
    note = next(c.note for c in stored_checkpoints(engine) if c.size == size)
    checkpoint, _ = open_checkpoint(note, [signer.verifier()], origin=ORIGIN)
    return TrustedCheckpoint(f"seen-{size}.ckpt", checkpoint)


def messages(report: VerifyReport) -> str:
    return "\n".join(str(p) for p in report.problems)


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
    assert [p.entry for p in report.problems if "hash differs" in p.what] == [5]


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
    assert f"rollback: the log has 10 entries but a checkpoint of size {ENTRIES} was seen" in (
        messages(report)
    )


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


# -- what only coverage catches: entries no valid checkpoint signs ----------------------


def test_healthy_log_is_covered_to_its_end(grouped: Engine, signer: Ed25519Signer) -> None:
    report = verify(grouped, signer)
    assert report.ok, report.problems
    assert (report.covered, report.first_uncovered) == (ENTRIES, None)


def test_every_kind_of_commit_leaves_the_log_covered(
    broker_engine: Engine, signer: Ed25519Signer
) -> None:
    """A decision, a failed piece, a commit with no entry, a deadline event, a checkpoint
    asked for between commits: the latest stored checkpoint always covers the whole log."""
    log = AuditLog(broker_engine, signer, ORIGIN)
    with Session(broker_engine) as s:
        s.add(
            MessageRow(
                message_id="m-late",
                sender="police-1",
                kind="FREEZE",
                recipients="[]",
                created_at_ms=0,
                expires_at_ms=10**13,
                received_at_ms=0,
                header=b"",
                payload=b"",
                signature=b"",
                answer_due_at_ms=5,
            )
        )
        s.commit()

    def failing(_session: Session, append: object) -> None:
        raise RuntimeError("refused")

    def covered_to_the_end() -> None:
        report = verify(broker_engine, signer)
        assert report.ok, report.problems
        assert stored_checkpoints(broker_engine)[-1].size == report.entries == log.size

    try:
        log.run(lambda _s, append: append({"type": "decision", "at_ms": 1, "n": 0}))
        covered_to_the_end()
        with pytest.raises(RuntimeError):
            log.run(failing)
        log.run(lambda _s, _append: None)
        covered_to_the_end()
        log.checkpoint()
        assert check_deadlines(log, now_ms=10) == (1, 0)
        covered_to_the_end()
        log.run(lambda _s, append: append({"type": "rejection", "at_ms": 11, "check": "x"}))
        covered_to_the_end()
    finally:
        log.close()
    assert log.size == 3


def test_change_with_the_checkpoints_above_it_deleted_is_not_covered(
    engine: Engine, signer: Ed25519Signer
) -> None:
    rewrite(engine, 7, {"type": "decision", "at_ms": 1007, "kind": "FREEZE", "n": 7}, fix_hash=True)
    delete_checkpoints(engine, above=7)
    report = verify(engine, signer)
    assert not report.ok
    assert (report.first_uncovered, report.first_bad_entry) == (7, 7)
    assert "entries 7 to 11: not covered by a valid signed checkpoint" in messages(report)


def test_log_with_every_checkpoint_deleted_fails(engine: Engine, signer: Ed25519Signer) -> None:
    delete_checkpoints(engine, above=-1)
    report = verify(engine, signer)
    assert not report.ok
    assert (report.checkpoints, report.first_uncovered) == (0, 0)
    assert f"no valid signed checkpoint covers any of the log's {ENTRIES} entries" in messages(
        report
    )


def test_empty_log_without_checkpoints_verifies(
    broker_engine: Engine, signer: Ed25519Signer
) -> None:
    report = verify(broker_engine, signer)
    assert report.ok, report.problems


def test_tail_truncated_inside_a_commit_with_its_checkpoints_is_not_covered(
    grouped: Engine, signer: Ed25519Signer
) -> None:
    delete_entries(grouped, 10)  # the commit of entries 9-11 loses 10 and 11
    delete_checkpoints(grouped, above=9)
    report = verify(grouped, signer)
    assert not report.ok
    assert report.first_uncovered == 9


def test_checkpoint_of_another_log_does_not_cover(engine: Engine, signer: Ed25519Signer) -> None:
    # The broker's own key, the right root, but the body names another log.
    root = root_from_leaf_hashes(leaf_hash(e.leaf) for e in stored_entries(engine))
    other = Checkpoint("other.test/gateway-audit", ENTRIES, root)
    with Session(engine) as s:
        s.execute(
            update(CheckpointRow)
            .where(CheckpointRow.size == ENTRIES)
            .values(note=sign_note(format_checkpoint(other), [signer]).decode())
        )
        s.commit()
    report = verify(engine, signer)
    assert not report.ok
    assert report.first_uncovered == ENTRIES - 1
    assert "not the expected" in messages(report)


def test_checkpoint_stored_under_another_size_does_not_cover(
    engine: Engine, signer: Ed25519Signer
) -> None:
    # The note of size 11 moved to the row of size 12 (whose own note is dropped).
    with Session(engine) as s:
        note = s.get(CheckpointRow, ENTRIES - 1).note  # type: ignore[union-attr]
        s.execute(delete(CheckpointRow).where(CheckpointRow.size >= ENTRIES - 1))
        s.add(CheckpointRow(size=ENTRIES, note=note, at_ms=0))
        s.commit()
    report = verify(engine, signer)
    assert not report.ok
    assert f"note says size {ENTRIES - 1}, stored as {ENTRIES}" in messages(report)


# -- what only a checkpoint seen before catches: rollback and fork --------------------


def test_checkpoint_seen_before_that_the_log_holds_verifies(
    grouped: Engine, signer: Ed25519Signer
) -> None:
    report = verify(
        grouped, signer, (trusted_at(grouped, signer, 6), trusted_at(grouped, signer, 12))
    )
    assert report.ok, report.problems
    assert report.trusted == 2


def test_rollback_with_the_tail_and_its_checkpoints_deleted(
    grouped: Engine, signer: Ed25519Signer
) -> None:
    seen = trusted_at(grouped, signer, ENTRIES)
    delete_entries(grouped, 6)  # back to the log as it was after its second commit
    delete_checkpoints(grouped, above=6)
    assert verify(grouped, signer).ok  # alone, an earlier state is a valid log
    report = verify(grouped, signer, (seen,))
    assert not report.ok
    assert (
        f"rollback: the log has 6 entries but a trusted checkpoint (seen-12.ckpt) of size "
        f"{ENTRIES} was seen" in messages(report)
    )
    assert report.first_bad_entry == 6


@pytest.mark.parametrize("seen_size", [ENTRIES, 6])
def test_fork_signed_by_the_broker_is_found_by_a_checkpoint_seen_before(
    grouped: Engine, signer: Ed25519Signer, seen_size: int
) -> None:
    seen = trusted_at(grouped, signer, seen_size)
    # The broker (its key) rewrites entry 4 and signs the new history afresh.
    rewrite(
        grouped, 4, {"type": "decision", "at_ms": 1004, "kind": "FREEZE", "n": 4}, fix_hash=True
    )
    delete_checkpoints(grouped, above=-1)
    AuditLog(grouped, signer, ORIGIN).checkpoint()
    assert verify(grouped, signer).ok  # its own checkpoints agree with the forked entries
    report = verify(grouped, signer, (seen,))
    assert not report.ok
    assert (
        f"fork: the first {seen_size} entries are not the ones trusted checkpoint "
        f"seen-{seen_size}.ckpt signed" in messages(report)
    )


# -- swaps and out-of-order reads ----------------------------------------------------


def test_swapped_entries_are_named_at_the_lower_one(grouped: Engine, signer: Ed25519Signer) -> None:
    # Leaves swapped, stored hashes left: each is named exactly, although the first
    # checkpoint they spoil (6) can only say "one of entries 3 to 5".
    entries = {e.position: e for e in stored_entries(grouped)}
    with Session(grouped) as s:
        for a, b in ((4, 8), (8, 4)):
            s.execute(
                update(AuditEntryRow).where(AuditEntryRow.idx == a).values(leaf=entries[b].leaf)
            )
        s.commit()
    report = verify(grouped, signer)
    assert report.first_bad_entry == 4
    assert report.first_uncovered == 3


def test_entry_read_twice_is_out_of_order(engine: Engine, signer: Ed25519Signer) -> None:
    entries = list(stored_entries(engine))
    shown = [*entries[:3], StoredEntry(2, entries[2].leaf), *entries[3:]]
    report = verify_log(shown, stored_checkpoints(engine), [signer.verifier()], ORIGIN)
    assert not report.ok
    assert "out of order: entry 2 appears after 2" in messages(report)


def test_entry_that_is_not_a_json_object_is_named(engine: Engine, signer: Ed25519Signer) -> None:
    leaf = b"[1, 2]"
    with Session(engine) as s:
        s.execute(
            update(AuditEntryRow)
            .where(AuditEntryRow.idx == 2)
            .values(leaf=leaf, leaf_hash=leaf_hash(leaf))
        )
        s.commit()
    report = verify(engine, signer)
    assert [p.entry for p in report.problems if p.what == "not a JSON object"] == [2]


def test_swapped_rows_are_located_to_the_commit_of_the_lower_one(
    grouped: Engine, signer: Ed25519Signer
) -> None:
    # Whole rows swapped (hashes too): only checkpoint 6 can place entry 4, and it signs
    # entries 3 to 5 together, so the finding names that commit, not one entry.
    entries = {e.position: e for e in stored_entries(grouped)}
    with Session(grouped) as s:
        for a, b in ((4, 8), (8, 4)):
            s.execute(
                update(AuditEntryRow)
                .where(AuditEntryRow.idx == a)
                .values(leaf=entries[b].leaf, leaf_hash=entries[b].stored_hash)
            )
        s.commit()
    report = verify(grouped, signer)
    assert (report.first_bad_entry, report.first_uncovered) == (3, 3)
    assert "entries 3 to 5, checkpoint 6: signed root differs" in messages(report)
