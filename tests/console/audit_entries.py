"""Audit entries shaped as the broker writes them (tests/compliance), no identifiers."""

from __future__ import annotations

from typing import Any

DAY_MS = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def sample_entries() -> list[dict[str, Any]]:
    """Decisions, a refusal and deliveries between police, two banks and a carrier."""
    return [
        {
            "type": "decision",
            "at_ms": T0,
            "message_id": "m1",
            "kind": "MATCH_QUERY",
            "sender": "police-1",
            "recipients": ["bank-a"],
            "case_ref": "CASE-1",
            "purpose": "fraud",
            "legal_basis": "law-1",
            "decision": "ALLOW",
            "policy_ids": ["police-match-query"],
        },
        {
            "type": "decision",
            "at_ms": T0 + 1000,
            "message_id": "m2",
            "kind": "FREEZE",
            "sender": "police-1",
            "recipients": ["bank-b"],
            "case_ref": "CASE-2",
            "purpose": "fraud",
            "legal_basis": "law-1",
            "decision": "ALLOW",
            "policy_ids": ["police-freeze"],
        },
        {
            "type": "decision",
            "at_ms": T0 + DAY_MS,
            "message_id": "m3",
            "kind": "FREEZE",
            "sender": "police-1",
            "recipients": ["bank-a"],
            "case_ref": "CASE-1",
            "purpose": "fraud",
            "legal_basis": "",
            "decision": "DENY",
            "policy_ids": ["forbid-no-legal-basis"],
        },
        {
            "type": "delivery",
            "at_ms": T0 + DAY_MS + 5,
            "message_id": "m1",
            "recipient": "bank-a",
            "state": "DELIVERED",
        },
        {
            "type": "decision",
            "at_ms": T0 + 2 * DAY_MS,
            "message_id": "m4",
            "kind": "MATCH_QUERY",
            "sender": "police-1",
            "recipients": ["carrier-1"],
            "case_ref": "CASE-3",
            "purpose": "fraud",
            "legal_basis": "law-2",
            "decision": "ALLOW",
            "policy_ids": ["police-match-query"],
        },
    ]
