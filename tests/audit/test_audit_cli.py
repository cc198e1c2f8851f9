"""The compliance commands against a live broker and against a copy of its database."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from gateway.audit.checkpoint import Checkpoint, format_checkpoint, parse_checkpoint
from gateway.audit.cosignature import CosignatureV1Verifier
from gateway.audit.log import canonical_json
from gateway.audit.merkle import leaf_hash
from gateway.audit.note import Ed25519Signer, Ed25519Verifier, NoteError, open_note, sign_note
from gateway.audit.tlog_proof import verify_tlog_proof
from gateway.cli import app
from gateway.envelope.build import Draft
from gateway.localnet import Consortium
from nodes.journal import CheckpointSeenRow
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


def db_args(c: Consortium, database: Path | str | None = None) -> list[str]:
    return ["--database", str(database or c.broker_database), "--pki", str(c.root / "pki")]


def said(output: str) -> str:
    """The output with line wrapping undone, to match a sentence."""
    return " ".join(output.split())


def copy_database(c: Consortium, to: Path) -> Path:
    """A consistent copy of the live broker database, as an auditor would be given."""
    with sqlite3.connect(c.broker_database) as live, sqlite3.connect(to) as copy:
        live.backup(copy)
    live.close()
    copy.close()
    return to


def tamper(database: Path, *statements: str) -> None:
    with sqlite3.connect(database) as db:
        for statement in statements:
            db.execute(statement)
    db.close()


def broker_signer(c: Consortium) -> Ed25519Signer:
    """The broker's log key, as a broker that rewrites its log would use it."""
    return Ed25519Signer(f"{c.name}/gateway-audit", c.pki.bundle("broker").keys().signing)


def submit_ping(c: Consortium) -> None:
    ctx = client(c, "police-1")
    try:
        ctx.client.submit(
            Draft(sender="police-1", recipients=["bank-a"], kind="PING", payload=b"{}")
        )
    finally:
        ctx.client.close()


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
    assert "error: refused by policy: " in result.output
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
    # Times in ISO 8601 UTC, not epoch milliseconds: the same instant as the entry's at_ms.
    exact = runner.invoke(app, ["audit", "export", "--decision", "ALLOW", *db_args(net)])
    at_ms = {e["index"]: e["at_ms"] for e in map(json.loads, exact.stdout.splitlines())}
    for r in rows:
        assert r["at"].endswith("Z") and "at_ms" not in r
        moment = datetime.fromisoformat(r["at"].replace("Z", "+00:00"))
        assert round(moment.timestamp() * 1000) == at_ms[int(r["index"])]


def assert_proves_entry_1(net: Consortium, proof: str) -> None:
    """`proof` verifies entry 1, as exported, under the broker's key from the directory."""
    export = runner.invoke(app, ["audit", "export", *db_args(net)])
    entry = json.loads(export.stdout.splitlines()[1])
    assert entry.pop("index") == 1
    broker = net.pki.directory().get("broker")
    assert broker is not None
    verifier = Ed25519Verifier(f"{net.name}/gateway-audit", broker.sign_key)
    verified = verify_tlog_proof(proof, leaf_hash(canonical_json(entry)), [verifier])
    assert verified.proof.index == 1


def test_prove_prints_a_tlog_proof_that_verifies(net: Consortium) -> None:
    result = runner.invoke(app, ["audit", "prove", "1", "--database", net.broker_database])
    assert result.exit_code == 0, result.output
    assert_proves_entry_1(net, result.stdout)


def test_prove_live_as_the_regulator_gives_a_proof_that_verifies(net: Consortium) -> None:
    """`audit prove --config` as the other audit commands: the live log, through the broker."""
    config = str(net.config_path("regulator-1"))
    result = runner.invoke(app, ["audit", "prove", "1", "--config", config])
    assert result.exit_code == 0, result.output
    assert_proves_entry_1(net, result.stdout)


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


def test_a_witness_submits_its_cosignature_and_the_broker_serves_it(net: Consortium) -> None:
    config = str(net.config_path("bank-a"))
    result = runner.invoke(app, ["audit", "witness", "--submit", "--config", config])
    assert result.exit_code == 0, result.output
    size = int(result.stdout.strip().removeprefix("cosigned checkpoint of size "))
    regulator = client(net, "regulator-1")
    try:
        entries = regulator.client.read_audit_proven(0, whole_log=True, page=1, cosigned=True)
        note = next(iter(entries)).checkpoint
    finally:
        regulator.client.close()
    bank = net.pki.directory().get("bank-a")
    assert bank is not None
    witness_key = CosignatureV1Verifier(f"{net.name}/witness/bank-a", bank.sign_key)
    text, [signature] = open_note(note, [witness_key])
    assert parse_checkpoint(text).size == size and signature.name == witness_key.name


