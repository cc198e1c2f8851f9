"""How fast this machine's interpreter is right now, printed beside benchmark figures.

The 2-core VM these benchmarks run on changes speed within an hour: 10 million Python
additions took 1.3 s, then 1.9 s, minutes apart, with the load average near zero, and
the load average does not show it. A run with a slower reference is a slower machine, not
slower code. It does not see every slowdown: on 2026-11-23 the broker's CPU time per
message rose by half while this reference stayed put (the kernel's share had grown), so
compare like with like (the same commit run again) before reading a change into figures.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time another process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
