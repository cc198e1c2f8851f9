"""The shipped node policies: what each role accepts from the broker (defence in depth).

Nodes decide with the same engine, with the ``sender_*_last_hour`` counts and
``payload_bytes`` 0 (the broker keeps the quotas and size bounds), and always as the
recipient.
"""

from __future__ import annotations

import pytest

from gateway.policy import ContextValue, Party, PolicyEngine, PolicyRequest
from tests.policy.conftest import BANK_A, BANK_B, CARRIER, POLICE, REGULATOR, alert, bare, case


def inbound(**fields: ContextValue) -> dict[str, ContextValue]:
    counts: dict[str, ContextValue] = {
        "sender_kind_last_hour": 0,
        "sender_actions_last_hour": 0,
        "sender_bytes_last_hour": 0,
    }
    return case(**{**counts, **fields})


# fmt: off
ROWS: list[tuple[str, Party, Party, str, dict[str, ContextValue], tuple[str, ...] | None]] = [
    # role, sender, recipient, kind, context, determining ids if allowed else None (denied)
    ("bank", POLICE, BANK_A, "MATCH_QUERY", inbound(batch_size=10), ("bank-accepts-police-queries",)),
    ("bank", POLICE, BANK_A, "PSI_REQUEST", inbound(batch_size=10), ("bank-accepts-police-queries",)),
    ("bank", POLICE, BANK_A, "MATCH_QUERY", inbound(batch_size=10001), None),
    ("bank", CARRIER, BANK_A, "PSI_REQUEST", inbound(batch_size=10), ("bank-accepts-carrier-psi-request",)),
    ("bank", CARRIER, BANK_A, "PSI_RESPONSE", inbound(reply_to="m-1"), ("bank-accepts-carrier-psi-response",)),
    ("bank", CARRIER, BANK_A, "MATCH_QUERY", inbound(batch_size=10), None),
    ("bank", POLICE, BANK_A, "STOP_PAYMENT", inbound(amount_minor=1, duration_hours=48), ("bank-accepts-police-stop-payment",)),
    ("bank", POLICE, BANK_A, "STOP_PAYMENT", inbound(amount_minor=1, duration_hours=49), None),
    ("bank", POLICE, BANK_A, "FREEZE", inbound(whole_balance=True, duration_hours=4320), ("bank-accepts-police-freeze",)),
    ("bank", POLICE, BANK_A, "FREEZE", inbound(whole_balance=True, duration_hours=4320, legal_basis=""), None),
    ("bank", POLICE, BANK_A, "FREEZE", inbound(whole_balance=True, duration_hours=4321), None),
    ("bank", POLICE, BANK_A, "EXTEND", inbound(duration_hours=24), ("bank-accepts-police-extend",)),
    ("bank", POLICE, BANK_A, "RELEASE", inbound(), ("bank-accepts-police-release",)),
    ("bank", POLICE, BANK_A, "RETURN_FUNDS", inbound(amount_minor=1), ("bank-accepts-police-return-funds",)),
    ("bank", POLICE, BANK_A, "INQUIRY", inbound(duration_hours=8784), ("bank-accepts-police-inquiry",)),
    ("bank", POLICE, BANK_A, "INQUIRY", inbound(duration_hours=8785), None),
    ("carrier", POLICE, CARRIER, "INQUIRY", inbound(duration_hours=24), ("carrier-accepts-police-inquiry",)),
    ("carrier", BANK_A, CARRIER, "INQUIRY", inbound(duration_hours=24), None),
    ("bank", POLICE, BANK_A, "RETURN_FUNDS", inbound(whole_balance=True), None),
    ("bank", POLICE, BANK_A, "STOP_PAYMENT", inbound(amount_minor=1, duration_hours=48, account_stop_payments=1), ("bank-accepts-police-stop-payment",)),
    ("bank", POLICE, BANK_A, "STOP_PAYMENT", inbound(amount_minor=1, duration_hours=48, account_stop_payments=2), None),
    ("bank", POLICE, BANK_A, "RELEASE", inbound(case_ref=""), None),
    ("bank", POLICE, BANK_A, "STOP_PAYMENT", inbound(amount_minor=1, duration_hours=1, issuing_officer=""), None),
    ("bank", POLICE, BANK_A, "FREEZE", inbound(amount_minor=1, duration_hours=1, approving_officer=""), None),
    ("bank", POLICE, BANK_A, "EXTEND", inbound(duration_hours=1, issuing_officer="wang", approving_officer="wang"), None),
    ("carrier", POLICE, CARRIER, "SUSPEND_NUMBER", inbound(duration_hours=24, issuing_officer="wang", approving_officer="wang"), None),
    ("carrier", POLICE, CARRIER, "RESTORE_NUMBER", inbound(approving_officer=""), None),
    ("bank", CARRIER, BANK_A, "FREEZE", inbound(amount_minor=1, duration_hours=1), None),
    ("bank", BANK_B, BANK_A, "FREEZE", inbound(amount_minor=1, duration_hours=1), None),
    ("bank", REGULATOR, BANK_A, "PING", bare(), ("bank-accepts-ping",)),
    ("bank", REGULATOR, BANK_A, "PONG", bare(), None),
    ("bank", REGULATOR, BANK_A, "AUDIT_READ", bare(), None),
    ("bank", POLICE, CARRIER, "FREEZE", inbound(amount_minor=1, duration_hours=1), None),
    ("carrier", POLICE, CARRIER, "MATCH_QUERY", inbound(batch_size=10), ("carrier-accepts-police-queries",)),
    ("carrier", BANK_A, CARRIER, "PSI_REQUEST", inbound(batch_size=10), ("carrier-accepts-bank-psi-request",)),
    ("carrier", BANK_A, CARRIER, "PSI_RESPONSE", inbound(reply_to="m-1"), ("carrier-accepts-bank-psi-response",)),
    ("carrier", POLICE, CARRIER, "SUSPEND_NUMBER", inbound(duration_hours=720), ("carrier-accepts-police-suspend-number",)),
    ("carrier", POLICE, CARRIER, "SUSPEND_NUMBER", inbound(duration_hours=721), None),
    ("carrier", POLICE, CARRIER, "SUSPEND_NUMBER", inbound(duration_hours=24, case_ref=""), None),
    ("carrier", POLICE, CARRIER, "RESTORE_NUMBER", inbound(), ("carrier-accepts-police-restore-number",)),
    ("carrier", BANK_A, CARRIER, "SUSPEND_NUMBER", inbound(duration_hours=24), None),
    ("carrier", POLICE, CARRIER, "FREEZE", inbound(amount_minor=1, duration_hours=1), None),
    ("carrier", BANK_A, CARRIER, "PING", bare(), ("carrier-accepts-ping",)),
    ("carrier", POLICE, BANK_A, "MATCH_QUERY", inbound(batch_size=10), None),
    ("police", BANK_A, POLICE, "MATCH_RESPONSE", bare(reply_to="m-1"), ("police-accepts-answers",)),
    ("police", CARRIER, POLICE, "PSI_RESPONSE", bare(reply_to="m-1"), ("police-accepts-answers",)),
    ("police", BANK_A, POLICE, "ACTION_RECEIPT", bare(reply_to="m-1"), ("police-accepts-answers",)),
    ("police", BANK_A, POLICE, "ACTION_RECEIPT", bare(), None),
    ("police", CARRIER, POLICE, "FLAGGED_NUMBERS", inbound(), ("police-accepts-flagged-numbers",)),
    ("police", CARRIER, POLICE, "FLAGGED_NUMBERS", bare(), None),
    ("police", BANK_A, POLICE, "FLAGGED_NUMBERS", inbound(), None),
    ("police", BANK_A, POLICE, "FREEZE", inbound(amount_minor=1, duration_hours=1), None),
    ("police", BANK_A, POLICE, "SUSPICIOUS_ACCOUNT", alert(), ("police-accepts-alerts",)),
    ("police", CARRIER, POLICE, "SUSPICIOUS_NUMBER", alert(), ("police-accepts-alerts",)),
    ("police", BANK_A, POLICE, "SUSPICIOUS_ACCOUNT", alert(purpose=""), None),
    ("police", BANK_A, POLICE, "SUSPICIOUS_NUMBER", alert(), None),
    ("police", CARRIER, POLICE, "SUSPICIOUS_ACCOUNT", alert(), None),
    ("police", REGULATOR, POLICE, "SUSPICIOUS_NUMBER", alert(), None),
    ("bank", CARRIER, BANK_A, "SUSPICIOUS_NUMBER", alert(), None),
    ("carrier", BANK_A, CARRIER, "SUSPICIOUS_ACCOUNT", alert(), None),
    ("police", REGULATOR, POLICE, "MATCH_RESPONSE", bare(reply_to="m-1"), None),
    ("police", BANK_A, POLICE, "PONG", bare(), ("police-accepts-pong",)),
    ("regulator", BANK_A, REGULATOR, "PONG", bare(), ("regulator-accepts-pong",)),
    ("regulator", POLICE, REGULATOR, "PING", bare(), None),
    ("regulator", POLICE, REGULATOR, "MATCH_QUERY", inbound(batch_size=10), None),
    ("regulator", CARRIER, REGULATOR, "FLAGGED_NUMBERS", inbound(), None),
    ("regulator", BANK_A, POLICE, "PONG", bare(), None),
]
# fmt: on


