"""An allowed message is in the audit log before it is delivered, and so is its answer."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from gateway.broker.server import RunningBroker
from gateway.envelope.build import Draft
from gateway.localnet import Consortium
from tests.consortium import client, running


@pytest.fixture(scope="module")
def broker(consortium: Consortium) -> Iterator[RunningBroker]:
    with running(consortium, ("police-1", "bank-a")) as (running_broker, _nodes):
        yield running_broker


def entries(broker: RunningBroker) -> list[dict[str, object]]:
    return [json.loads(leaf) for _, leaf in broker.broker.audit.read(0, 1000)]


def test_decision_precedes_delivery_and_the_answer(
    broker: RunningBroker, consortium: Consortium
) -> None:
    ctx = client(consortium, "police-1")
    try:
        draft = Draft(sender="police-1", recipients=["bank-a"], kind="PING", payload=b"{}")
        result = ctx.client.submit(draft)
    finally:
        ctx.client.close()
    log = entries(broker)
    decision = next(
        i
        for i, e in enumerate(log)
        if e.get("message_id") == draft.message_id and e.get("type") == "decision"
    )
    [(answer, _)] = result.answers
    answered = next(
        i
        for i, e in enumerate(log)
        if e.get("type") == "delivery" and e.get("message_id") == draft.message_id
    )
    pong = next(i for i, e in enumerate(log) if e.get("message_id") == answer.message_id)
    assert log[decision]["decision"] == "ALLOW"
    assert result.leaf_index == decision
    assert decision < pong < answered  # the answer is decided and audited before it is passed on
    assert log[answered]["state"] == "answered"
