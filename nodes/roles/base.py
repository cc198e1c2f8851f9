"""What every role handler is: a function from an inbound message to an optional answer."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import grpc
from sqlalchemy.orm import Session

from gateway.envelope.build import Draft
from gateway.policy import ContextValue, PolicyDecision
from gateway.v1 import gateway_pb2 as pb

if TYPE_CHECKING:
    from nodes.runtime import NodeContext


@dataclass(frozen=True)
class Inbound:
    """A verified, policy-allowed message, its payload already unsealed."""

    header: pb.Header
    payload: bytes
    envelope: pb.Envelope
    session: Session | None = None
    """For action requests: the transaction that also records this message as received.

    Effects written through it happen exactly once: a duplicate delivery of the same
    message id conflicts on the journal row and rolls back with them.
    """
    decide_again: Callable[[Mapping[str, ContextValue]], PolicyDecision] | None = None
    sender_role: str = ""
    """The sender's role in the signed directory, as the node's policy saw it."""
    """The node's own policy on this message again, with facts the role learnt only after
    unsealing it (e.g. how often the bank has stopped the account); None outside a node."""


class RoleRefusal(Exception):
    """The role refuses a message; the reason goes back to the broker and is audited."""

    def __init__(self, status: grpc.StatusCode, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class RoleHandler(Protocol):
    def handle(self, inbound: Inbound, ctx: NodeContext) -> Draft | None: ...


KindHandler = Callable[[Inbound, "NodeContext"], "Draft | None"]
"""Handles one kind of inbound message; returns the signed answer's draft, if any."""


def pong(inbound: Inbound, ctx: NodeContext) -> Draft:
    """The answer to a connectivity check: who answered and when."""
    body = json.dumps({"node": ctx.node_id, "role": ctx.config.role}).encode()
    return ctx.answer(inbound, "PONG", body)


class KindRouter:
    """A role as a table from message kind to handler; other kinds are refused."""

    def __init__(self, role: str, handlers: Mapping[str, KindHandler]) -> None:
        self.role = role
        self.handlers = dict(handlers)

    def handle(self, inbound: Inbound, ctx: NodeContext) -> Draft | None:
        handler = self.handlers.get(inbound.header.kind)
        if handler is None:
            raise RoleRefusal(
                grpc.StatusCode.UNIMPLEMENTED,
                f"role: a {self.role} node does not handle {inbound.header.kind}",
            )
        return handler(inbound, ctx)