@pytest.mark.parametrize(
    ("role", "sender", "recipient", "kind", "context", "expected"),
    ROWS,
    ids=[f"{r[0]}: {r[3]} from {r[1].node_id} to {r[2].node_id}-{i}" for i, r in enumerate(ROWS)],
)
def test_node_decision_table(
    node_engines: dict[str, PolicyEngine],
    role: str,
    sender: Party,
    recipient: Party,
    kind: str,
    context: dict[str, ContextValue],
    expected: tuple[str, ...] | None,
) -> None:
    decision = node_engines[role].decide(PolicyRequest(sender, recipient, kind, context))
    assert decision.errors == ()
    assert decision.allowed == (expected is not None)
    if expected is not None:
        assert decision.policy_ids == expected


@pytest.mark.parametrize(
    ("role", "guard", "elsewhere"),
    [
        ("bank", "bank-forbids-if-not-a-bank", POLICE),
        ("carrier", "carrier-forbids-if-not-a-carrier", BANK_A),
        ("police", "police-forbids-if-not-police", CARRIER),
        ("regulator", "regulator-forbids-if-not-regulator", BANK_A),
    ],
)
def test_a_node_policy_refuses_messages_for_another_role(
    node_engines: dict[str, PolicyEngine], role: str, guard: str, elsewhere: Party
) -> None:
    for kind in ("PING", "PONG", "MATCH_QUERY", "FREEZE", "FLAGGED_NUMBERS"):
        context = inbound(batch_size=1, amount_minor=1, duration_hours=1, reply_to="m-1")
        decision = node_engines[role].decide(PolicyRequest(BANK_B, elsewhere, kind, context))
        assert not decision.allowed
        assert guard in decision.policy_ids


