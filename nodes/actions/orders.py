"""What a bank or carrier is asked to do, and what it answers, independent of storage.

The request's terms come from the signed header (which the broker checked against
policy); the identifier comes from the payload sealed to this node. An adapter turns
an `Order` into an `Outcome` against the agency's own tables.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from gateway.identifiers import IdentifierKind, InvalidIdentifier, normalise
from gateway.v1 import gateway_pb2 as pb

EXECUTED, PARTIAL, REJECTED = "EXECUTED", "PARTIAL", "REJECTED"


class OrderError(ValueError):
    """The request cannot be read as an order; the text names what is wrong."""


@dataclass(frozen=True)
class Order:
    request_id: str
    action: str
    identifier: str
    """Normalised account, card or phone number; never logged."""
    amount_minor: int
    whole_balance: bool
    duration_hours: int
    target_request_id: str

    def __repr__(self) -> str:  # keeps the identifier out of any log or traceback
        return f"Order({self.action}, request={self.request_id})"


@dataclass(frozen=True)
class Outcome:
    outcome: str
    reason: str = ""
    executed_amount_minor: int = 0
    effective_at_ms: int = 0
    hold_expires_at_ms: int = 0

    @classmethod
    def rejected(cls, reason: str) -> Outcome:
        return cls(REJECTED, reason)


class HoldAdapter(Protocol):
    """Executes orders against an agency's own tables, inside the caller's transaction."""

    def execute(self, session: Session, order: Order, now_ms: int) -> Outcome: ...

    def release_expired(self, session: Session, now_ms: int) -> int: ...


IDENTIFIER_KINDS = {
    "bank": (IdentifierKind.BANK_ACCOUNT, IdentifierKind.BANK_CARD),
    "carrier": (IdentifierKind.PHONE,),
}


def request_payload(kind: IdentifierKind | str, value: str) -> bytes:
    """The sealed payload of an action request: which identifier it is about."""
    return json.dumps({"identifier_kind": str(kind), "value": value}).encode()


def read_order(header: pb.Header, payload: bytes, role: str, default_region: str) -> Order:
    """Parse and normalise an order; every failure names the field, never the value."""
    terms = header.terms
    identifier = ""
    if payload:
        try:
            body = json.loads(payload)
            if not isinstance(body, dict):
                raise TypeError("not an object")
            kind = IdentifierKind(body["identifier_kind"])
            raw = str(body["value"])
        except (ValueError, KeyError, TypeError, RecursionError):
            raise OrderError("payload: expected {identifier_kind, value}") from None
        if kind not in IDENTIFIER_KINDS.get(role, ()):
            raise OrderError(f"payload: a {role} does not hold {kind.value} identifiers")
        try:
            identifier = normalise(kind, raw, default_region=default_region).value
        except InvalidIdentifier as exc:
            raise OrderError(f"payload: {exc}") from None
    if terms.action != header.kind:
        raise OrderError(f"terms: action {terms.action!r} differs from kind {header.kind}")
    return Order(
        request_id=header.message_id,
        action=header.kind,
        identifier=identifier,
        amount_minor=terms.amount_minor,
        whole_balance=terms.whole_balance,
        duration_hours=terms.duration_hours,
        target_request_id=terms.target_request_id,
    )
