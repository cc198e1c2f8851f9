"""A sliding hour from two fixed windows: what the broker's quota counters report.

The broker keeps, per sender and scope, the count of the current fixed window and of the
one before (`gateway.broker.quotas`, in its database so that it survives restarts and is
shared by every broker process). The count "in the last hour" is the current window's
count plus the previous window's, weighted by the share of the previous window that
still lies inside the hour ending now, rounded up so that rounding never favours the
sender. It assumes the previous window's messages were spread evenly; what that allows
at a window edge is worked out in docs/quotas.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

WINDOW_MS: Final = 3_600_000
"""Quotas are per hour."""


@dataclass(frozen=True)
class Windows:
    """One counter as stored: the current window's number, its count, the previous one's."""

    window_no: int
    current: int
    previous: int


def window_no(now_ms: int, window_ms: int = WINDOW_MS) -> int:
    """The number of the fixed window `now_ms` falls in (windows start at the epoch)."""
    return now_ms // window_ms


def last_window(counts: Windows, now_ms: int, window_ms: int = WINDOW_MS) -> int:
    """The count over the `window_ms` ending at `now_ms`, estimated from two windows.

    `counts` may belong to a window other than now's: a later one (another broker
    process's clock runs ahead: the previous window then counts in full), or an earlier
    one (nothing counted since: it has slid out, partly or wholly).
    """
    if window_ms <= 0:
        raise ValueError("window_ms must be positive")
    now_no = window_no(now_ms, window_ms)
    current, previous = counts.current, counts.previous
    if counts.window_no < now_no:  # stale row: roll it forward as the next hit would
        current, previous = 0, current if counts.window_no == now_no - 1 else 0
        elapsed = now_ms - now_no * window_ms
    else:
        elapsed = max(0, now_ms - counts.window_no * window_ms)
    remaining = window_ms - min(elapsed, window_ms)
    return current + -(-previous * remaining // window_ms)
