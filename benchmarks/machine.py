"""How fast this machine's CPU is right now, so figures from different runs can be compared.

The 2-core VM these benchmarks run on changes speed by tens of percent within an hour
(the same pure-Python loop took 1.3 s, then 1.9 s, with the load average near zero), and
the load average does not show it. Each benchmark prints this reference beside its
figures: a run with a slower reference is a slower machine, not slower code.
"""

from __future__ import annotations

import time

LOOP = 5_000_000


def python_speed() -> float:
    """Seconds for a fixed pure-Python loop of `LOOP` additions (lower is faster)."""
    started = time.perf_counter()
    total = 0
    for i in range(LOOP):
        total += i
    return time.perf_counter() - started


def describe() -> str:
    return f"CPU reference: {python_speed():.2f} s for {LOOP:,} Python additions (lower is faster)"
