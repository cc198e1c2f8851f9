"""At most a few interactive deliveries in flight per recipient.

An interactive message (a query, a PING) holds one of the broker's server threads
until its recipients answer, up to the delivery timeout. Without a bound, a member
that answers slowly (or not at all), plus a sender that keeps asking it, would hold
every thread and stop the broker for everyone. Each recipient gets a fixed number of
slots; a delivery that finds them all taken fails at once, is audited as a failed
delivery and reported to the sender as undelivered, and the thread is free again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class RecipientSlots:
    """Counts deliveries in flight per recipient; `take` admits up to `per_recipient`."""

    def __init__(self, per_recipient: int) -> None:
        if per_recipient < 1:
            raise ValueError("per_recipient must be at least 1")
        self.per_recipient = per_recipient
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}

    @contextmanager
    def take(self, recipient: str) -> Iterator[bool]:
        """Yields whether a slot was free; a taken slot is given back on exit."""
        with self._lock:
            taken = self._in_flight.get(recipient, 0) < self.per_recipient
            if taken:
                self._in_flight[recipient] = self._in_flight.get(recipient, 0) + 1
        try:
            yield taken
        finally:
            if taken:
                with self._lock:
                    left = self._in_flight[recipient] - 1
                    if left:
                        self._in_flight[recipient] = left
                    else:
                        del self._in_flight[recipient]
