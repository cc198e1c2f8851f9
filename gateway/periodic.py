"""A daemon thread that runs one job every `interval_s` seconds until it is stopped.

A node's background work (hold sweeps, watchlist sweeps, filter syncs, alert resends) is
each one call repeated: an error is logged with its traceback and the next round tries
again, so one bad round never ends the work; `stop` waits up to `STOP_WAIT_S` for a
round in progress. The job holds no lock of this class while it runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Final

__all__ = ["STOP_WAIT_S", "Periodic"]

STOP_WAIT_S: Final = 5.0


class Periodic:
    """Runs `job` every `interval_s` seconds in a daemon thread named `name`."""

    def __init__(
        self, name: str, interval_s: float, job: Callable[[], object], log: logging.Logger
    ) -> None:
        self.name = name
        self.interval_s = interval_s
        self._job = job
        self._log = log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def stopping(self) -> bool:
        """Whether `stop` was called: a long round may end early."""
        return self._stop.is_set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=STOP_WAIT_S)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._job()
            except Exception:  # keep going; the error is in the log
                self._log.exception("%s round failed", self.name)
