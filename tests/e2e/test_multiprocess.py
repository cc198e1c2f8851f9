"""The walking skeleton end to end: broker and three nodes as separate processes.

A signed PING from the police node goes through the broker to a bank and a carrier;
each answers with a PONG signed by its own key, which the police side verifies
against the signed directory, and every step is in the broker's audit log.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from gateway.audit.store import AuditEntryRow
from gateway.envelope.build import Draft
from gateway.envelope.pae import pae
from gateway.localnet import Consortium, Processes, gateway_command, processes
from gateway.v1 import gateway_pb2 as pb
from nodes.journal import InboundRow
from tests.consortium import client

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def started(consortium: Consortium) -> Iterator[Processes]:
    with processes(consortium) as procs:
        procs.start_broker()
        for node_id in ("police-1", "bank-a", "carrier-1"):
            procs.start_node(node_id)
        yield procs


def test_police_ping_reaches_bank_and_signed_answer_returns(
    started: Processes, consortium: Consortium
) -> None:
    ctx = client(consortium, "police-1")
    try:
        draft = Draft(
            sender="police-1", recipients=["bank-a"], kind="PING", payload=b"{}", purpose="e2e"
        )
        result = ctx.client.submit(draft)
        directory = ctx.client.directory()
    finally:
        ctx.client.close()

    assert result.decision == "ALLOW"
    assert result.undelivered == []
    [(header, payload)] = result.answers
    assert header.sender == "bank-a" and header.kind == "PONG"
    assert header.reply_to == draft.message_id
    assert json.loads(payload) == {"node": "bank-a", "role": "bank"}

    # The bank received it once, and the broker audited the request and the answer.
    with Session(create_engine(f"sqlite:///{consortium.root / 'bank-a.db'}")) as s:
        inbound = s.scalars(select(InboundRow).where(InboundRow.message_id == draft.message_id))
        assert len(inbound.all()) == 1
    with Session(create_engine(f"sqlite:///{consortium.broker_database}")) as s:
        leaves = [json.loads(row.leaf) for row in s.scalars(select(AuditEntryRow)).all()]
    decisions = {(e.get("kind"), e.get("sender"), e.get("decision")) for e in leaves}
    assert ("PING", "police-1", "ALLOW") in decisions
    assert ("PONG", "bank-a", "ALLOW") in decisions
    assert directory.get("bank-a") is not None


def test_answer_signature_checks_with_the_directory_key(
    started: Processes, consortium: Consortium
) -> None:
    """Verify the bank's PONG with `cryptography` directly, not through the project's verifier."""
    ctx = client(consortium, "police-1")
    try:
        draft = Draft(sender="police-1", recipients=["bank-a"], kind="PING", payload=b"{}")
        envelope = draft.sign(ctx.client.keys.signing)
        reply: pb.SubmitReply = ctx.client.brokers.call("Submit", envelope, 10)
    finally:
        ctx.client.close()
    [answer] = reply.responses
    header = pb.Header.FromString(answer.header)
    bank = consortium.pki.directory().get("bank-a")
    assert bank is not None
    Ed25519PublicKey.from_public_bytes(bank.sign_key).verify(
        answer.signature, pae(header.payload_type, answer.header)
    )


def test_cli_ping_fans_out_to_bank_and_carrier(
    started: Processes, consortium: Consortium, tmp_path: Path
) -> None:
    done = subprocess.run(
        gateway_command(
            "ping",
            "--config",
            str(consortium.config_path("police-1")),
            "--to",
            "bank-a",
            "--to",
            "carrier-1",
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert '"node": "bank-a"' in done.stdout
    assert '"node": "carrier-1"' in done.stdout
    assert "no answer" not in done.stdout
