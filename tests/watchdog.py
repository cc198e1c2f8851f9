"""A watchdog for tests of liveness: every call has a deadline, and a hang fails with stacks.

A test that deadlocks would otherwise hang the suite for good. Calls made under
`Watchdog.call` are tracked with their deadline; a monitor thread notices the first one
that overruns and keeps a dump of every thread's stack, taken while the hang is live, so
the failure shows where each thread waits. Worker threads are daemons: a test that fails
on a hang can still end.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tests.waiting import wait_for


def thread_stacks() -> str:
    """Every live thread's name and stack, innermost call last."""
    names = {t.ident: t.name for t in threading.enumerate()}
    parts = []
    for ident, frame in sys._current_frames().items():
        stack = "".join(traceback.format_stack(frame))
        parts.append(f"--- thread {names.get(ident, '?')} ({ident}):\n{stack}")
    return "\n".join(parts)


@dataclass
class _Call:
    what: str
    thread: str
    started: float
    deadline: float


class Watchdog:
    """Tracks calls in flight; the first one past its deadline fails the test."""

    def __init__(self, poll_s: float = 0.1) -> None:
        self._poll_s = poll_s
        self._lock = threading.Lock()
        self._calls: dict[int, _Call] = {}
        self._ids = itertools.count()
        self._stop = threading.Event()
        self.failure = ""
        self.finished = 0
        self._monitor = threading.Thread(target=self._watch, name="watchdog", daemon=True)

    def __enter__(self) -> Watchdog:
        self._monitor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._monitor.join(timeout=5)

    @contextmanager
    def call(self, what: str, deadline_s: float) -> Iterator[None]:
        """Track the block as one call that must end within `deadline_s`."""
        key = next(self._ids)
        now = time.monotonic()
        entry = _Call(what, threading.current_thread().name, now, now + deadline_s)
        with self._lock:
            self._calls[key] = entry
        try:
            yield
        finally:
            with self._lock:
                del self._calls[key]
                self.finished += 1

    def _watch(self) -> None:
        while not self._stop.wait(self._poll_s):
            now = time.monotonic()
            with self._lock:
                late = [c for c in self._calls.values() if now > c.deadline]
            if late and not self.failure:
                first = late[0]
                self.failure = (
                    f"{first.what} in thread {first.thread} has run "
                    f"{now - first.started:.1f} s, past its deadline; "
                    f"{len(late)} call(s) late. Thread stacks:\n{thread_stacks()}"
                )

    def check(self) -> None:
        """Fail the test if any call overran its deadline."""
        if self.failure:
            raise AssertionError(self.failure)


def run_threads(
    watchdog: Watchdog, workers: list[Callable[[], None]], timeout_s: float
) -> list[BaseException]:
    """Run each worker in a daemon thread; return their exceptions once all have ended.

    Fails (with the watchdog's stacks) as soon as a call overruns, rather than waiting
    for threads that may never end.
    """
    errors: list[BaseException] = []

    def run(work: Callable[[], None]) -> None:
        try:
            work()
        except BaseException as exc:  # reported to the test, never lost
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(w,), name=f"worker-{i}", daemon=True)
        for i, w in enumerate(workers)
    ]
    for thread in threads:
        thread.start()
    try:
        wait_for(
            lambda: bool(watchdog.failure) or not any(t.is_alive() for t in threads),
            timeout=timeout_s,
        )
    except AssertionError:
        stacks = thread_stacks()
        raise AssertionError(f"workers still running after {timeout_s:g} s:\n{stacks}") from None
    watchdog.check()
    return errors
