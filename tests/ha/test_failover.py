"""A node's calls fail over between broker processes and verify against the one log.

Two brokers serve one PostgreSQL database in this process (each with its own server,
audit writer and outbox worker); the directory lists both. The police client spreads
its calls over them; with either one stopped, submissions go on through the other, and
every receipt and checkpoint checks against the checkpoints seen from both.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest

from gateway.broker.server import RunningBroker, serve_broker
from gateway.envelope.build import Draft
from gateway.localnet import Consortium
from nodes.runtime import NodeContext, RunningNode, serve_node
from tests.consortium import client, free_port
from tests.postgres import fresh_schema

pytestmark = pytest.mark.postgres


@dataclass
class Pair:
    consortium: Consortium
    ports: tuple[int, int]
    brokers: list[RunningBroker | None]
    police: NodeContext

    def start(self, i: int) -> None:
        listen = f"127.0.0.1:{self.ports[i]}"
        self.brokers[i] = serve_broker(self.consortium.broker_config(listen=listen))

    def stop(self, i: int) -> None:
        running = self.brokers[i]
        assert running is not None
        running.stop(0)
        self.brokers[i] = None


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    with fresh_schema() as url:
        c = Consortium.create(tmp_path_factory.mktemp("ha"), database_urls={"broker": url})
        ports = (c.broker_port, free_port())
        c.pki.set_endpoints("broker", [f"127.0.0.1:{p}" for p in ports])
        nodes: list[RunningNode] = []
        pair = Pair(c, ports, [None, None], client(c, "police-1"))
        try:
            pair.start(0)
            pair.start(1)
            nodes.append(serve_node(c.node_config("bank-a")))
            yield pair
        finally:
            pair.police.client.close()
            for node in nodes:
                node.stop(0)
            for i in (0, 1):
                if pair.brokers[i] is not None:
                    pair.stop(i)


def ping(police: NodeContext) -> None:
    draft = Draft(sender="police-1", recipients=["bank-a"], kind="PING", payload=b"{}")
    result = police.client.submit(draft)  # checks the receipt against the checkpoints seen
    assert result.decision == "ALLOW"
    assert [h.sender for h, _ in result.answers] == ["bank-a"]


def test_the_client_calls_every_broker_the_directory_lists(pair: Pair) -> None:
    pair.police.client.refresh_directory()
    assert pair.police.client.brokers.endpoints == [f"127.0.0.1:{p}" for p in pair.ports]


def test_calls_go_on_through_either_broker_while_the_other_is_down(pair: Pair) -> None:
    for _ in range(4):
        ping(pair.police)
    pair.stop(0)
    for _ in range(4):
        ping(pair.police)
    pair.police.client.latest_checkpoint()
    pair.start(0)
    pair.stop(1)
    for _ in range(4):
        ping(pair.police)
    pair.police.client.latest_checkpoint()
    pair.start(1)


def test_with_both_down_a_call_waits_for_whichever_comes_back(pair: Pair) -> None:
    """Both brokers stop, one comes back: every call reaches it, whichever endpoint is
    first in turn. The peer check remembered from a minute ago does not count: the
    broker that passed it may be the one still down, while the one back is still in
    its channel's reconnect backoff."""
    for _ in range(2):
        ping(pair.police)  # both checked and remembered
    pair.stop(0)
    pair.stop(1)
    with pytest.raises(grpc.RpcError) as down:  # both channels now back off reconnecting
        ping(pair.police)
    assert down.value.code() == grpc.StatusCode.UNAVAILABLE
    pair.start(1)
    try:
        for _ in range(4):  # each endpoint first in turn, twice
            ping(pair.police)
    finally:
        pair.start(0)
