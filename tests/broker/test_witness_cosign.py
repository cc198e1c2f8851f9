"""Witnesses hand the broker their cosignatures; the broker keeps and serves only good ones.

Through the real broker over mTLS, on SQLite and PostgreSQL. Cosignatures are checked
here with verifiers built straight from the signed directory's keys (c2sp.org
tlog-cosignature), not with the broker's or the client's own checks.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from gateway.audit.checkpoint import Checkpoint, format_checkpoint, parse_checkpoint
from gateway.audit.cosignature import (
    CosignatureV1Signer,
    CosignatureV1Verifier,
    cosign_checkpoint,
)
from gateway.audit.note import (
    Ed25519Signer,
    Ed25519Verifier,
    NoteSignature,
    open_note,
    parse_note,
    sign_note,
)
from gateway.envelope.build import Draft
from gateway.localnet import Consortium
from gateway.v1 import gateway_pb2 as pb
from nodes.broker_client import LogIntegrityError
from nodes.runtime import NodeContext
from nodes.witness import cosign_note, submit_latest
from tests.consortium import client, running

NODES = ("police-1", "bank-a", "regulator-1")


@pytest.fixture(scope="module")
def net(backend_consortium: Consortium) -> Iterator[Consortium]:
    with running(backend_consortium, NODES):
        police = client(backend_consortium, "police-1")
        try:
            police.client.submit(
                Draft(sender="police-1", recipients=["bank-a"], kind="PING", payload=b"{}")
            )
        finally:
            police.client.close()
        yield backend_consortium


@pytest.fixture
def bank_a(net: Consortium) -> Iterator[NodeContext]:
    ctx = client(net, "bank-a")
    yield ctx
    ctx.client.close()


@pytest.fixture
def regulator(net: Consortium) -> Iterator[NodeContext]:
    ctx = client(net, "regulator-1")
    yield ctx
    ctx.client.close()


def keys(net: Consortium) -> tuple[Ed25519Verifier, CosignatureV1Verifier, CosignatureV1Verifier]:
    """The log key and the two witnesses' keys, from the signed directory."""
    directory = net.pki.directory()
    broker, bank, regulator = (directory.get(n) for n in ("broker", "bank-a", "regulator-1"))
    assert broker is not None and bank is not None and regulator is not None
    return (
        Ed25519Verifier(f"{net.name}/gateway-audit", broker.sign_key),
        CosignatureV1Verifier(f"{net.name}/witness/bank-a", bank.sign_key),
        CosignatureV1Verifier(f"{net.name}/witness/regulator-1", regulator.sign_key),
    )


def served_cosigned(regulator: NodeContext) -> str:
    """The checkpoint the broker proves entry 0 under when asked for a cosigned one."""
    entries = regulator.client.read_audit_proven(0, whole_log=True, page=1, cosigned=True)
    return next(iter(entries)).checkpoint


def audit_entries(regulator: NodeContext) -> list[dict[str, Any]]:
    return [json.loads(e.leaf) for e in regulator.client.read_audit()]


def test_a_submitted_cosignature_is_served_with_its_checkpoint(
    net: Consortium, bank_a: NodeContext, regulator: NodeContext
) -> None:
    size = submit_latest(bank_a.client)
    submit_regulator = submit_latest(regulator.client)
    assert submit_regulator >= size
    note = served_cosigned(regulator)
    log_key, bank_key, regulator_key = keys(net)
    text, signatures = open_note(note, [log_key, bank_key, regulator_key])
    assert parse_checkpoint(text).size == submit_regulator
    assert {s.name for s in signatures} >= {log_key.name, regulator_key.name}
    assert [c.node_id for c in regulator.client.cosigners(note)][-1] == "regulator-1"
    stored = [e for e in audit_entries(regulator) if e.get("type") == "witness-cosign"]
    assert {(e["sender"], e["size"]) for e in stored if e["outcome"] == "stored"} >= {
        ("bank-a", size),
        ("regulator-1", submit_regulator),
    }
    assert all(e["kind"] == "WITNESS_COSIGN" and e["decision"] == "ALLOW" for e in stored)


