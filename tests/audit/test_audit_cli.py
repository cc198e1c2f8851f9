"""The compliance commands against a live broker and against a copy of its database."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from gateway.audit.checkpoint import parse_checkpoint
from gateway.audit.cosignature import CosignatureV1Verifier
from gateway.audit.log import canonical_json
from gateway.audit.merkle import leaf_hash
from gateway.audit.note import Ed25519Verifier, NoteError, open_note
from gateway.audit.tlog_proof import verify_tlog_proof
from gateway.cli import app
from gateway.envelope.build import Draft
from gateway.localnet import Consortium
from tests.consortium import client, running

runner = CliRunner()


@pytest.fixture(scope="module")
def net(consortium: Consortium) -> Iterator[Consortium]:
    with running(consortium, ("police-1", "bank-a", "regulator-1")):
        ctx = client(consortium, "police-1")
        try:
            for case in ("C-1", "C-2", "C-1"):
                ctx.client.submit(
                    Draft(
                        sender="police-1",
                        recipients=["bank-a"],
                        kind="PING",
                        payload=b"{}",
                        case_ref=case,
                    )
                )
        finally:
            ctx.client.close()
        yield consortium


def db_args(c: Consortium) -> list[str]:
    return ["--database", c.broker_database, "--pki", str(c.root / "pki")]


def test_verify_a_database_copy(net: Consortium) -> None:
    result = runner.invoke(app, ["audit", "verify", *db_args(net)])
    assert result.exit_code == 0, result.output
    assert "log verified" in result.output


def test_regulator_verifies_the_live_log_through_the_broker(net: Consortium) -> None:
    config = str(net.config_path("regulator-1"))
    result = runner.invoke(app, ["audit", "verify", "--config", config])
    assert result.exit_code == 0, result.output
    assert "log verified" in result.output


def test_police_may_not_read_the_log(net: Consortium) -> None:
    config = str(net.config_path("police-1"))
    result = runner.invoke(app, ["audit", "verify", "--config", config])
    assert result.exit_code == 1
    assert "PERMISSION_DENIED" in result.output
    assert "Traceback" not in result.output


def test_search_by_case(net: Consortium) -> None:
    result = runner.invoke(app, ["audit", "search", "--case", "C-1", *db_args(net)])
    assert result.exit_code == 0, result.output
    # The two C-1 PINGs and the bank's two PONGs, which carry the case they answer.
    assert "4 entries shown" in result.output


def test_export_jsonl_gives_exact_entries(net: Consortium) -> None:
    result = runner.invoke(app, ["audit", "export", "--kind", "PING", *db_args(net)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 3
    assert {line["case_ref"] for line in lines} == {"C-1", "C-2"}


def test_export_csv(net: Consortium) -> None:
    result = runner.invoke(
        app, ["audit", "export", "--format", "csv", "--decision", "ALLOW", *db_args(net)]
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["kind"] for r in rows if r["type"] == "decision"} == {"PING", "PONG"}
    assert all(r["decision"] == "ALLOW" for r in rows)
    # Reads of the log are audited too (the regulator's, allowed).
    assert {r["type"] for r in rows} <= {"decision", "audit-read"}


def test_prove_prints_a_tlog_proof_that_verifies(net: Consortium) -> None:
    result = runner.invoke(app, ["audit", "prove", "1", "--database", net.broker_database])
    assert result.exit_code == 0, result.output
    export = runner.invoke(app, ["audit", "export", *db_args(net)])
    entry = json.loads(export.stdout.splitlines()[1])
    assert entry.pop("index") == 1
    broker = net.pki.directory().get("broker")
    assert broker is not None
    verifier = Ed25519Verifier(f"{net.name}/gateway-audit", broker.sign_key)
    verified = verify_tlog_proof(result.stdout, leaf_hash(canonical_json(entry)), [verifier])
    assert verified.proof.index == 1


def test_a_node_cosigns_the_checkpoint_as_a_witness(net: Consortium) -> None:
    result = runner.invoke(app, ["audit", "witness", "--config", str(net.config_path("bank-a"))])
    assert result.exit_code == 0, result.output
    directory = net.pki.directory()
    broker, bank = directory.get("broker"), directory.get("bank-a")
    assert broker is not None and bank is not None
    log_key = Ed25519Verifier(f"{net.name}/gateway-audit", broker.sign_key)
    witness_key = CosignatureV1Verifier(f"{net.name}/witness/bank-a", bank.sign_key)
    text, signatures = open_note(result.stdout, [log_key, witness_key])
    assert {s.name for s in signatures} == {log_key.name, witness_key.name}
    assert parse_checkpoint(text).size > 0
    # Another member's key does not verify the bank's cosignature.
    police = directory.get("police-1")
    assert police is not None
    impostor = CosignatureV1Verifier(f"{net.name}/witness/bank-a", police.sign_key)
    with pytest.raises(NoteError):
        open_note(result.stdout, [impostor])
