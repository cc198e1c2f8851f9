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
from nodes.actions.ledger import StatedTransaction

EXECUTED, PARTIAL, REJECTED = "EXECUTED", "PARTIAL", "REJECTED"


class OrderError(ValueError):
    """The request cannot be read as an order; the text names what is wrong."""


@dataclass(frozen=True)
class Victim:
    """Where a return of funds goes: the victim's bank (a member id), account and name."""

    bank: str
    account: str
    name: str

    def __repr__(self) -> str:
        return f"Victim(bank={self.bank})"


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
    account_name: str = ""
    """The holder's name as the police state it; never logged."""
    transaction: StatedTransaction | None = None
    victim: Victim | None = None
    window: tuple[int, int] | None = None
    """An inquiry's time window [from, until) in Unix ms."""

    def __repr__(self) -> str:  # keeps the identifier out of any log or traceback
        return f"Order({self.action}, request={self.request_id})"


@dataclass(frozen=True)
class Outcome:
    outcome: str
    reason: str = ""
    executed_amount_minor: int = 0
    effective_at_ms: int = 0
    hold_expires_at_ms: int = 0
    answer: dict[str, object] | None = None
    """An inquiry's answer, sealed to the police in the receipt."""

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


MAX_NAME = 64
"""Characters of a holder's or victim's name in a request: keeps it within the broker's
1 KiB bound for action requests (tests/policy/largest_payloads.py)."""


def request_payload(
    kind: IdentifierKind | str,
    value: str,
    *,
    account_name: str = "",
    transaction: StatedTransaction | None = None,
    victim: Victim | None = None,
    window: tuple[int, int] | None = None,
) -> bytes:
    """The sealed payload of an action request: which identifier it is about, and for
    fund control the holder's name, the transaction to stop and the victim's account."""
    for name in (account_name, victim.name if victim is not None else ""):
        if len(name) > MAX_NAME:
            raise ValueError(f"names in a request are at most {MAX_NAME} characters")
    body: dict[str, object] = {"identifier_kind": str(kind)}
    if value:
        body["value"] = value
    if account_name:
        body["account_name"] = account_name
    if transaction is not None:
        body["transaction"] = {
            "at_ms": transaction.at_ms,
            "amount_minor": transaction.amount_minor,
            "counterparty": transaction.counterparty,
        }
    if window is not None:
        body["window"] = {"from_ms": window[0], "until_ms": window[1]}
    if victim is not None:
        body["victim"] = {"bank": victim.bank, "account": victim.account, "name": victim.name}
    return json.dumps(body, ensure_ascii=False).encode()


def _transaction(body: dict[str, object], region: str) -> StatedTransaction | None:
    found = body.get("transaction")
    if found is None:
        return None
    if not isinstance(found, dict):
        raise OrderError("payload: transaction must be an object")
    at_ms, amount = found.get("at_ms"), found.get("amount_minor")
    if not isinstance(at_ms, int) or isinstance(at_ms, bool) or at_ms <= 0:
        raise OrderError("payload: transaction.at_ms must be a positive integer")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise OrderError("payload: transaction.amount_minor must be a positive integer")
    counterparty = str(found.get("counterparty") or "")
    if counterparty:
        counterparty = _account(counterparty, region, "transaction.counterparty")
    return StatedTransaction(at_ms, amount, counterparty)


def _account(raw: str, region: str, field: str) -> str:
    try:
        return normalise(IdentifierKind.BANK_ACCOUNT, raw, default_region=region).value
    except InvalidIdentifier as exc:
        raise OrderError(f"payload: {field}: {exc}") from None


def _window(body: dict[str, object], duration_hours: int) -> tuple[int, int] | None:
    """An inquiry's window; no longer than the hours its signed header states (which the
    broker's and this node's policies bound)."""
    found = body.get("window")
    if found is None:
        return None
    start = found.get("from_ms") if isinstance(found, dict) else None
    end = found.get("until_ms") if isinstance(found, dict) else None
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (start, end)):
        raise OrderError("payload: window must be {from_ms, until_ms}, whole milliseconds")
    assert isinstance(start, int) and isinstance(end, int)
    if end <= start:
        raise OrderError("window: its end must come after its start")
    if end - start > duration_hours * 3_600_000:
        raise OrderError("window: longer than the hours the request's terms state")
    return start, end


def _victim(body: dict[str, object], region: str) -> Victim | None:
    found = body.get("victim")
    if found is None:
        return None
    if not isinstance(found, dict) or not all(
        isinstance(found.get(k), str) and found.get(k) for k in ("bank", "account", "name")
    ):
        raise OrderError("payload: victim must be {bank, account, name}, each non-empty")
    account = _account(str(found["account"]), region, "victim.account")
    return Victim(str(found["bank"]), account, str(found["name"]))


def read_order(header: pb.Header, payload: bytes, role: str, default_region: str) -> Order:
    """Parse and normalise an order; every failure names the field, never the value."""
    terms = header.terms
    identifier = ""
    body: dict[str, object] = {}
    if payload:
        try:
            body = json.loads(payload)
            if not isinstance(body, dict):
                raise TypeError("not an object")
            kind = IdentifierKind(str(body.get("identifier_kind", "bank_account")))
            raw = str(body["value"]) if "value" in body or "victim" not in body else ""
        except (ValueError, KeyError, TypeError, RecursionError):
            raise OrderError("payload: expected {identifier_kind, value}") from None
        name = body.get("account_name", "")
        if not isinstance(name, str) or len(name) > 128:
            raise OrderError("payload: account_name must be text of at most 128 characters")
        if kind not in IDENTIFIER_KINDS.get(role, ()):
            raise OrderError(f"payload: a {role} does not hold {kind.value} identifiers")
        try:
            identifier = normalise(kind, raw, default_region=default_region).value if raw else ""
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
        account_name=str(body.get("account_name", "")),
        transaction=_transaction(body, default_region),
        victim=_victim(body, default_region),
        window=_window(body, terms.duration_hours),
    )
