"""The sliding hour from two fixed windows (`gateway.policy.rates.last_window`).

Expected values are worked out by hand from the definition: current + previous x the
share of the previous window still inside the hour ending now, rounded up.
"""

from __future__ import annotations

import pytest

from gateway.policy import WINDOW_MS, Windows, last_window, window_no

HOUR = WINDOW_MS
START = 400 * HOUR
"""The start of window 400."""


def test_windows_are_hours_from_the_epoch() -> None:
    assert window_no(START) == 400
    assert window_no(START + HOUR - 1) == 400
    assert window_no(START + HOUR) == 401


def test_previous_window_counts_by_the_share_still_inside_the_hour() -> None:
    counts = Windows(400, current=10, previous=100)
    assert last_window(counts, START) == 110  # all of the previous hour is inside
    assert last_window(counts, START + HOUR // 4) == 10 + 75
    assert last_window(counts, START + HOUR // 2) == 10 + 50
    assert last_window(counts, START + HOUR - 1) == 10 + 1  # rounded up, never down


def test_stale_row_slides_out() -> None:
    counts = Windows(400, current=60, previous=100)
    assert last_window(counts, START + HOUR + HOUR // 3) == 40  # 60 x 2/3, the older gone
    assert last_window(counts, START + 2 * HOUR) == 0


def test_row_of_a_clock_ahead_counts_the_previous_window_whole() -> None:
    counts = Windows(401, current=3, previous=100)
    assert last_window(counts, START + HOUR - 10) == 103


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        last_window(Windows(0, 0, 0), 0, window_ms=0)