def test_the_latest_checkpoint_carries_only_its_own_cosignatures(
    net: Consortium, bank_a: NodeContext, regulator: NodeContext
) -> None:
    submit_latest(bank_a.client)
    reply = regulator.client.brokers.call("GetCheckpoint", pb.CheckpointRequest(), 10)
    log_key, bank_key, regulator_key = keys(net)
    # Every witness line on the served note verifies for that note's text, or open_note raises.
    text, _ = open_note(reply.checkpoint, [log_key, bank_key, regulator_key])
    assert parse_checkpoint(text).size > 0


def forged_lines(bank_a: NodeContext, net: Consortium, note: str) -> list[str]:
    """Cosignature lines for `note` that must not pass as bank-a's."""
    good = cosign_note(bank_a.client, note)
    name, blob = good[len("— ") : -1].split(" ")
    raw = bytearray(base64.b64decode(blob))
    raw[-1] ^= 1
    flipped = f"— {name} {base64.b64encode(bytes(raw)).decode()}\n"
    other_key = CosignatureV1Signer.generate(name)  # right name, key not in the directory
    text = parse_note(note).text
    wrong_key = NoteSignature(name, other_key.key_id, other_key.sign(text.encode())).line()
    return [flipped, wrong_key]


def test_a_forged_cosignature_is_refused_and_never_served(
    net: Consortium, bank_a: NodeContext, regulator: NodeContext
) -> None:
    note = bank_a.client.latest_checkpoint()
    for line in forged_lines(bank_a, net, note):
        with pytest.raises(grpc.RpcError) as info:
            bank_a.client.submit_cosignature(note, line)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "does not verify under witness key" in (info.value.details() or "")
    size = parse_checkpoint(parse_note(note).text).size
    entries = [e for e in audit_entries(regulator) if e.get("type") == "witness-cosign"]
    refused = [e for e in entries if e["sender"] == "bank-a" and e["outcome"] == "refused"]
    assert len(refused) >= 2
    assert ("bank-a", size) not in {
        (e["sender"], e.get("size")) for e in entries if e["outcome"] == "stored"
    }
    # Whatever the broker serves as cosigned carries no bank-a line that fails to verify.
    _, bank_key, _ = keys(net)
    served = served_cosigned(regulator)
    open_note(served, [keys(net)[0], bank_key])


def test_a_checkpoint_the_broker_never_signed_is_refused(
    net: Consortium, bank_a: NodeContext
) -> None:
    note = bank_a.client.latest_checkpoint()
    checkpoint = parse_checkpoint(parse_note(note).text)
    fake_log = Ed25519Signer.generate(f"{net.name}/gateway-audit")
    other_root = bytes(a ^ 0xFF for a in checkpoint.root_hash)
    forged_text = format_checkpoint(Checkpoint(checkpoint.origin, checkpoint.size, other_root))
    forged = sign_note(forged_text, [fake_log]).decode()
    signer = CosignatureV1Signer(f"{net.name}/witness/bank-a", bank_a.client.keys.signing)
    line = cosign_checkpoint(forged, signer, [fake_log.verifier()])
    with pytest.raises(grpc.RpcError) as info:
        bank_a.client.submit_cosignature(forged, line)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "signed no such checkpoint" in (info.value.details() or "")


def test_the_client_refuses_a_note_with_a_broken_witness_line(
    net: Consortium, bank_a: NodeContext
) -> None:
    note = bank_a.client.latest_checkpoint()
    [flipped, _] = forged_lines(bank_a, net, note)
    with pytest.raises(LogIntegrityError):
        bank_a.client._open_checkpoint(note + flipped)
    # A line from a key the directory does not list is ignored, as the note spec says.
    [_, unknown] = forged_lines(bank_a, net, note)
    assert bank_a.client._open_checkpoint(note + unknown).size > 0
    assert bank_a.client.cosigners(note + unknown) == []
