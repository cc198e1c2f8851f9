"""Each structural and time check of the envelope verifier refuses on its own.

Every case is a validly signed envelope that differs from an accepted one in exactly
one respect, so it is that check, and no other, that must refuse it. The directory
holds real keys; the clock is fixed.
"""

from __future__ import annotations

from dataclasses import replace

import grpc
import pytest

from gateway.envelope.build import Draft
from gateway.envelope.verify import Rejected, Verified
from gateway.v1 import gateway_pb2 as pb
from tests.security.test_fuzz_envelope import NOW, SEALING, SIGNING, VERIFIER

MINUTE = 60_000


def freeze(**changes: object) -> Draft:
    """A police freeze request the verifier accepts; `changes` alter one field."""
    draft = Draft(
        sender="police-1",
        recipients=["bank-a"],
        kind="FREEZE",
        payload=b'{"identifier_kind": "bank_account", "value": "6222020200112233445"}',
        case_ref="C-1",
        legal_basis="art. 11",
        seal_to=bytes(SEALING["bank-a"].public_key),
        terms=pb.ActionTerms(
            action="FREEZE",
            amount_minor=100,
            duration_hours=24,
            issuing_officer="officer-7",
            approving_officer="chief-2",
        ),
        created_at_ms=NOW - MINUTE,
    )
    return replace(draft, **changes)


def ping(**changes: object) -> Draft:
    draft = Draft(
        sender="police-1",
        recipients=["bank-a"],
        kind="PING",
        payload=b"{}",
        created_at_ms=NOW - MINUTE,
    )
    return replace(draft, **changes)


def verify(draft: Draft) -> Verified | Rejected:
    return VERIFIER.verify(draft.sign(SIGNING[draft.sender]), peer_node_id=draft.sender)


def test_the_unchanged_envelopes_are_accepted() -> None:
    assert isinstance(verify(freeze()), Verified)
    assert isinstance(verify(ping()), Verified)
    assert isinstance(verify(ping(recipients=["bank-a", "bank-b"])), Verified)


CASES: dict[str, tuple[Draft, str, grpc.StatusCode, str]] = {
    "message id not lowercase hex": (
        ping(message_id="AB" * 16),
        "header",
        grpc.StatusCode.INVALID_ARGUMENT,
        "message_id must be 32 lowercase hex characters",
    ),
    "addressed to nobody": (
        ping(recipients=[]),
        "header",
        grpc.StatusCode.INVALID_ARGUMENT,
        "recipients are empty",
    ),
    "one recipient named twice": (
        ping(recipients=["bank-a", "bank-a"]),
        "header",
        grpc.StatusCode.INVALID_ARGUMENT,
        "recipients repeat a node",
    ),
    "unknown kind": (
        ping(kind="TRANSFER"),
        "header",
        grpc.StatusCode.INVALID_ARGUMENT,
        "unknown message kind 'TRANSFER'",
    ),
    "action in the clear": (
        freeze(seal_to=None),
        "header",
        grpc.StatusCode.INVALID_ARGUMENT,
        "FREEZE payloads must be sealed to the recipient",
    ),
    "sealed to one of two recipients": (
        freeze(recipients=["bank-a", "bank-b"]),
        "header",
        grpc.StatusCode.INVALID_ARGUMENT,
        "a sealed payload must have exactly one recipient",
    ),
    "expires before it is created": (
        ping(created_at_ms=NOW + MINUTE, lifetime_ms=-MINUTE // 2),
        "header",
        grpc.StatusCode.INVALID_ARGUMENT,
        "expires_at is not after created_at",
    ),
    "created in the future": (
        ping(created_at_ms=NOW + 10 * MINUTE),
        "timestamp",
        grpc.StatusCode.FAILED_PRECONDITION,
        "created_at is in the future beyond the allowed clock skew",
    ),
    "lives longer than a week": (
        freeze(lifetime_ms=8 * 24 * 60 * MINUTE),
        "expiry",
        grpc.StatusCode.INVALID_ARGUMENT,
        "envelope lifetime exceeds the allowed maximum",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_bad_field_is_refused_by_its_own_check(case: str) -> None:
    draft, check, status, reason = CASES[case]
    result = verify(draft)
    assert isinstance(result, Rejected), f"{case}: accepted"
    assert (result.check, result.status, result.reason) == (check, status, reason)
