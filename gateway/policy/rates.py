"""Per-sender, per-kind message counts over a sliding window, for hourly quotas.

The broker counts every message before deciding it and passes the count to the policy as
``context.sender_kind_last_hour``; the quota itself lives in the policy file. Counts are
kept in buckets of ``resolution`` seconds so that memory stays bounded however fast a
sender floods; a bucket leaves the window only once all of it is older than the window,
so a count may include up to one bucket of older messages but never misses a recent one.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

Clock = Callable[[], float]
"""Seconds from an arbitrary, monotonic origin."""


class RateCounter:
    """Thread-safe sliding-window counter of messages per ``(sender, kind)``."""

    def __init__(
        self,
        window: float = 3600.0,
        *,
        resolution: float = 1.0,
        clock: Clock = time.monotonic,
    ) -> None:
        if not (math.isfinite(window) and window > 0):
            raise ValueError("window must be a positive number of seconds")
        if not (math.isfinite(resolution) and 0 < resolution <= window):
            raise ValueError("resolution must be positive and at most the window")
        self._window = window
        self._resolution = resolution
        self._clock = clock
        self._lock = threading.Lock()
        self._series: dict[tuple[str, str], _Series] = {}

    @property
    def window(self) -> float:
        """Window length in seconds."""
        return self._window

    def hit(self, sender: str, kind: str) -> int:
        """Count one message now; return the count in the window, this message included."""
        now = self._clock()
        bucket = math.floor(now / self._resolution)
        with self._lock:
            series = self._series.get((sender, kind))
            if series is None:
                series = self._series[(sender, kind)] = _Series()
            self._expire(series, now)
            if series.buckets and series.buckets[-1][0] >= bucket:
                # Same bucket, or a clock that stepped back: never lose a count.
                series.buckets[-1][1] += 1
            else:
                series.buckets.append([bucket, 1])
            series.total += 1
            return series.total

    def count(self, sender: str, kind: str) -> int:
        """The count in the window now, without counting a message."""
        now = self._clock()
        with self._lock:
            series = self._series.get((sender, kind))
            if series is None:
                return 0
            self._expire(series, now)
            if not series.total:
                del self._series[(sender, kind)]
            return series.total

    def prune(self) -> None:
        """Forget expired buckets of every key, and keys left with none."""
        now = self._clock()
        with self._lock:
            for key, series in list(self._series.items()):
                self._expire(series, now)
                if not series.total:
                    del self._series[key]

    def __len__(self) -> int:
        """Number of ``(sender, kind)`` keys held (expired ones go on :meth:`prune`)."""
        with self._lock:
            return len(self._series)

    def _expire(self, series: _Series, now: float) -> None:
        horizon = now - self._window
        buckets = series.buckets
        while buckets and (buckets[0][0] + 1) * self._resolution <= horizon:
            series.total -= buckets.popleft()[1]


class _Series:
    """Buckets of one key as ``[bucket index, count]`` in ascending order, and their sum."""

    __slots__ = ("buckets", "total")

    def __init__(self) -> None:
        self.buckets: deque[list[int]] = deque()
        self.total = 0