@pytest.mark.parametrize("every", ["0", "-1", "nan"])
def test_witness_every_needs_a_positive_period(net: Consortium, every: str) -> None:
    config = str(net.config_path("bank-a"))
    result = runner.invoke(app, ["audit", "witness", "--every", every, "--config", config])
    assert result.exit_code != 0
    assert result.output.startswith("error: --every must be a positive number of seconds")


def test_witness_every_keeps_cosigning(net: Consortium) -> None:
    """The daemon mode, as its own process: two rounds cosigned, then stopped."""
    config = str(net.config_path("regulator-1"))
    argv = [
        sys.executable,
        "-m",
        "gateway",
        "audit",
        "witness",
        "--every",
        "0.2",
        "--config",
        config,
    ]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline() for _ in range(2)]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    sizes = [int(line.strip().removeprefix("cosigned checkpoint of size ")) for line in lines]
    assert sizes[0] < sizes[1], "each round's own audit entry grows the log"


# -- coverage, rollback and fork, offline and live ------------------------------------


def test_a_changed_entry_with_the_checkpoints_above_it_deleted_fails(
    net: Consortium, tmp_path: Path
) -> None:
    copy = copy_database(net, tmp_path / "copy.db")
    forged = canonical_json({"type": "decision", "at_ms": 1, "kind": "PING", "decision": "DENY"})
    tamper(
        copy,
        f"UPDATE audit_entries SET leaf = x'{forged.hex()}', "
        f"leaf_hash = x'{leaf_hash(forged).hex()}' WHERE idx = 2",
        "DELETE FROM checkpoints WHERE size > 2",
    )
    with sqlite3.connect(copy) as db:  # the remaining checkpoints still sign entries below
        (covered,) = db.execute("SELECT max(size) FROM checkpoints").fetchone()
    db.close()
    assert covered <= 2
    result = runner.invoke(app, ["audit", "verify", *db_args(net, copy)])
    assert result.exit_code == 1, result.output
    assert f"first entry not covered by a valid checkpoint {covered}" in said(result.output)
    assert "log verified" not in result.output


def test_a_copy_with_every_checkpoint_deleted_fails(net: Consortium, tmp_path: Path) -> None:
    copy = copy_database(net, tmp_path / "copy.db")
    tamper(copy, "DELETE FROM checkpoints")
    result = runner.invoke(app, ["audit", "verify", *db_args(net, copy)])
    assert result.exit_code == 1, result.output
    assert "0 checkpoints checked" in result.output
    assert "no valid signed checkpoint covers any of the log's" in said(result.output)


def test_a_saved_checkpoint_holds_the_log_it_came_from(net: Consortium, tmp_path: Path) -> None:
    saved = tmp_path / "seen.ckpt"
    result = runner.invoke(app, ["audit", "checkpoint", "--save", str(saved), *db_args(net)])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(net.broker_database) as db:
        (size,) = db.execute("SELECT max(size) FROM checkpoints").fetchone()
    db.close()
    assert parse_checkpoint(saved.read_text().split("\n\n")[0] + "\n").size >= size
    result = runner.invoke(
        app, ["audit", "verify", "--trusted-checkpoint", str(saved), *db_args(net)]
    )
    assert result.exit_code == 0, result.output
    assert "1 trusted checked" in said(result.output)
    assert "log verified" in result.output


def test_an_earlier_copy_is_a_rollback_against_a_later_saved_checkpoint(
    net: Consortium, tmp_path: Path
) -> None:
    earlier = copy_database(net, tmp_path / "earlier.db")
    submit_ping(net)
    later = tmp_path / "later.ckpt"
    saved = runner.invoke(app, ["audit", "checkpoint", "--save", str(later), *db_args(net)])
    assert saved.exit_code == 0, saved.output
    with sqlite3.connect(earlier) as db:
        (entries,) = db.execute("SELECT count(*) FROM audit_entries").fetchone()
    db.close()
    seen = int(later.read_text().splitlines()[1])
    assert seen > entries
    alone = runner.invoke(app, ["audit", "verify", *db_args(net, earlier)])
    assert alone.exit_code == 0, alone.output  # an earlier state is a valid log by itself
    result = runner.invoke(
        app, ["audit", "verify", "--trusted-checkpoint", str(later), *db_args(net, earlier)]
    )
    assert result.exit_code == 1, result.output
    assert (
        f"rollback: the log has {entries} entries but a trusted checkpoint ({later}) of "
        f"size {seen} was seen" in said(result.output)
    )


