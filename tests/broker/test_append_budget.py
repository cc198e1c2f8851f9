"""Refusals and audit reads append to the audit log at a bounded rate per sender.

The cheapest move: a member sends envelopes it knows will be refused (a wrong
signature costs nothing), or reads the log without end, so that the broker appends one
entry per call as fast as it can. Past the sender's budget the calls are still refused,
the refusals are no longer appended one by one, and the next entry the sender causes
says how many were left out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from gateway.broker.append_budget import AppendBudget
from gateway.v1 import gateway_pb2 as pb
from tests.consortium import Consortium
from tests.security.net import Net, ping, serving


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_refills_evenly_and_counts_what_it_left_out() -> None:
    clock = Clock()
    budget = AppendBudget(3, clock=clock)
    assert [budget.take("police-1") for _ in range(5)] == [0, 0, 0, None, None]
    assert budget.take("bank-a") == 0  # every sender has its own bucket
    clock.now += 19.9  # 3 a minute: one token each 20 s
    assert budget.take("police-1") is None
    clock.now += 0.2
    assert budget.take("police-1") == 3
    assert budget.take("police-1") is None
    clock.now += 3600
    assert [budget.take("police-1") for _ in range(4)] == [1, 0, 0, None]


def test_a_budget_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        AppendBudget(0)


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    with serving(Consortium.create(tmp_path / "c"), ()) as network:
        yield network


def _entries(net: Net, kind: str) -> list[dict[str, object]]:
    audit = net.broker.broker.audit
    leaves = [json.loads(leaf) for _, leaf in audit.read(0, audit.size)]
    return [e for e in leaves if e["type"] == kind]


def test_a_sender_flooding_refusals_and_reads_is_held_to_its_budget(net: Net) -> None:
    clock = Clock()
    net.broker.broker.append_budget = AppendBudget(3, clock=clock)
    police = net.stub_as("police-1")
    forged = ping().sign(net.signing_key("police-1"))
    forged.signature = bytes(64)

    codes = []
    for _ in range(5):
        with pytest.raises(grpc.RpcError) as info:
            police.Submit(forged, timeout=10)
        codes.append(info.value.code())
    assert codes == [grpc.StatusCode.UNAUTHENTICATED] * 5  # refused all the same
    assert len(_entries(net, "rejection")) == 3

    with pytest.raises(grpc.RpcError) as read:
        police.ReadAuditProven(pb.AuditProvenRequest(whole_log=False), timeout=10)
    assert read.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert read.value.details() == (
        "audit: more than 3 audited calls a minute; wait and read again"
    )
    assert _entries(net, "audit-read") == []  # an unlogged read is never served

    regulator = net.stub_as("regulator-1")  # another sender, its own budget
    regulator.ReadAuditProven(pb.AuditProvenRequest(whole_log=True), timeout=10)
    assert [e["sender"] for e in _entries(net, "audit-read")] == ["regulator-1"]

    clock.now += 20  # one token back: the next refusal is appended, with the count
    with pytest.raises(grpc.RpcError):
        police.Submit(forged, timeout=10)
    last = _entries(net, "rejection")[-1]
    assert last["peer"] == "police-1" and last["suppressed"] == 3
