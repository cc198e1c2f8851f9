"""Group commit: the writes of every caller waiting at one moment share one transaction.

A durable commit costs a disk flush (about 4 ms on this machine's SQLite, a WAL flush on
PostgreSQL); a server that commits once per request is capped at a few hundred requests
a second however fast its CPU. Here callers queue their work; the caller leading runs
everything queued so far in one transaction through `commit_group`, and every caller is
answered only after that commit: nobody is answered before their write is on disk, and
the flush is shared. While one group commits, the
next one gathers. The committing caller is one of the waiting threads, not a thread of
its own, which saves two thread switches per request, and the others each sleep on
their own latch until their result is in.

If the group fails (one caller's row breaks a unique key, say), each piece is retried in
a transaction of its own, so only the failing piece fails.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

W = TypeVar("W")

MAX_GROUP = 256
"""At most this many pieces of work share one commit."""


class _Waiting(Generic[W]):
    """One caller's work, its outcome, and the latch it sleeps on until either is due.

    The latch is a lock taken at birth and released once, by the leader of the group
    that ran the work or by the one handing this caller the lead: a Future and an Event
    (two Conditions made, locked and notified in Python) cost each message's commit
    more interpreter time than the rest of this module.
    """

    __slots__ = ("error", "finished", "result", "turn", "work")

    def __init__(self, work: W) -> None:
        self.work = work
        self.finished = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.turn = threading.Lock()
        """Released when the outcome is in, or when this caller is to lead the next group."""
        self.turn.acquire()

    def settle(self, result: Any = None, error: BaseException | None = None) -> None:
        self.result, self.error, self.finished = result, error, True

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


class GroupCommitter(Generic[W]):
    """Queues work items of type W; `commit_group(items)` returns one result per item.

    One caller at a time leads: it commits everything queued when it starts, then wakes
    each caller of that group to its result and hands the lead to the first caller
    still waiting, if any. Every other caller sleeps once, on its own latch, and wakes
    once: no queue of threads passes a commit lock along only to find their work done,
    which on two cores cost more in thread switches than the queue saved.
    """

    def __init__(self, commit_group: Callable[[Sequence[W]], Sequence[Any]]) -> None:
        self._commit_group = commit_group
        self._lock = threading.Lock()
        self._pending: deque[_Waiting[W]] = deque()
        self._leading = False

    def submit(self, work: W) -> Any:
        """Queue `work`, wait for the commit that includes it, and return its result."""
        mine = _Waiting(work)
        with self._lock:
            self._pending.append(mine)
            lead, self._leading = not self._leading, True
        if not lead:
            mine.turn.acquire()  # the outcome, or the lead of the next group
        if not mine.finished:
            self._lead()
        return mine.outcome()

    def _lead(self) -> None:
        """Commit the queue's head (this caller's work first), then pass the lead on.

        The head is always the leader's own item: the first caller leads with its item
        alone in the queue, and a caller handed the lead is the head when it is handed.
        So every latch but the leader's own is released, each exactly once.
        """
        with self._lock:
            taken = min(len(self._pending), MAX_GROUP)
            group = [self._pending.popleft() for _ in range(taken)]
        try:
            self._run(group)
        finally:
            for item in group[1:]:
                if not item.finished:  # `_run` itself failed: nobody may wait forever
                    item.settle(error=RuntimeError("the group commit broke off"))
                item.turn.release()
            with self._lock:
                if self._pending:
                    self._pending[0].turn.release()
                else:
                    self._leading = False

    def _run(self, group: list[_Waiting[W]]) -> None:
        try:
            results = self._commit_group([item.work for item in group])
        except Exception as exc:
            if len(group) == 1:
                group[0].settle(error=exc)
                return
            for item in group:
                self._run([item])
            return
        except BaseException as exc:  # an interrupt: nobody may wait for a commit forever
            for item in group:
                if not item.finished:
                    item.settle(error=exc)
            raise
        for item, result in zip(group, results, strict=True):
            item.settle(result)