@pytest.mark.parametrize(
    ("role", "recipient", "kind", "terms"),
    [
        ("bank", BANK_A, "STOP_PAYMENT", {"amount_minor": 1, "duration_hours": 1}),
        ("bank", BANK_A, "FREEZE", {"whole_balance": True, "duration_hours": 1}),
        ("bank", BANK_A, "EXTEND", {"duration_hours": 1}),
        ("bank", BANK_A, "RELEASE", {}),
        ("carrier", CARRIER, "SUSPEND_NUMBER", {"duration_hours": 1}),
        ("carrier", CARRIER, "RESTORE_NUMBER", {}),
    ],
)
@pytest.mark.parametrize(
    ("issuing", "approving"), [("", "chief-2"), ("officer-7", ""), ("wang", "wang"), ("", "")]
)
def test_a_node_refuses_actions_without_two_different_officers(
    node_engines: dict[str, PolicyEngine],
    role: str,
    recipient: Party,
    kind: str,
    terms: dict[str, ContextValue],
    issuing: str,
    approving: str,
) -> None:
    """Even if the broker let it through, a bank or carrier does not act on a request
    one officer drafted and approved alone (four-eyes, defence in depth)."""
    engine = node_engines[role]
    good = engine.decide(PolicyRequest(POLICE, recipient, kind, inbound(**terms)))
    assert good.allowed
    context = inbound(**terms, issuing_officer=issuing, approving_officer=approving)
    decision = engine.decide(PolicyRequest(POLICE, recipient, kind, context))
    assert not decision.allowed
    assert decision.policy_ids == (f"{role}-forbids-actions-without-two-officers",)
