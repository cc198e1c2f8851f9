"""Group commit: concurrent callers share commits, each gets its own result, and one
caller's failure stays its own."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from gateway.group_commit import GroupCommitter

CALLERS = 8


class Recorder:
    """A commit function that takes a while (like a disk flush) and remembers each group."""

    def __init__(self, fail_on: frozenset[int] = frozenset()) -> None:
        self.groups: list[list[int]] = []
        self.committed: list[int] = []
        self.fail_on = fail_on
        self.lock = threading.Lock()

    def __call__(self, items: Sequence[int]) -> list[int]:
        time.sleep(0.02)
        with self.lock:
            self.groups.append(list(items))
        if self.fail_on.intersection(items):
            raise ValueError("duplicate key")  # the whole transaction rolls back
        with self.lock:
            self.committed.extend(items)
        return [item * 10 for item in items]


def submit_all(committer: GroupCommitter[int], items: list[int]) -> list[int | Exception]:
    start = threading.Barrier(len(items))

    def one(item: int) -> int | Exception:
        start.wait()
        try:
            result: int = committer.submit(item)
            return result
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(len(items)) as pool:
        return list(pool.map(one, items))


def test_every_caller_gets_its_own_result_and_commits_are_shared() -> None:
    recorder = Recorder()
    results = submit_all(GroupCommitter(recorder), list(range(CALLERS)))
    assert results == [i * 10 for i in range(CALLERS)]
    assert sorted(recorder.committed) == list(range(CALLERS))
    assert len(recorder.groups) < CALLERS  # callers that waited shared a commit
    assert max(len(group) for group in recorder.groups) > 1


def test_a_failing_piece_fails_alone() -> None:
    recorder = Recorder(fail_on=frozenset({3}))
    results = submit_all(GroupCommitter(recorder), list(range(CALLERS)))
    assert isinstance(results[3], ValueError)
    assert [r for i, r in enumerate(results) if i != 3] == [
        i * 10 for i in range(CALLERS) if i != 3
    ]
    assert sorted(recorder.committed) == [i for i in range(CALLERS) if i != 3]
    assert [3] in recorder.groups  # retried alone after its group failed


def test_a_lone_caller_commits_at_once() -> None:
    recorder = Recorder()
    committer = GroupCommitter(recorder)
    assert committer.submit(7) == 70
    assert recorder.groups == [[7]]
    with pytest.raises(ValueError):
        GroupCommitter(Recorder(fail_on=frozenset({1}))).submit(1)


def test_an_interrupted_commit_releases_every_waiter() -> None:
    """A BaseException in the committing thread fails the whole group instead of leaving
    the other callers waiting for a commit that will never come."""

    entered = threading.Event()
    release = threading.Event()

    def commit(items: Sequence[int]) -> list[int]:
        if 0 in items:
            entered.set()
            release.wait(5)
            return [0]
        raise KeyboardInterrupt

    committer = GroupCommitter(commit)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(committer.submit, 0)
        entered.wait(5)
        waiting = [pool.submit(committer.submit, n) for n in (1, 2, 3)]
        time.sleep(0.1)  # the three queue up behind the first commit
        release.set()
        assert first.result(5) == 0
        for future in waiting:
            with pytest.raises(KeyboardInterrupt):
                future.result(5)


def test_an_interrupted_group_hands_the_lead_on_and_nobody_waits_forever() -> None:
    """The leader's commit is interrupted (a BaseException): its group hears it, and the
    callers queued behind are still committed by the next leader."""
    first_group = threading.Event()
    calls: list[list[int]] = []

    def commit(items: Sequence[int]) -> list[int]:
        calls.append(list(items))
        if len(calls) == 1:
            first_group.set()
            time.sleep(0.1)  # the others queue behind this group meanwhile
            raise KeyboardInterrupt
        return [item * 10 for item in items]

    committer: GroupCommitter[int] = GroupCommitter(commit)
    outcomes: dict[int, object] = {}

    def one(item: int) -> None:
        try:
            outcomes[item] = committer.submit(item)
        except BaseException as exc:  # the interrupt, recorded for the assertion
            outcomes[item] = type(exc)

    leader = threading.Thread(target=one, args=(0,), daemon=True)
    leader.start()
    assert first_group.wait(5)
    behind = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(1, CALLERS)]
    for thread in behind:
        thread.start()
    for thread in [leader, *behind]:
        thread.join(5)
        assert not thread.is_alive(), "a caller was left waiting"
    assert outcomes[0] is KeyboardInterrupt
    assert {i: outcomes[i] for i in range(1, CALLERS)} == {i: i * 10 for i in range(1, CALLERS)}
    assert calls[0] == [0]


def test_a_commit_that_answers_the_wrong_number_of_items_fails_every_caller() -> None:
    """A commit function bug (one result for a whole group) reaches every caller of the
    group as an error, and later callers are still served: nobody waits forever."""
    broken = True

    def commit(items: Sequence[int]) -> list[int]:
        time.sleep(0.02)
        return [0] if broken and len(items) > 1 else [item * 10 for item in items]

    committer: GroupCommitter[int] = GroupCommitter(commit)
    results = submit_all(committer, list(range(CALLERS)))
    failed = [r for r in results if isinstance(r, Exception)]
    assert failed, "some callers shared a group"
    assert all(isinstance(r, (ValueError, RuntimeError)) for r in failed)
    broken = False
    assert submit_all(committer, [1, 2, 3]) == [10, 20, 30]
