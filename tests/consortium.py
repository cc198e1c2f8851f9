"""A throw-away consortium for tests, with broker and nodes serving in this process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from gateway.broker.server import RunningBroker, serve_broker
from gateway.localnet import CONSORTIUM, DEFAULT_NODES, Consortium, free_port
from nodes.runtime import NodeContext, RunningNode, open_node, serve_node

__all__ = ["CONSORTIUM", "DEFAULT_NODES", "Consortium", "client", "free_port", "running"]


def client(consortium: Consortium, node_id: str) -> NodeContext:
    """A node's context (keys, database, broker client) without serving it."""
    return open_node(consortium.node_config(node_id))


@contextmanager
def running(
    consortium: Consortium, nodes: tuple[str, ...] | None = None, **broker_overrides: object
) -> Iterator[tuple[RunningBroker, dict[str, RunningNode]]]:
    """Broker and nodes serving in this process; stopped on exit."""
    broker = serve_broker(consortium.broker_config(**broker_overrides))
    started: dict[str, RunningNode] = {}
    try:
        for node_id in nodes if nodes is not None else tuple(consortium.node_ports):
            started[node_id] = serve_node(consortium.node_config(node_id))
        yield broker, started
    finally:
        for node in started.values():
            node.stop(0)
        broker.stop(0)
