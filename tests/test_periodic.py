"""A periodic job keeps running after a failing round and stops when told."""

from __future__ import annotations

import logging
import threading

import pytest

from gateway.periodic import Periodic


def test_a_failing_round_is_logged_and_the_next_runs(caplog: pytest.LogCaptureFixture) -> None:
    rounds: list[int] = []
    three = threading.Event()

    def job() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise RuntimeError("the database went away")
        if len(rounds) >= 3:
            three.set()

    log = logging.getLogger("tests.periodic")
    periodic = Periodic("test-rounds", 0.01, job, log)
    periodic.start()
    try:
        assert three.wait(5), "the rounds stopped after the failing one"
    finally:
        periodic.stop()
    assert periodic.stopping
    assert "test-rounds round failed" in caplog.text
    assert "the database went away" in caplog.text
    done = len(rounds)
    threading.Event().wait(0.05)
    assert len(rounds) == done  # stopped: no round after stop() returned


def test_stopping_one_never_started_returns_at_once() -> None:
    Periodic("idle", 60, lambda: None, logging.getLogger("tests.periodic")).stop()
