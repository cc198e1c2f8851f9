"""Whole-log verification for compliance: recompute the tree, check every checkpoint.

The verifier trusts nothing the broker stored beside the entries: leaf hashes are
recomputed from the entry bytes, every checkpoint's signature is checked against the
broker's key from the signed directory, and every checkpoint's root must equal the root
recomputed from the entries. Because two checkpoints whose roots both match are
consistent by construction, a fork or rewrite shows as the first checkpoint that does
not match, and the bad entry lies after the last one that did.

Only what a valid checkpoint signs is trusted: an entry is covered when a checkpoint
larger than its index verifies, and any entry not covered fails the log (the broker
signs a checkpoint in every commit, so an honest log is covered to its end). Deleting
checkpoints therefore cannot hide a change. What deletion of the tail together with its
checkpoints cannot show, a checkpoint saved earlier does (`TrustedCheckpoint`): the log
must still contain it, with the same root.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from itertools import takewhile
from typing import NamedTuple

from gateway.audit.checkpoint import Checkpoint, CheckpointError, open_checkpoint
from gateway.audit.merkle import MerkleTree, leaf_hash
from gateway.audit.note import NoteError, NoteVerifier

Progress = Callable[[int], None]


class StoredEntry(NamedTuple):
    """An audit row as read back: index, entry bytes, and the hash stored beside them."""

    position: int
    leaf: bytes
    stored_hash: bytes | None = None


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    note: str


@dataclass(frozen=True)
class TrustedCheckpoint:
    """A checkpoint seen earlier (kept by a witness, or `gateway audit checkpoint --save`).

    Its signature and origin are checked by whoever opened it; `label` names where it
    came from (its file) in findings.
    """

    label: str
    checkpoint: Checkpoint


@dataclass
class Problem:
    """One finding: what is wrong and where (an entry index or a checkpoint size).

    With `last` set, the finding is a range: some entry from `entry` to `last` is bad
    (a signed root says so, but not which one); without it, `entry` itself is.
    """

    what: str
    entry: int | None = None
    checkpoint_size: int | None = None
    last: int | None = None

    def __str__(self) -> str:
        where = []
        if self.entry is not None and self.last is not None and self.last > self.entry:
            where.append(f"entries {self.entry} to {self.last}")
        elif self.entry is not None:
            where.append(f"entry {self.entry}")
        if self.checkpoint_size is not None:
            where.append(f"checkpoint {self.checkpoint_size}")
        return f"{', '.join(where)}: {self.what}" if where else self.what


@dataclass
class VerifyReport:
    entries: int = 0
    checkpoints: int = 0
    trusted: int = 0
    covered: int = 0
    """Entries covered by a valid signed checkpoint: the first `covered` of them."""
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)
    root_hash: bytes = b""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_uncovered(self) -> int | None:
        """The first entry no valid signed checkpoint covers, if there is one."""
        return self.covered if self.covered < self.entries else None

    @property
    def first_bad_entry(self) -> int | None:
        """The lowest entry a finding points at.

        A range finding (a root that does not match) counts by its start only when no
        exact finding falls inside it: two swapped entries whose stored hashes were left
        alone are each named exactly, and the range of the checkpoint they spoil, which
        starts at the checkpoint before, would otherwise point at an untouched entry.
        """
        exact = [p.entry for p in self.problems if p.entry is not None and p.last is None]
        starts = [
            p.entry
            for p in self.problems
            if p.entry is not None
            and p.last is not None
            and not any(p.entry <= e <= p.last for e in exact)
        ]
        indexes = exact + starts
        return min(indexes) if indexes else None


def entries_below(entries: Iterable[StoredEntry], size: int) -> Iterator[StoredEntry]:
    """The entries a checkpoint of `size` signs.

    A live log grows while it is read (each read is itself audited): verifying it as of
    its latest checkpoint leaves the entries appended since to the next run, instead of
    failing them as not covered.
    """
    return takewhile(lambda e: e.position < size, entries)


def is_json_object(leaf: bytes) -> bool:
    """Whether `leaf` is a JSON object, as every entry the broker writes is.

    Canonical form (sorted keys, no spaces) is not re-checked: the leaf hash covers
    the exact bytes, so a re-encoding would already show as a changed entry.
    """
    if not leaf.startswith(b"{"):
        return False
    try:
        return isinstance(json.loads(leaf), dict)
    except ValueError:
        return False


BATCH = 10_000
WINDOW = 4
"""Batches in flight at once: keeps every core busy and memory bounded."""


def check_batch(batch: list[StoredEntry]) -> tuple[list[bytes], list[Problem]]:
    """Leaf hashes and per-entry findings for one batch (runs in a worker process)."""
    digests: list[bytes] = []
    problems: list[Problem] = []
    for entry in batch:
        digest = leaf_hash(entry.leaf)
        if entry.stored_hash is not None and entry.stored_hash != digest:
            problems.append(
                Problem("content was changed after it was written (hash differs)", entry.position)
            )
        if not is_json_object(entry.leaf):
            problems.append(Problem("not a JSON object", entry.position))
        digests.append(digest)
    return digests, problems


def _batches(entries: Iterable[StoredEntry], report: VerifyReport) -> Iterator[list[StoredEntry]]:
    """Entries in index order, in batches; stops at the first gap or disorder."""
    batch: list[StoredEntry] = []
    for expected, entry in enumerate(entries):
        if entry.position != expected:
            what = (
                f"missing: the log jumps from entry {expected - 1} to {entry.position}"
                if entry.position > expected
                else f"out of order: entry {entry.position} appears after {expected - 1}"
            )
            report.problems.append(Problem(what, entry=expected))
            break
        batch.append(entry)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def verify_log(
    entries: Iterable[StoredEntry],
    checkpoints: Sequence[StoredCheckpoint],
    verifiers: Sequence[NoteVerifier],
    origin: str,
    *,
    trusted: Sequence[TrustedCheckpoint] = (),
    progress: Progress | None = None,
    workers: int | None = None,
) -> VerifyReport:
    """Check entries in index order, every checkpoint against them, and their coverage.

    `trusted` checkpoints were seen before: the log must still hold each (no rollback)
    with the same root (no fork).

    Hashing and format checks can run in `workers` processes; with SQLite on one
    machine a single process is faster (measured: sending rows to workers costs more
    than hashing them), so the default is 1. The tree is built here in index order.
    """
    started = time.perf_counter()
    report = VerifyReport()
    tree = MerkleTree()
    found: list[Problem] = []
    processes = workers or 1
    with ProcessPoolExecutor(max_workers=processes) if processes > 1 else nullcontext() as pool:
        pending: deque[Future[tuple[list[bytes], list[Problem]]]] = deque()

        def collect() -> None:
            digests, problems = pending.popleft().result()
            tree.extend(digests)
            found.extend(problems)
            if progress:
                progress(tree.size)

        for batch in _batches(entries, report):
            if pool is None:
                digests, problems = check_batch(batch)
                tree.extend(digests)
                found.extend(problems)
                if progress:
                    progress(tree.size)
                continue
            pending.append(pool.submit(check_batch, batch))
            if len(pending) >= WINDOW:
                collect()
        while pending:
            collect()
    report.problems[:0] = found
    report.entries = tree.size
    report.root_hash = tree.root()
    good = _check_checkpoints(tree, checkpoints, verifiers, origin, report)
    good += _check_trusted(tree, trusted, report)
    _check_coverage(tree.size, good, report)
    report.seconds = time.perf_counter() - started
    return report


def _check_checkpoints(
    tree: MerkleTree,
    checkpoints: Sequence[StoredCheckpoint],
    verifiers: Sequence[NoteVerifier],
    origin: str,
    report: VerifyReport,
) -> list[int]:
    """Check each stored checkpoint; returns the sizes of those that verify."""
    good: list[int] = []
    last_good = 0
    beyond = 0  # the largest checkpoint past the end of the log: one finding says it all
    for stored in sorted(checkpoints, key=lambda c: c.size):
        report.checkpoints += 1
        try:
            checkpoint, _ = open_checkpoint(stored.note, verifiers, origin=origin)
        except (NoteError, CheckpointError) as exc:
            report.problems.append(
                Problem(f"signature or format refused: {exc}", checkpoint_size=stored.size)
            )
            continue
        if checkpoint.size != stored.size:
            report.problems.append(
                Problem(
                    f"note says size {checkpoint.size}, stored as {stored.size}",
                    checkpoint_size=stored.size,
                )
            )
            continue
        if checkpoint.size > tree.size:
            beyond = checkpoint.size
            continue
        if tree.root(checkpoint.size) != checkpoint.root_hash:
            report.problems.append(
                Problem(
                    "signed root differs from the entries: an entry between "
                    f"{last_good} and {checkpoint.size - 1} was changed, moved, removed or "
                    "inserted",
                    entry=last_good,
                    last=checkpoint.size - 1,
                    checkpoint_size=checkpoint.size,
                )
            )
            return good  # every later checkpoint fails for the same cause
        last_good = checkpoint.size
        good.append(last_good)
    if beyond:
        report.problems.append(_rollback(tree.size, beyond, "a checkpoint"))
    return good


def _rollback(size: int, seen: int, what: str) -> Problem:
    return Problem(
        f"rollback: the log has {size} entries but {what} of size {seen} was seen: "
        "entries were removed from the end, or an older copy of the log is shown",
        entry=size,
        checkpoint_size=seen,
    )


def _check_trusted(
    tree: MerkleTree, trusted: Sequence[TrustedCheckpoint], report: VerifyReport
) -> list[int]:
    """The log must still contain every checkpoint seen before; returns those it does."""
    good: list[int] = []
    for seen in trusted:
        report.trusted += 1
        size = seen.checkpoint.size
        if size > tree.size:
            report.problems.append(
                _rollback(tree.size, size, f"a trusted checkpoint ({seen.label})")
            )
        elif tree.root(size) != seen.checkpoint.root_hash:
            report.problems.append(
                Problem(
                    f"fork: the first {size} entries are not the ones trusted checkpoint "
                    f"{seen.label} signed: history was rewritten after it was seen",
                    checkpoint_size=size,
                )
            )
        else:
            good.append(size)
    return good


def _check_coverage(size: int, good: list[int], report: VerifyReport) -> None:
    """Entries no valid checkpoint signs are not trusted, so they fail the log."""
    report.covered = max(good, default=0)
    if report.covered >= size:
        return
    if report.covered == 0:
        what = (
            f"no valid signed checkpoint covers any of the log's {size} entries: "
            "nothing shows they are the entries the broker wrote"
        )
    else:
        what = (
            "not covered by a valid signed checkpoint (the largest that verifies covers "
            f"{report.covered} entries): nothing shows these are the entries the broker wrote"
        )
    report.problems.append(Problem(what, entry=report.covered, last=size - 1))