def test_a_fork_signed_with_the_broker_key_fails_against_a_saved_checkpoint(
    net: Consortium, tmp_path: Path
) -> None:
    saved = tmp_path / "seen.ckpt"
    assert (
        runner.invoke(app, ["audit", "checkpoint", "--save", str(saved), *db_args(net)]).exit_code
        == 0
    )
    seen = int(saved.read_text().splitlines()[1])
    # Same size, other root, signed with the broker's key: another history.
    other = Checkpoint(f"{net.name}/gateway-audit", seen, bytes(32))
    fork = tmp_path / "fork.ckpt"
    fork.write_bytes(sign_note(format_checkpoint(other), [broker_signer(net)]))
    result = runner.invoke(
        app, ["audit", "verify", "--trusted-checkpoint", str(fork), *db_args(net)]
    )
    assert result.exit_code == 1, result.output
    assert f"fork: the first {seen} entries are not the ones trusted checkpoint" in said(
        result.output
    )


def test_save_does_not_replace_a_file_without_force(net: Consortium, tmp_path: Path) -> None:
    saved = tmp_path / "seen.ckpt"
    saved.write_text("kept\n")
    result = runner.invoke(app, ["audit", "checkpoint", "--save", str(saved), *db_args(net)])
    assert result.exit_code == 1
    assert said(result.output).startswith("error:") and "--force" in result.output
    assert saved.read_text() == "kept\n"
    forced = ["audit", "checkpoint", "--save", str(saved), "--force", *db_args(net)]
    assert runner.invoke(app, forced).exit_code == 0
    assert saved.read_text().startswith(f"{net.name}/gateway-audit\n")


@pytest.mark.parametrize("content", ["garbage", "forged", "missing"])
def test_a_trusted_checkpoint_the_broker_did_not_sign_is_a_user_error(
    net: Consortium, tmp_path: Path, content: str
) -> None:
    path = tmp_path / "seen.ckpt"
    if content == "garbage":
        path.write_text("not a checkpoint\n")
    elif content == "forged":  # the log's name, but the bank's key
        bank = Ed25519Signer(f"{net.name}/gateway-audit", net.pki.bundle("bank-a").keys().signing)
        body = Checkpoint(f"{net.name}/gateway-audit", 1, bytes(32))
        path.write_bytes(sign_note(format_checkpoint(body), [bank]))
    result = runner.invoke(
        app, ["audit", "verify", "--trusted-checkpoint", str(path), *db_args(net)]
    )
    assert result.exit_code == 1
    assert said(result.output).startswith(f"error: --trusted-checkpoint {path}:")
    assert result.output.count("error:") == 1 and "Traceback" not in result.output


def test_regulator_holds_the_live_log_to_a_saved_checkpoint(
    net: Consortium, tmp_path: Path
) -> None:
    config = str(net.config_path("regulator-1"))
    saved = tmp_path / "seen.ckpt"
    result = runner.invoke(app, ["audit", "checkpoint", "--save", str(saved), "--config", config])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["audit", "verify", "--config", config, "--trusted-checkpoint", str(saved)]
    )
    assert result.exit_code == 0, result.output
    assert "log verified" in result.output


def test_regulator_reports_a_live_rollback(net: Consortium, tmp_path: Path) -> None:
    # A checkpoint the broker signed for a larger log than it now serves.
    config = str(net.config_path("regulator-1"))
    other = Checkpoint(f"{net.name}/gateway-audit", 10**6, bytes(32))
    seen = tmp_path / "seen.ckpt"
    seen.write_bytes(sign_note(format_checkpoint(other), [broker_signer(net)]))
    result = runner.invoke(
        app, ["audit", "verify", "--config", config, "--trusted-checkpoint", str(seen)]
    )
    assert result.exit_code == 1, result.output
    assert "rollback: the log has" in said(result.output)
    assert f"a trusted checkpoint ({seen}) of size {10**6} was seen" in said(result.output)


def test_regulator_refuses_a_live_log_smaller_than_one_it_saw_before(
    net: Consortium, tmp_path: Path
) -> None:
    # The node once saw a broker-signed checkpoint of a larger log than the broker serves.
    other = Checkpoint(f"{net.name}/gateway-audit", 10**6, bytes(32))
    note = sign_note(format_checkpoint(other), [broker_signer(net)]).decode()
    regulator = client(net, "regulator-1")
    try:
        with Session(regulator.engine) as s:
            s.add(CheckpointSeenRow(size=other.size, note=note, seen_at_ms=0))
            s.commit()
        config = str(net.config_path("regulator-1"))
        result = runner.invoke(app, ["audit", "verify", "--config", config])
    finally:
        with Session(regulator.engine) as s:
            s.execute(delete(CheckpointSeenRow).where(CheckpointSeenRow.size == other.size))
            s.commit()
        regulator.client.close()
    assert result.exit_code == 1, result.output
    assert "log verified" not in result.output and "Traceback" not in result.output
    assert result.output.count("error:") == 1
