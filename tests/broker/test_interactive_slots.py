"""A slow member holds at most `interactive_per_recipient` of the broker's threads.

The cheapest move: a member that never answers (or answers after the delivery timeout)
and a sender that keeps PINGing it. Each PING to it holds a broker thread while the
broker waits; past the per-recipient bound the broker does not wait but answers at
once that the recipient was not reached, so the other members are still served.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest

from gateway.transport import new_server, server_credentials
from gateway.v1 import gateway_pb2 as pb
from tests.consortium import Consortium
from tests.security.net import Net, ping, serving

BOUND = 2


class SlowNode:
    """bank-a at its listed endpoint, with its own certificate, answering only when told."""

    def __init__(self) -> None:
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()

    def deliver(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.entered.release()
        self.release.wait(30)
        envelope = pb.Envelope.FromString(request)
        message_id = pb.Header.FromString(envelope.header).message_id
        return pb.DeliverReply(message_id=message_id, accepted=True).SerializeToString()


@contextmanager
def slow_bank_a(net: Net, node: SlowNode) -> Iterator[None]:
    server = new_server(8, [])
    handler = grpc.method_handlers_generic_handler(
        "gateway.v1.Node", {"Deliver": grpc.unary_unary_rpc_method_handler(node.deliver)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = net.consortium.node_ports["bank-a"]
    server.add_secure_port(f"127.0.0.1:{port}", server_credentials(net.tls("bank-a")))
    server.start()
    try:
        yield
    finally:
        node.release.set()
        server.stop(0)


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    consortium = Consortium.create(tmp_path / "c")
    with serving(consortium, ("bank-b",), interactive_per_recipient=BOUND) as network:
        yield network


def test_a_slow_member_gets_only_its_bound_of_interactive_deliveries(net: Net) -> None:
    police = net.stub_as("police-1")
    key = net.signing_key("police-1")
    node = SlowNode()
    with slow_bank_a(net, node), ThreadPoolExecutor(BOUND) as pool:
        held = [pool.submit(police.Submit, ping().sign(key), timeout=30) for _ in range(BOUND)]
        for _ in range(BOUND):
            assert node.entered.acquire(timeout=30)

        extra = police.Submit(ping().sign(key), timeout=30)  # answered without waiting
        assert list(extra.undelivered) == ["bank-a"]
        assert [(r.recipient, r.reason) for r in extra.refusals] == [
            ("bank-a", f"RESOURCE_EXHAUSTED {BOUND} interactive deliveries already in flight")
        ]
        other = police.Submit(ping(recipient="bank-b").sign(key), timeout=30)
        assert [pb.Header.FromString(r.header).sender for r in other.responses] == ["bank-b"]

        node.release.set()
        for future in held:
            reply = future.result(timeout=30)
            assert reply.decision == "ALLOW" and not reply.refusals
        assert node.entered.acquire(timeout=0) is False  # the extra one never reached it

    node2 = SlowNode()
    node2.release.set()
    with slow_bank_a(net, node2):  # the slots were given back
        reply = police.Submit(ping().sign(key), timeout=30)
        assert not reply.refusals
