"""Polling for a condition that another process or thread makes true, with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(check: Callable[[], bool], timeout: float = 15.0, interval: float = 0.05) -> None:
    """Return once `check()` is true; fail the test if it is still false after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout:g} s")
