"""A node started late is reachable within seconds, however long it was down.

The broker keeps one channel per node; while the node is down, gRPC backs off between
reconnect attempts. With gRPC's defaults that wait grows towards two minutes, so a bank
started after 20 s of failed deliveries stayed unreachable for several more seconds
(20 to 60 s in a longer outage); the gateway caps it at two seconds.
"""

from __future__ import annotations

import time

import pytest

from gateway.envelope.build import Draft
from gateway.localnet import Consortium
from nodes.runtime import NodeContext, serve_node
from tests.consortium import client, running

pytestmark = pytest.mark.slow

DOWN_S = 20.0
REACHABLE_WITHIN_S = 4.0
"""The capped backoff (2 s, with gRPC's ±20 % jitter) plus a handshake, with margin."""


def ping_answered(police: NodeContext) -> bool:
    draft = Draft(sender="police-1", recipients=["bank-a"], kind="PING", payload=b"{}")
    result = police.client.submit(draft)
    return not result.undelivered


def test_node_started_late_is_reachable_within_seconds(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    c = Consortium.create(tmp_path_factory.mktemp("late"))
    with running(c, ("police-1",)):
        police = client(c, "police-1")
        try:
            down_until = time.monotonic() + DOWN_S
            while time.monotonic() < down_until:  # the broker's channel keeps failing
                assert not ping_answered(police)
                time.sleep(0.5)
            bank = serve_node(c.node_config("bank-a"))
            try:
                started = time.monotonic()
                while not ping_answered(police):
                    assert time.monotonic() - started < REACHABLE_WITHIN_S, (
                        f"bank-a still unreachable {REACHABLE_WITHIN_S:g} s after it listened"
                    )
                    time.sleep(0.1)
            finally:
                bank.stop(0)
        finally:
            police.client.close()
