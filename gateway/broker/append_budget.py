"""How many audit entries a sender may cause a minute without being served.

Every refused envelope and every audit read is logged, which is right, but each entry
grows the log for ever: a member that sends garbage in a loop, or reads the log page by
page without end, would otherwise make the broker write as fast as it can. Each sender
has a token bucket (`per_minute` tokens, refilled evenly). While it is empty, a refused
envelope is still refused and logged as a line, but not appended to the audit log; an
audit read is refused (a read that is not logged is never served). The next entry the
sender causes carries `suppressed`: how many were left out meanwhile, so the log still
accounts for every one of them. The buckets live in each broker process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class AppendBudget:
    """Per-sender token buckets over audit appends that serve nobody but the sender."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.per_minute = per_minute
        self._rate = per_minute / 60.0
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}
        """sender -> (tokens, when they were counted)."""
        self._suppressed: dict[str, int] = {}

    def take(self, sender: str) -> int | None:
        """Take a token: None if there is none (write nothing); else how many entries of
        this sender were suppressed since its last one, to record in this entry."""
        now = self._clock()
        with self._lock:
            tokens, then = self._buckets.get(sender, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - then) * self._rate)
            if tokens < 1.0:
                self._buckets[sender] = (tokens, now)
                self._suppressed[sender] = self._suppressed.get(sender, 0) + 1
                return None
            self._buckets[sender] = (tokens - 1.0, now)
            return self._suppressed.pop(sender, 0)
