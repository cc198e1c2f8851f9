"""The broker's size bounds let through the largest payloads the nodes really send.

The payloads come from the real encoders, sealed as sent (tests/policy/largest_payloads.py),
at the batch caps; a bound tighter than real traffic would deny honest work.
"""

from __future__ import annotations

import pytest

from gateway.bulk_psi.plan import MAX_CHUNK_SIZE
from gateway.policy import ContextValue, Party, PolicyEngine, PolicyRequest
from tests.policy import largest_payloads as largest
from tests.policy.conftest import BANK_A, CARRIER, POLICE, bare, case

BATCH_CAP = 10_000
"""The broker policy's batch cap (police-match-query, police-psi-request)."""


def decide(
    engine: PolicyEngine, sender: Party, recipient: Party, kind: str, ctx: dict[str, ContextValue]
) -> tuple[bool, tuple[str, ...]]:
    decision = engine.decide(PolicyRequest(sender, recipient, kind, ctx))
    assert decision.errors == ()
    return decision.allowed, decision.policy_ids


@pytest.mark.parametrize("items", [1, 7, 1000, BATCH_CAP])
def test_largest_match_query_passes(broker_engine: PolicyEngine, items: int) -> None:
    size = len(largest.match_query(items))
    ctx = case(batch_size=items, payload_bytes=size)
    assert decide(broker_engine, POLICE, BANK_A, "MATCH_QUERY", ctx) == (
        True,
        ("police-match-query",),
    )


@pytest.mark.parametrize("elements", [1, 5000, BATCH_CAP])
def test_largest_psi_request_passes(broker_engine: PolicyEngine, elements: int) -> None:
    size = len(largest.psi_request(elements))
    ctx = case(batch_size=elements, payload_bytes=size)
    assert decide(broker_engine, POLICE, CARRIER, "PSI_REQUEST", ctx)[0]


def test_psi_request_twice_its_batch_is_denied(broker_engine: PolicyEngine) -> None:
    size = len(largest.psi_request(2 * 100))
    ctx = case(batch_size=100, payload_bytes=size)
    assert decide(broker_engine, POLICE, CARRIER, "PSI_REQUEST", ctx) == (
        False,
        ("forbid-oversized-psi-request",),
    )


def test_largest_psi_response_passes(broker_engine: PolicyEngine) -> None:
    assert MAX_CHUNK_SIZE == BATCH_CAP
    ctx = bare(reply_to="m-1", payload_bytes=len(largest.psi_response()))
    assert decide(broker_engine, BANK_A, POLICE, "PSI_RESPONSE", ctx)[0]


def test_largest_action_request_passes(broker_engine: PolicyEngine) -> None:
    ctx = case(amount_minor=1, duration_hours=1, payload_bytes=len(largest.action_request()))
    assert decide(broker_engine, POLICE, BANK_A, "FREEZE", ctx)[0]


def test_largest_pong_passes(broker_engine: PolicyEngine) -> None:
    ctx = bare(payload_bytes=len(largest.pong()))
    assert decide(broker_engine, BANK_A, POLICE, "PONG", ctx)[0]


@pytest.mark.parametrize("items", [1, 7, 256])
def test_largest_watchlist_check_passes(broker_engine: PolicyEngine, items: int) -> None:
    """A check is a match query (the same encoder), at most 256 identifiers a message."""
    size = len(largest.match_query(items))
    ctx = bare(batch_size=items, payload_bytes=size)
    assert decide(broker_engine, BANK_A, POLICE, "WATCHLIST_CHECK", ctx) == (
        True,
        ("member-watchlist-check",),
    )
