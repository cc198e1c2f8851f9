"""Shared engines and the seed consortium the decision tables are written over."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.policy import CONTEXT_FIELDS, ContextValue, Party, PolicyEngine, make_context

POLICIES = Path(__file__).resolve().parents[2] / "gateway" / "policies"
SCHEMA = POLICIES / "schema.cedarschema"
NODE_ROLES = ("bank", "carrier", "police", "regulator")

# The nodes of tests/consortium.py, and the broker as that consortium's PKI names it.
POLICE = Party("police-1", "police", "City Police")
BANK_A = Party("bank-a", "bank", "Bank A")
BANK_B = Party("bank-b", "bank", "Bank B")
CARRIER = Party("carrier-1", "carrier", "Carrier One")
REGULATOR = Party("regulator-1", "regulator", "Regulator")
BROKER_NODE = Party("broker", "broker", "Consortium broker")
SEEDS = (POLICE, BANK_A, BANK_B, CARRIER, REGULATOR, BROKER_NODE)


def case(**fields: ContextValue) -> dict[str, ContextValue]:
    """A context for case work: case reference, legal basis, first message this hour,
    empty payload."""
    unknown = set(fields) - set(CONTEXT_FIELDS)
    assert not unknown, f"not context fields: {unknown}"  # a typo here would fake a deny
    context = make_context(
        sender_kind_last_hour=1,
        sender_actions_last_hour=1,
        sender_bytes_last_hour=1,
        purpose="fraud investigation",
        legal_basis="Criminal Procedure Law art. 144",
        case_ref="CASE-2024-0001",
        issuing_officer="officer-7",
        approving_officer="chief-2",
    )
    context.update(fields)
    return context


def bare(**fields: ContextValue) -> dict[str, ContextValue]:
    """A context with nothing set but ``fields`` (health checks, audit reads)."""
    unknown = set(fields) - set(CONTEXT_FIELDS)
    assert not unknown, f"not context fields: {unknown}"
    context = make_context(
        sender_kind_last_hour=1, sender_actions_last_hour=1, sender_bytes_last_hour=1
    )
    context.update(fields)
    return context


def alert(**fields: ContextValue) -> dict[str, ContextValue]:
    """A context for a bank's or carrier's alert: a purpose, no case, first this hour."""
    return bare(**{"purpose": "suspicious activity report", **fields})


@pytest.fixture(scope="session")
def broker_engine() -> PolicyEngine:
    return PolicyEngine.load(POLICIES / "broker.cedar", SCHEMA)


@pytest.fixture(scope="session")
def node_engines() -> dict[str, PolicyEngine]:
    return {role: PolicyEngine.load(POLICIES / f"node-{role}.cedar", SCHEMA) for role in NODE_ROLES}
