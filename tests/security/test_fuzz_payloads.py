"""Fuzzing the JSON payloads a node reads after unsealing: action orders and receipts.

The sender is a verified member, but a member may be buggy or hostile, so an order or
receipt that cannot be read must end in the documented refusal (`OrderError` for an
order, which becomes a REJECTED receipt; `RoleRefusal` for a receipt), never in an
unhandled exception that aborts the delivery with UNKNOWN and makes the broker retry.

Deeply nested JSON and JSON values that are not objects are among the inputs (they
once escaped as RecursionError and AttributeError).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from gateway.db import NodeBase
from gateway.identifiers import IdentifierKind
from gateway.kinds import ACTIONS
from gateway.v1 import gateway_pb2 as pb
from nodes.actions.orders import Order, OrderError, read_order
from nodes.actions.police import ActionRequestRow, keep_receipt
from nodes.roles.base import Inbound, RoleRefusal

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
REQUEST_ID = "0123456789abcdef" * 2
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
IDENTIFIER_VALUES = (
    st.from_regex(r"\A[+0-9 \-]{0,24}\Z")
    | st.sampled_from(["6222020200112233445", "+8613812345678", "11010519491231002X"])
    | st.text(max_size=40)
)
ORDER_BODIES = st.fixed_dictionaries(
    {
        "identifier_kind": st.sampled_from([k.value for k in IdentifierKind]) | JSON,
        "value": IDENTIFIER_VALUES | JSON,
    }
)
PAYLOADS = st.one_of(
    st.binary(max_size=200),
    JSON.map(lambda v: json.dumps(v).encode()),
    ORDER_BODIES.map(lambda v: json.dumps(v).encode()),
)
DEEP = b"[" * 100_000 + b"]" * 100_000


def order_header(kind: str, action: str) -> pb.Header:
    header = pb.Header(message_id=REQUEST_ID, kind=kind)
    header.terms.action = action
    return header


@FUZZ
@given(
    st.sampled_from(sorted(ACTIONS)),
    st.booleans(),
    PAYLOADS,
    st.sampled_from(["bank", "carrier", "police"]),
    st.sampled_from(["CN", "GB"]),
)
def test_read_order_reads_or_names_the_problem(
    kind: str, same_action: bool, payload: bytes, role: str, region: str
) -> None:
    header = order_header(kind, kind if same_action else "FREEZE")
    try:
        order = read_order(header, payload, role, region)
    except OrderError as exc:
        assert str(exc).split(":")[0] in ("payload", "terms")
        return
    assert isinstance(order, Order)
    assert order.action == kind and header.terms.action == kind
    if order.identifier:
        assert order.identifier not in repr(order)  # never in a log line or traceback


def test_read_order_refuses_deeply_nested_json() -> None:
    with pytest.raises(OrderError):
        read_order(order_header("FREEZE", "FREEZE"), DEEP, "bank", "CN")


# -- receipts kept by the police node ----------------------------------------------------


@pytest.fixture
def session() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    NodeBase.metadata.create_all(engine)
    with Session(engine) as s:
        yield s
    engine.dispose()


def receipt(session: Session, payload: bytes, sender: str, outcome: str) -> Inbound:
    session.rollback()
    if session.get(ActionRequestRow, REQUEST_ID) is None:
        session.add(
            ActionRequestRow(
                request_id=REQUEST_ID,
                recipient="bank-a",
                action="FREEZE",
                case_ref="C-1",
                requested_at_ms=1,
            )
        )
        session.flush()
    header = pb.Header(
        message_id="f" * 32,
        sender=sender,
        kind="ACTION_RECEIPT",
        reply_to=REQUEST_ID,
        outcome=outcome,
    )
    return Inbound(header, payload, pb.Envelope(), session)


def object_or_not_json(payload: bytes) -> bool:
    """Bytes that are a JSON object or no JSON at all (other JSON values: tested below)."""
    try:
        value: Any = json.loads(payload)
    except ValueError:
        return True
    return isinstance(value, dict)


def keep(inbound: Inbound) -> None:
    keep_receipt(inbound, None)  # type: ignore[arg-type]  # the context is not used


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["reason", "outcome", "request_id"]) | st.text(max_size=8), JSON, max_size=4
    ).map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=200).filter(object_or_not_json),
    st.sampled_from(["bank-a", "bank-b"]),
    st.sampled_from(["EXECUTED", "REJECTED", "PARTIAL"]) | st.text(max_size=10),
)
def test_receipt_is_kept_or_refused_by_name(
    session: Session, payload: bytes, sender: str, outcome: str
) -> None:
    inbound = receipt(session, payload, sender, outcome)
    try:
        keep(inbound)
    except RoleRefusal as refusal:
        assert refusal.reason.startswith("receipt:")
        return
    row = session.get(ActionRequestRow, REQUEST_ID)
    assert row is not None and sender == "bank-a"
    assert len(row.reason) <= 500


@pytest.mark.parametrize("payload", [b"[]", b'"executed"', b"7", b"null"])
def test_receipt_that_is_not_a_json_object_is_refused(session: Session, payload: bytes) -> None:
    with pytest.raises(RoleRefusal):
        keep(receipt(session, payload, "bank-a", "EXECUTED"))


def test_receipt_with_deeply_nested_json_is_refused(session: Session) -> None:
    with pytest.raises(RoleRefusal):
        keep(receipt(session, DEEP, "bank-a", "EXECUTED"))
