"""Every member reads the audit entries that concern it, each proven under a checkpoint.

Through the real broker over mTLS: a bank sees the entries that name it and never one
that names only another member; its reads are themselves audited (AUDIT_READ_OWN); only
the regulator may read the whole log this way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from gateway.audit.merkle import leaf_hash
from gateway.audit.tlog_proof import verify_tlog_proof
from gateway.envelope.build import Draft
from gateway.localnet import Consortium
from nodes.actions.police import issue_action
from nodes.runtime import NodeContext
from tests.actions.seed import ACCOUNT, seed_accounts, spec
from tests.consortium import client, running
from tests.waiting import wait_for

NODES = ("police-1", "bank-a", "bank-b", "regulator-1")


@pytest.fixture(scope="module")
def net(backend_consortium: Consortium) -> Iterator[Consortium]:
    """On SQLite, then PostgreSQL (the broker's message table is read for each page)."""
    consortium = backend_consortium
    seed_accounts(consortium, "bank-b", {ACCOUNT: 1_000_000})
    with running(consortium, NODES):
        police = client(consortium, "police-1")
        try:
            for bank, case in (("bank-a", "C-A"), ("bank-b", "C-B"), ("bank-b", "C-B2")):
                police.client.submit(
                    Draft(
                        sender="police-1",
                        recipients=[bank],
                        kind="PING",
                        payload=b"{}",
                        case_ref=case,
                    )
                )
            issue_action(police, spec(recipient="bank-b", case_ref="C-B-HOLD"))
            # The bank's receipt moves the request on: lifecycle entries name only its id.
            wait_for(
                lambda: any(e.get("type") == "lifecycle" for _, e in whole_log(consortium)),
                timeout=30,
            )
        finally:
            police.client.close()
        yield consortium


@pytest.fixture
def bank_a(net: Consortium) -> Iterator[NodeContext]:
    ctx = client(net, "bank-a")
    yield ctx
    ctx.client.close()


def names(entry: dict[str, Any]) -> set[str]:
    """Sender, recipients and peer, read straight off the entry's fields."""
    found = {entry.get("sender"), entry.get("recipient"), entry.get("peer")}
    found.update(entry.get("recipients", []))
    return {n for n in found if n}


def whole_log(net: Consortium) -> list[tuple[int, dict[str, Any]]]:
    regulator = client(net, "regulator-1")
    try:
        return [(e.position, json.loads(e.leaf)) for e in regulator.client.read_audit()]
    finally:
        regulator.client.close()


def test_a_bank_sees_its_own_entries_and_no_other_members(
    net: Consortium, bank_a: NodeContext
) -> None:
    own = list(bank_a.client.read_audit_proven())
    assert own, "bank-a was pinged, so entries name it"
    entries = {e.index: json.loads(e.leaf) for e in own}
    assert all("bank-a" in names(entry) for entry in entries.values())
    assert not any(entry.get("case_ref") in ("C-B", "C-B2") for entry in entries.values())
    # Every entry of the whole log that names bank-a (below the page's checkpoint) is there.
    size = max(e.index for e in own) + 1
    expected = {i for i, entry in whole_log(net) if i < size and "bank-a" in names(entry)}
    assert set(entries) == expected
    assert {e.get("case_ref") for e in entries.values()} >= {"C-A"}


def test_events_of_a_message_reach_its_parties_only(net: Consortium, bank_a: NodeContext) -> None:
    log = whole_log(net)
    [hold] = [e["message_id"] for _, e in log if e.get("kind") == "STOP_PAYMENT" and "sender" in e]
    events = {i for i, e in log if e.get("message_id") == hold and not names(e)}
    assert events, "the hold's lifecycle entries name only its message id"
    assert not events & {e.index for e in bank_a.client.read_audit_proven()}
    bank_b = client(net, "bank-b")
    try:
        seen = {e.index for e in bank_b.client.read_audit_proven()}
    finally:
        bank_b.client.close()
    assert events <= seen


def test_each_entry_carries_a_proof_anyone_can_check(net: Consortium, bank_a: NodeContext) -> None:
    verifier = bank_a.client.broker_note_verifier()
    for entry in bank_a.client.read_audit_proven():
        verified = verify_tlog_proof(entry.tlog_proof(), leaf_hash(entry.leaf), [verifier])
        assert verified.proof.index == entry.index


def test_paging_gives_the_same_entries(bank_a: NodeContext) -> None:
    big = [e.index for e in bank_a.client.read_audit_proven()]
    small = list(bank_a.client.read_audit_proven(page=1))
    assert [e.index for e in small[: len(big)]] == big
    # Later entries are the first read's own audit entry: reads are logged.
    later = [json.loads(e.leaf) for e in small[len(big) :]]
    assert len(later) == 1 and later[0]["type"] == "audit-read"


def test_a_banks_reads_are_audited(net: Consortium, bank_a: NodeContext) -> None:
    list(bank_a.client.read_audit_proven())
    reads = [
        e
        for _, e in whole_log(net)
        if e.get("type") == "audit-read" and e.get("sender") == "bank-a"
    ]
    assert reads and all(e["kind"] == "AUDIT_READ_OWN" for e in reads)
    assert reads[-1]["decision"] == "ALLOW" and reads[-1]["policy_ids"] == ["member-audit-read-own"]


def test_a_bank_may_not_read_the_whole_log(net: Consortium, bank_a: NodeContext) -> None:
    with pytest.raises(grpc.RpcError) as info:
        list(bank_a.client.read_audit_proven(whole_log=True))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    denied = [
        e
        for _, e in whole_log(net)
        if e.get("sender") == "bank-a" and e.get("kind") == "AUDIT_READ" and e["decision"] == "DENY"
    ]
    assert denied


def test_the_regulator_reads_the_whole_log_with_proofs(net: Consortium) -> None:
    regulator = client(net, "regulator-1")
    try:
        proven = list(regulator.client.read_audit_proven(whole_log=True))
    finally:
        regulator.client.close()
    assert [e.index for e in proven] == list(range(len(proven)))
    cases = {json.loads(e.leaf).get("case_ref") for e in proven}
    assert {"C-A", "C-B", "C-B2"} <= cases


@pytest.mark.parametrize("kind", ["AUDIT_READ_OWN", "AUDIT_READ", "WITNESS_COSIGN"])
def test_an_audit_read_sent_as_a_message_is_refused_and_stores_nothing(
    net: Consortium, bank_a: NodeContext, kind: str
) -> None:
    draft = Draft(sender="bank-a", recipients=["broker"], kind=kind, payload=b"x" * 1000)
    with pytest.raises(grpc.RpcError) as info:
        bank_a.client.submit(draft)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "is a call to the broker" in (info.value.details() or "")
    refused = [e for _, e in whole_log(net) if e.get("message_id") == draft.message_id]
    assert [e["type"] for e in refused] == ["rejection"]
