"""Nodes detect a broker that rewrites its log: receipts must stay consistent.

The broker is stopped, an early entry is rewritten in its database with its hash
recomputed (what an operator with database access could do), and the broker restarted.
The next receipt's checkpoint cannot be proven consistent with the one the police node
kept from before, and the police node refuses it. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from gateway.audit.log import canonical_json
from gateway.audit.merkle import leaf_hash
from gateway.audit.store import AuditEntryRow
from gateway.envelope.build import Draft
from gateway.localnet import Consortium
from nodes.broker_client import LogIntegrityError
from tests.consortium import client, running
from tests.postgres import Databases, opened


def ping() -> Draft:
    return Draft(sender="police-1", recipients=["bank-a"], kind="PING", payload=b"{}")


def rewrite_first_entry(consortium: Consortium) -> None:
    """Entry 0 made a denial, its hash recomputed: what a stopped broker's operator can do."""
    forged = canonical_json({"type": "decision", "kind": "PING", "decision": "DENY"})
    with opened(consortium.broker_database) as broker, Session(broker) as s:
        s.execute(
            update(AuditEntryRow)
            .where(AuditEntryRow.idx == 0)
            .values(leaf=forged, leaf_hash=leaf_hash(forged))
        )
        s.commit()


def test_rewritten_history_is_detected_at_the_next_receipt(
    tmp_path: Path, databases: Databases
) -> None:
    consortium = Consortium.create(tmp_path, database_urls=databases.for_consortium())
    with running(consortium, ("bank-a",)):
        ctx = client(consortium, "police-1")
        try:
            ctx.client.submit(ping())
            ctx.client.submit(ping())
        finally:
            ctx.client.close()

    rewrite_first_entry(consortium)

    with running(consortium, ("bank-a",)):
        ctx = client(consortium, "police-1")
        try:
            with pytest.raises(LogIntegrityError, match="not consistent"):
                ctx.client.submit(ping())
        finally:
            ctx.client.close()


def test_an_honest_restart_keeps_receipts_consistent(tmp_path: Path, databases: Databases) -> None:
    consortium = Consortium.create(tmp_path, database_urls=databases.for_consortium())
    for _ in range(2):
        with running(consortium, ("bank-a",)):
            ctx = client(consortium, "police-1")
            try:
                result = ctx.client.submit(ping())
            finally:
                ctx.client.close()
            assert result.decision == "ALLOW"


def test_the_receipts_own_consistency_proof_is_checked_and_spares_a_call(
    tmp_path: Path, databases: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node holding a checkpoint says its size with each Submit; the receipt brings the
    proof from it, which the node checks instead of asking GetConsistency. A broker
    that rewrote its log, restarted under the same running node client, sends a proof
    from its rewritten tree: it fails, and no second opinion is asked for."""
    consortium = Consortium.create(tmp_path, database_urls=databases.for_consortium())
    calls: list[str] = []
    with running(consortium, ("bank-a",)):
        ctx = client(consortium, "police-1")
        real = ctx.client.brokers.call

        def counted(method: str, *args: object) -> object:
            calls.append(method)
            return real(method, *args)  # type: ignore[arg-type]

        monkeypatch.setattr(ctx.client.brokers, "call", counted)
        for _ in range(4):
            assert ctx.client.submit(ping()).decision == "ALLOW"
    try:
        assert calls.count("Submit") == 4
        # The first receipt meets the checkpoint the node kept at its start, if any;
        # every later one brought its own proof.
        assert calls.count("GetConsistency") <= 1
        rewrite_first_entry(consortium)
        calls.clear()
        with (
            running(consortium, ("bank-a",)),
            pytest.raises(LogIntegrityError, match="not consistent"),
        ):
            ctx.client.submit(ping())
        assert "GetConsistency" not in calls
    finally:
        ctx.client.close()
