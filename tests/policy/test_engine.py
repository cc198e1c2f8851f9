"""The engine itself: evaluation errors and malformed requests deny; per-kind plans are exact."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cedarpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.policy import (
    CONTEXT_FIELDS,
    MESSAGE_KINDS,
    ContextValue,
    Party,
    PolicyDecision,
    PolicyEngine,
    PolicyLoadError,
    PolicyRequest,
    make_context,
)
from tests.policy.conftest import (
    BANK_A,
    BROKER_NODE,
    CARRIER,
    POLICE,
    POLICIES,
    SCHEMA,
    SEEDS,
    case,
)

SCHEMA_TEXT = SCHEMA.read_text(encoding="utf-8")
LONG_MAX = 2**63 - 1

OVERFLOWING = b"""
// Pings are fine.
@id("allow-pings")
permit (principal, action == Gateway::Action::"PING", resource);

// Overflows for a batch of 2^63 - 1.
@id("overflowing-forbid")
forbid (principal, action == Gateway::Action::"PING", resource)
when { context.batch_size + 1 < 0 };

// Overflows for an amount of 2^62.
@id("overflowing-permit")
permit (principal, action == Gateway::Action::"FREEZE", resource)
when { context.amount_minor * 1000 > 0 };
"""


@pytest.fixture(scope="module")
def overflowing() -> PolicyEngine:
    return PolicyEngine.from_text(OVERFLOWING, SCHEMA_TEXT)


def test_evaluation_error_in_the_only_permit_denies(overflowing: PolicyEngine) -> None:
    context = make_context(
        sender_kind_last_hour=1,
        sender_actions_last_hour=1,
        sender_bytes_last_hour=1,
        amount_minor=2**62,
    )
    decision = overflowing.decide(PolicyRequest(POLICE, BANK_A, "FREEZE", context))
    assert not decision.allowed
    assert decision.policy_ids == ()
    assert len(decision.errors) == 1
    assert "`overflowing-permit`" in decision.errors[0]
    assert "overflow" in decision.errors[0]


def test_same_permit_allows_when_it_evaluates(overflowing: PolicyEngine) -> None:
    context = make_context(
        sender_kind_last_hour=1,
        sender_actions_last_hour=1,
        sender_bytes_last_hour=1,
        amount_minor=2,
    )
    decision = overflowing.decide(PolicyRequest(POLICE, BANK_A, "FREEZE", context))
    assert decision.allowed
    assert decision.policy_ids == ("overflowing-permit",)


def test_evaluation_error_in_a_forbid_overrides_an_allow(overflowing: PolicyEngine) -> None:
    # Cedar skips a forbid that errs and would allow; the engine denies instead.
    context = make_context(
        sender_kind_last_hour=1,
        sender_actions_last_hour=1,
        sender_bytes_last_hour=1,
        batch_size=LONG_MAX,
    )
    decision = overflowing.decide(PolicyRequest(POLICE, BANK_A, "PING", context))
    assert not decision.allowed
    assert any("`overflowing-forbid`" in error for error in decision.errors)
    assert "errors override the allow by allow-pings" in decision.errors
    assert "overflowing-forbid" in decision.reason


def test_evaluation_error_before_any_context_is_read_still_denies() -> None:
    # The part of the condition that ignores the context errs for every sender and recipient;
    # the engine must not plan this policy away, and must deny.
    engine = PolicyEngine.from_text(
        b"""
        @id("overflow-first")
        permit (principal, action == Gateway::Action::"PING", resource)
        when { 9223372036854775807 + 1 > 0 && context.batch_size > 0 };
        """,
        SCHEMA_TEXT,
    )
    for _ in range(2):  # planned on the first decision, reused on the second
        decision = engine.decide(PolicyRequest(POLICE, BANK_A, "PING", case(batch_size=1)))
        assert not decision.allowed
        assert "`overflow-first`" in decision.errors[0]


def test_scope_on_a_named_node_is_honoured() -> None:
    engine = PolicyEngine.from_text(
        b"""
        @id("only-police-1")
        permit (principal == Gateway::Node::"police-1", action == Gateway::Action::"PING", resource);
        """,
        SCHEMA_TEXT,
    )
    other = Party("police-2", "police", "City Police")
    for _ in range(2):
        assert engine.decide(PolicyRequest(POLICE, BANK_A, "PING", case())).allowed
        assert not engine.decide(PolicyRequest(other, BANK_A, "PING", case())).allowed


def good_context() -> dict[str, ContextValue]:
    return case(batch_size=5)


def without(name: str) -> dict[str, ContextValue]:
    context = good_context()
    del context[name]
    return context


@pytest.mark.parametrize(
    ("context", "error"),
    [
        (without("reply_to"), "context fields missing ['reply_to'], unexpected []"),
        ({**good_context(), "urgent": True}, "context fields missing [], unexpected ['urgent']"),
        ({**good_context(), "batch_size": True}, "context.batch_size must be int, not True"),
        ({**good_context(), "whole_balance": 1}, "context.whole_balance must be bool, not 1"),
        ({**good_context(), "batch_size": "5"}, "context.batch_size must be int, not '5'"),
        ({**good_context(), "case_ref": None}, "context.case_ref must be str, not None"),
        ({**good_context(), "batch_size": 2**63}, "context.batch_size is out of range"),
        ({**good_context(), "amount_minor": -(2**63) - 1}, "context.amount_minor is out of range"),
        (["batch_size"], "context is not a mapping"),
    ],
)
def test_malformed_context_is_denied(broker_engine: PolicyEngine, context: Any, error: str) -> None:
    decision = broker_engine.decide(PolicyRequest(POLICE, BANK_A, "MATCH_QUERY", context))
    assert not decision.allowed
    assert decision.policy_ids == ()
    assert len(decision.errors) == 1
    assert decision.errors[0].startswith(error)


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (None, "not a PolicyRequest: NoneType"),
        ("MATCH_QUERY", "not a PolicyRequest: str"),
        (PolicyRequest(Party("", "police", "X"), BANK_A, "MATCH_QUERY", {}), "node id must be"),
        (PolicyRequest(POLICE, Party("b", None, "X"), "PING", {}), "role and agency of b"),  # type: ignore[arg-type]
        (PolicyRequest(POLICE, "bank-a", "PING", {}), "not a Party"),  # type: ignore[arg-type]
        (
            PolicyRequest(POLICE, Party("police-1", "bank", "X"), "PING", case()),
            "sender and recipient police-1 differ",
        ),
    ],
)
def test_malformed_request_is_denied(
    broker_engine: PolicyEngine, request_: Any, error: str
) -> None:
    decision = broker_engine.decide(request_)
    assert not decision.allowed
    assert decision.policy_ids == ()
    assert decision.errors[0].startswith(error)


def test_an_empty_policy_set_denies_everything() -> None:
    engine = PolicyEngine.from_text(b"// nothing yet\n", SCHEMA_TEXT)
    assert engine.policy_ids == ()
    for kind in MESSAGE_KINDS:
        decision = engine.decide(PolicyRequest(POLICE, BANK_A, kind, case(batch_size=1)))
        assert not decision.allowed
        assert decision.reason == f"denied: no policy allows {kind} from police-1 to bank-a"


def test_static_parties_pin_role_and_agency() -> None:
    engine = PolicyEngine.load(POLICIES / "broker.cedar", SCHEMA, static_parties=[BROKER_NODE])
    regulator = Party("regulator-1", "regulator", "Regulator")
    ok = engine.decide(PolicyRequest(regulator, BROKER_NODE, "AUDIT_READ", case()))
    assert ok.allowed
    impostor = Party("broker", "broker", "Someone else")
    denied = engine.decide(PolicyRequest(regulator, impostor, "AUDIT_READ", case()))
    assert not denied.allowed
    assert "broker is known as role 'broker' of 'Consortium broker'" in denied.errors[0]


def test_static_parties_must_be_distinct_parties() -> None:
    with pytest.raises(PolicyLoadError, match="bad static party"):
        PolicyEngine.load(POLICIES / "broker.cedar", SCHEMA, static_parties=[POLICE, POLICE])
    with pytest.raises(PolicyLoadError, match="bad static party"):
        PolicyEngine.load(POLICIES / "broker.cedar", SCHEMA, static_parties=["police-1"])  # type: ignore[list-item]


def test_decisions_are_the_same_from_many_threads(broker_engine: PolicyEngine) -> None:
    requests = [
        PolicyRequest(sender, recipient, kind, case(batch_size=3, amount_minor=1, duration_hours=2))
        for sender in SEEDS
        for recipient in SEEDS
        for kind in ("MATCH_QUERY", "FREEZE", "PING")
    ]
    expected = [broker_engine.decide(r) for r in requests]
    failures: list[int] = []

    def run() -> None:
        for _ in range(3):
            got = [broker_engine.decide(r) for r in requests]
            failures.extend(i for i, (a, b) in enumerate(zip(got, expected, strict=True)) if a != b)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_decision_cannot_claim_allowed_without_a_policy_or_with_errors() -> None:
    with pytest.raises(ValueError):
        PolicyDecision(True, (), (), "h")
    with pytest.raises(ValueError):
        PolicyDecision(True, ("p",), ("boom",), "h")


# -- the per-kind plans decide exactly as Cedar does with the whole set and the schema ----

NUMBERS = st.sampled_from(
    [-1, 0, 1, 2, 47, 48, 49, 100, 101, 200, 201, 720, 721, 4320, 4321, 10000, 10001]
)
TEXTS = st.sampled_from(["", "x"])
PARTIES = st.sampled_from([*SEEDS, Party("x-1", "auditor", "Someone"), CARRIER])
FIELD_VALUES: Mapping[type, st.SearchStrategy[Any]] = {
    str: TEXTS,
    int: NUMBERS,
    bool: st.booleans(),
}
CONTEXTS = st.fixed_dictionaries(
    {name: FIELD_VALUES[kind] for name, kind in CONTEXT_FIELDS.items()}
)
SHIPPED = {path.name: PolicyEngine.load(path, SCHEMA) for path in sorted(POLICIES.glob("*.cedar"))}
REFERENCE = {
    name: (
        cedarpy.PolicySet.from_str((POLICIES / name).read_text("utf-8")),
        cedarpy.Schema.from_str(SCHEMA_TEXT),
    )
    for name in SHIPPED
}


def reference_decision(name: str, request: PolicyRequest) -> tuple[bool, set[str]]:
    policies, schema = REFERENCE[name]
    parties = {p.node_id: p for p in (request.sender, request.recipient)}
    entities = [
        {
            "uid": {"type": "Gateway::Node", "id": p.node_id},
            "attrs": {"role": p.role, "agency": p.agency},
            "parents": [],
        }
        for p in parties.values()
    ]
    result = cedarpy.is_authorized(
        {
            "principal": {"type": "Gateway::Node", "id": request.sender.node_id},
            "action": {"type": "Gateway::Action", "id": request.kind},
            "resource": {"type": "Gateway::Node", "id": request.recipient.node_id},
            "context": json.dumps(dict(request.context)),
        },
        policies,
        json.dumps(entities),
        schema,
    )
    assert result.diagnostics.errors == []
    ids = result.diagnostics.id_annotations_by_reason
    return result.allowed, {ids[r] for r in result.diagnostics.reasons}


@settings(max_examples=400, deadline=None)
@given(
    name=st.sampled_from(sorted(SHIPPED)),
    sender=PARTIES,
    recipient=PARTIES,
    kind=st.sampled_from(MESSAGE_KINDS),
    context=CONTEXTS,
)
def test_plans_decide_exactly_as_the_whole_policy_set(
    name: str, sender: Party, recipient: Party, kind: str, context: dict[str, ContextValue]
) -> None:
    request = PolicyRequest(sender, recipient, kind, context)
    decision = SHIPPED[name].decide(request)
    assert decision.errors == ()
    assert (decision.allowed, set(decision.policy_ids)) == reference_decision(name, request)


def test_engine_keeps_the_policies_it_validated(tmp_path: Path) -> None:
    # The hash names the bytes that were validated, even if the file changes afterwards.
    path = tmp_path / "p.cedar"
    path.write_text(
        '// All pings.\n@id("p")\npermit (principal, action == Gateway::Action::"PING", resource);\n'
    )
    engine = PolicyEngine.load(path, SCHEMA)
    path.write_text("")
    assert engine.decide(PolicyRequest(POLICE, BANK_A, "PING", case())).allowed


def test_decisions_made_together_are_each_decided_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`decide_many` makes one Cedar call per plan and pair, and each answer is what
    Cedar says of that request alone against the whole policy set; a malformed request
    among them is denied without touching the others."""
    engine = SHIPPED["broker.cedar"]
    well_formed = [
        PolicyRequest(sender, recipient, kind, case(batch_size=size, sender_kind_last_hour=n))
        for sender, recipient in ((POLICE, BANK_A), (BANK_A, POLICE), (CARRIER, BANK_A))
        for kind in ("PING", "MATCH_QUERY")
        for size, n in ((1, 0), (5, 10), (10_001, 3), (2, 50_000))
    ]
    malformed = PolicyRequest(POLICE, BANK_A, "PING", without("reply_to"))
    requests = [*well_formed[:5], malformed, *well_formed[5:]]
    engine.decide_many(requests)  # plans are made (with calls of their own) once per pair
    calls: list[int] = []
    batch = cedarpy.is_authorized_batch

    def counted(asked: list[Any], *args: Any, **kwargs: Any) -> Any:
        calls.append(len(asked))
        return batch(asked, *args, **kwargs)

    monkeypatch.setattr(cedarpy, "is_authorized_batch", counted)
    decisions = engine.decide_many(requests)
    monkeypatch.undo()
    assert len(calls) <= 6  # three pairs, two kinds
    assert sum(calls) == len(well_formed)
    assert not decisions[5].allowed
    assert decisions[5].errors[0].startswith("context fields missing ['reply_to']")
    alone = [d for i, d in enumerate(decisions) if i != 5]
    expected = [reference_decision("broker.cedar", r) for r in well_formed]
    assert [(d.allowed, set(d.policy_ids)) for d in alone] == expected
    assert {d.allowed for d in alone} == {True, False}


def test_decisions_shared_between_threads_match_the_lone_ones(
    broker_engine: PolicyEngine,
) -> None:
    requests = [
        PolicyRequest(sender, recipient, kind, case(batch_size=3, sender_kind_last_hour=n))
        for sender in SEEDS
        for recipient in SEEDS
        for kind in ("MATCH_QUERY", "PING")
        for n in (1, 50_000)
    ]
    expected = [reference_decision("broker.cedar", r) for r in requests]
    failures: list[int] = []
    go = threading.Barrier(4)

    def run() -> None:
        go.wait()
        got = [broker_engine.decide_together(r) for r in requests]
        failures.extend(
            i
            for i, (a, b) in enumerate(zip(got, expected, strict=True))
            if (a.allowed, set(a.policy_ids)) != b
        )

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
