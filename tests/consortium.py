"""A throw-away consortium for tests, with broker and nodes serving in this process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from gateway.broker.server import RunningBroker, serve_broker
from gateway.localnet import CONSORTIUM, DEFAULT_NODES, Consortium, free_port
from nodes.actions.police import ActionRequestRow
from nodes.runtime import NodeContext, RunningNode, open_node, serve_node

__all__ = [
    "CONSORTIUM",
    "DEFAULT_NODES",
    "Consortium",
    "client",
    "free_port",
    "request_state",
    "running",
]


def client(consortium: Consortium, node_id: str) -> NodeContext:
    """A node's context (keys, database, broker client) without serving it."""
    return open_node(consortium.node_config(node_id))


def request_state(police: NodeContext, request_id: str) -> str:
    """The state the police node holds for an action request it issued ('' if none)."""
    with Session(police.engine) as s:
        row = s.get(ActionRequestRow, request_id)
        return row.state if row is not None else ""


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
