"""RateCounter: a sliding window per (sender, kind), driven by an injected clock."""

from __future__ import annotations

import threading

import pytest

from gateway.policy import RateCounter


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_counts_each_hit_including_this_one() -> None:
    rates = RateCounter(clock=Clock())
    assert [rates.hit("police-1", "FREEZE") for _ in range(3)] == [1, 2, 3]
    assert rates.count("police-1", "FREEZE") == 3


def test_senders_and_kinds_are_counted_apart() -> None:
    rates = RateCounter(clock=Clock())
    rates.hit("police-1", "FREEZE")
    rates.hit("police-1", "FREEZE")
    assert rates.hit("police-1", "MATCH_QUERY") == 1
    assert rates.hit("police-2", "FREEZE") == 1
    assert rates.count("bank-a", "FREEZE") == 0


def test_window_slides_one_bucket_at_a_time() -> None:
    clock = Clock()
    rates = RateCounter(window=3600, clock=clock)
    rates.hit("p", "K")  # t = 1000
    clock.now += 1800
    rates.hit("p", "K")  # t = 2800
    clock.now = 1000 + 3600  # the first hit is exactly one window old
    assert rates.count("p", "K") == 2
    clock.now = 1000 + 3601  # ... and now its whole bucket is older than the window
    assert rates.count("p", "K") == 1
    clock.now = 2800 + 3601
    assert rates.count("p", "K") == 0
    assert rates.hit("p", "K") == 1


def test_a_steady_sender_never_exceeds_the_true_count_by_more_than_one_bucket() -> None:
    clock = Clock(0.0)
    rates = RateCounter(window=60, resolution=10, clock=clock)
    for second in range(600):
        clock.now = second + 0.5
        count = rates.hit("p", "K")
        true = min(second + 1, 60)
        assert true <= count <= true + 10


def test_a_clock_that_steps_back_loses_no_count() -> None:
    clock = Clock()
    rates = RateCounter(clock=clock)
    rates.hit("p", "K")
    clock.now -= 30
    assert rates.hit("p", "K") == 2
    clock.now += 60
    assert rates.hit("p", "K") == 3


def test_prune_forgets_expired_keys_only() -> None:
    clock = Clock()
    rates = RateCounter(window=10, clock=clock)
    rates.hit("old", "K")
    clock.now += 5
    rates.hit("new", "K")
    assert len(rates) == 2
    clock.now += 6
    rates.prune()
    assert len(rates) == 1
    assert rates.count("new", "K") == 1


def test_count_of_an_expired_key_drops_the_key() -> None:
    clock = Clock()
    rates = RateCounter(window=10, clock=clock)
    rates.hit("p", "K")
    clock.now += 20
    assert rates.count("p", "K") == 0
    assert len(rates) == 0


@pytest.mark.parametrize(
    ("window", "resolution"),
    [(0, 1), (-1, 1), (float("inf"), 1), (float("nan"), 1), (10, 0), (10, 11), (10, float("nan"))],
)
def test_bad_window_or_resolution_is_refused(window: float, resolution: float) -> None:
    with pytest.raises(ValueError):
        RateCounter(window, resolution=resolution)


def test_window_is_reported() -> None:
    assert RateCounter(900).window == 900


def test_concurrent_hits_are_all_counted() -> None:
    rates = RateCounter(clock=Clock())

    def flood() -> None:
        for _ in range(500):
            rates.hit("p", "K")

    threads = [threading.Thread(target=flood) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert rates.count("p", "K") == 4000
