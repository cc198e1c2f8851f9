"""Crash points for fault-injection tests: kill this process at a named step.

Crash-safety claims ("a broker killed at any step of receipt handling loses nothing")
are only worth what a test shows, and a test can only kill a process at a chosen step
if the code names its steps. `crash_point(name)` does nothing unless the process was
started with GATEWAY_CRASH_AT naming that step, which only the tests do; then it sends
the process SIGKILL, the cheapest and harshest crash (no cleanup, no flush).
"""

from __future__ import annotations

import os
import signal

CRASH_AT_VARIABLE = "GATEWAY_CRASH_AT"
_CRASH_AT = os.environ.get(CRASH_AT_VARIABLE, "")


def crash_point(name: str) -> None:
    """Die here, at once, if this process was told to crash at `name`."""
    if _CRASH_AT and name == _CRASH_AT:
        os.kill(os.getpid(), signal.SIGKILL)
