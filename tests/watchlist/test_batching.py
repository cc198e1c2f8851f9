"""How the checker's batches take turns: one in flight while the next gathers behind it,
another beside it only once the one out has stalled, never more than `in_flight`.

The transport is replaced by one that holds each batch until the test lets it go, so
the order of events is the test's, not the machine's; the checks through the real
broker and police node are in test_checks.py and test_busy.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import cast

import pytest

from gateway.identifiers import Identifier, normalise
from gateway.watchlist import CheckResult, NotListed
from nodes.runtime import NodeContext
from nodes.watchlist.client import WatchlistClient

ID_CARD = normalise("id_card", "11010519491231002X")


class HeldBatches(WatchlistClient):
    """A checker whose batches wait for `release` instead of travelling."""

    def __init__(self, *, window_s: float, stall_s: float, in_flight: int = 4) -> None:
        ctx = SimpleNamespace(node_id="bank-a", config=SimpleNamespace(role="bank"))
        super().__init__(
            cast(NodeContext, ctx),
            police="police-1",
            window_s=window_s,
            stall_s=stall_s,
            in_flight=in_flight,
        )
        self.sent: list[int] = []
        self.gates: list[threading.Event] = []
        self.changed = threading.Condition()

    def _send(self, identifiers: list[Identifier]) -> list[CheckResult]:
        gate = threading.Event()
        with self.changed:
            self.sent.append(len(identifiers))
            self.gates.append(gate)
            self.changed.notify_all()
        assert gate.wait(10), "the test never let this batch go"
        return [NotListed() for _ in identifiers]

    def wait_sent(self, count: int) -> list[int]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.sent) >= count, 5)
            return list(self.sent)


def start_checks(checker: WatchlistClient, count: int) -> list[threading.Thread]:
    threads = [
        threading.Thread(target=checker.check_identifier, args=(ID_CARD,), daemon=True)
        for _ in range(count)
    ]
    for thread in threads:
        thread.start()
    return threads


@pytest.fixture
def finish() -> Iterator[list[HeldBatches]]:
    """Let every held batch go at the end, whatever the test asserted."""
    checkers: list[HeldBatches] = []
    yield checkers
    for checker in checkers:
        while True:
            with checker.changed:
                gates = list(checker.gates)
            for gate in gates:
                gate.set()
            time.sleep(0.05)
            with checker.changed:
                if len(checker.gates) == len(gates):
                    break


def test_the_next_batch_gathers_behind_the_one_in_flight(finish: list[HeldBatches]) -> None:
    checker = HeldBatches(window_s=0, stall_s=5)
    finish.append(checker)
    first = start_checks(checker, 1)
    assert checker.wait_sent(1) == [1]
    behind = start_checks(checker, 5)
    time.sleep(0.2)
    assert checker.sent == [1], "a second batch left while the first was out and not stalled"
    checker.gates[0].set()
    assert checker.wait_sent(2) == [1, 5]
    checker.gates[1].set()
    for thread in first + behind:
        thread.join(5)
        assert not thread.is_alive()


def test_a_stalled_batch_lets_the_next_leave_beside_it(finish: list[HeldBatches]) -> None:
    checker = HeldBatches(window_s=0, stall_s=0.2, in_flight=2)
    finish.append(checker)
    start_checks(checker, 1)
    checker.wait_sent(1)
    started = time.monotonic()
    start_checks(checker, 3)
    assert checker.wait_sent(2) == [1, 3]
    assert time.monotonic() - started >= 0.15, "it left before the first batch had stalled"
    # Two out, both stalled: the cap of two holds the third batch back.
    start_checks(checker, 2)
    time.sleep(0.5)
    assert checker.sent == [1, 3]
    checker.gates[0].set()
    assert checker.wait_sent(3) == [1, 3, 2]
