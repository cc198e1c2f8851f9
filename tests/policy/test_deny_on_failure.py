"""Whatever goes wrong while deciding is a deny, never an exception the caller must catch.

The broker and every node call `decide` on each message and act on its answer; an
exception escaping it would turn a refusal into a crash of the call (or worse, a
caller that treats "no decision" as "no objection").
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from gateway.policy import ContextValue, PolicyEngine, PolicyRequest
from tests.policy.conftest import BANK_A, POLICE, case


class UnreadableContext(Mapping[str, ContextValue]):
    """A context that names every field but fails when one is read (a broken source)."""

    def __init__(self, fields: Mapping[str, ContextValue]) -> None:
        self._fields = dict(fields)

    def __getitem__(self, name: str) -> ContextValue:
        raise RuntimeError(f"context field {name} could not be read")

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)


def test_a_request_that_fails_while_read_is_denied(broker_engine: PolicyEngine) -> None:
    context = UnreadableContext(case(batch_size=1))
    decision = broker_engine.decide(PolicyRequest(POLICE, BANK_A, "MATCH_QUERY", context))
    assert not decision.allowed
    assert decision.policy_ids == ()
    assert decision.errors == (
        "evaluation failed: RuntimeError('context field purpose could not be read')",
    )


def test_a_request_cedar_cannot_build_is_denied(broker_engine: PolicyEngine) -> None:
    # A lone surrogate is a valid Python str but not Unicode text: Cedar cannot read the
    # context and answers no decision at all, which must be a deny.
    context = case(batch_size=1, case_ref="C-\ud800")
    decision = broker_engine.decide(PolicyRequest(POLICE, BANK_A, "MATCH_QUERY", context))
    assert not decision.allowed
    assert decision.policy_ids == ()
    assert len(decision.errors) == 1
    assert decision.errors[0].startswith("failed to build request:")


def test_a_request_cedar_cannot_build_denies_only_itself_among_others(
    broker_engine: PolicyEngine,
) -> None:
    """Decided in one Cedar call with well-formed requests of the same plan and pair,
    the unreadable request is denied as alone, and the others are decided as alone."""
    good = PolicyRequest(POLICE, BANK_A, "MATCH_QUERY", case(batch_size=1))
    bad = PolicyRequest(POLICE, BANK_A, "MATCH_QUERY", case(batch_size=1, case_ref="C-\ud800"))
    first, unreadable, last = broker_engine.decide_many([good, bad, good])
    assert first.allowed and last.allowed
    assert not unreadable.allowed
    assert unreadable.errors[0].startswith("failed to build request:")
