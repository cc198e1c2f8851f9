"""Key rotation through the real broker: old keys stop working, new keys work end to end.

One consortium serves for the module; each test rotates a different kind of key of a
different member, captures what the old key holder still has, and checks that the
broker and the recipient nodes refuse it once they see the new directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from gateway.broker.delivery import DeliveryError
from gateway.crypto.oprf import generate_key_pair
from gateway.envelope.build import Draft
from gateway.identifiers import IdentifierKind, normalise
from gateway.pki.keys import write_secret
from gateway.v1 import gateway_pb2 as pb
from nodes.actions.orders import request_payload
from nodes.actions.police import ActionSpec, issue_action
from nodes.matching import query_responders
from tests.actions.seed import seed_accounts
from tests.consortium import Consortium, request_state
from tests.security.net import (
    RECORDS,
    Net,
    build_index,
    copy_tls,
    journalled,
    ping,
    serving,
    submit_error,
)
from tests.waiting import wait_for

ACCOUNT = "6222020200112233445"
CASE = {"case_ref": "C-2026-ROT", "legal_basis": "Anti-Telecom-Fraud Law art. 11"}


@pytest.fixture(scope="module")
def net(backend_consortium: Consortium) -> Iterator[Net]:
    """Broker and nodes storing on the module's backend (SQLite, then PostgreSQL)."""
    seed_accounts(backend_consortium, "bank-a", {ACCOUNT: 1_000_000})
    build_index(backend_consortium, "bank-b")
    with serving(backend_consortium, ("police-1", "bank-a", "bank-b")) as network:
        yield network


def test_old_signing_key_is_refused_by_broker_and_recipient(net: Net) -> None:
    pki = net.consortium.pki
    old_key = net.signing_key("police-1")
    before = pki.directory().get("police-1")
    assert before is not None
    assert net.stub_as("police-1").Submit(ping().sign(old_key), timeout=10).decision == "ALLOW"

    rotation = pki.rotate("police-1", signing=True)
    assert rotation.rotated == ("signing",)
    assert rotation.key_version == before.key_version + 1
    assert net.reload_broker().serial == rotation.serial

    # The broker refuses the old key at once, even over police-1's own (unchanged) mTLS.
    err = submit_error(net.stub_as("police-1"), ping().sign(old_key))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert err.details().startswith("signature:")

    # A broker that skipped the check: the bank refuses too, once it has refetched.
    net.refetch("bank-a")
    stale = ping().sign(old_key)
    with pytest.raises(DeliveryError, match="UNAUTHENTICATED signature:"):
        net.as_broker("bank-a", stale)
    assert journalled(net.consortium, "bank-a", pb.Header.FromString(stale.header).message_id) == 0

    # The new key works end to end: signed, routed, answered, the answer verified.
    net.restart("police-1")
    police = net.client("police-1")
    result = police.client.submit(ping())
    assert result.decision == "ALLOW"
    assert [(h.sender, h.kind) for h, _ in result.answers] == [("bank-a", "PONG")]


def test_payload_sealed_to_old_sealing_key_is_refused_and_must_be_resent(net: Net) -> None:
    pki = net.consortium.pki
    old_member = pki.directory().get("bank-a")
    assert old_member is not None
    rotation = pki.rotate("bank-a", sealing=True)
    new_member = pki.directory().get("bank-a")
    assert new_member is not None and new_member.seal_key != old_member.seal_key
    assert new_member.sign_key == old_member.sign_key  # only the sealing key changed
    assert net.reload_broker().serial == rotation.serial
    net.restart("bank-a")
    net.refetch("police-1")
    police = net.client("police-1")

    # A sender that still holds the old directory seals to the old key. The broker cannot
    # tell (it cannot open sealed payloads) and acknowledges; the bank cannot open it.
    stale = Draft(
        sender="police-1",
        recipients=["bank-a"],
        kind="FREEZE",
        payload=request_payload(IdentifierKind.BANK_ACCOUNT, ACCOUNT),
        seal_to=old_member.seal_key,
        terms=pb.ActionTerms(
            action="FREEZE",
            amount_minor=1_000,
            duration_hours=24,
            issuing_officer="officer-7",
            approving_officer="chief-2",
        ),
        **CASE,
    )
    assert police.client.submit(stale).decision == "ALLOW"
    wait_for(lambda: police.client.status(stale.message_id).state == "failed")
    status = police.client.status(stale.message_id)
    details = [e.detail for e in status.events if e.state == "failed:bank-a"]
    assert details and "INVALID_ARGUMENT seal:" in details[0]
    assert journalled(net.consortium, "bank-a", stale.message_id) == 0

    # Issued again, sealed to the new key from the signed directory: executed.
    request = issue_action(
        police,
        ActionSpec(
            recipient="bank-a",
            action="FREEZE",
            issuing_officer="officer-7",
            approving_officer="chief-2",
            identifier_kind="bank_account",
            identifier=ACCOUNT,
            amount_minor=1_000,
            duration_hours=24,
            **CASE,
        ),
    )
    wait_for(lambda: request_state(police, request.message_id) == "executed")


def test_old_tls_certificate_is_refused_by_fingerprint(net: Net, tmp_path: Path) -> None:
    pki = net.consortium.pki
    old_tls = copy_tls(net.tls("bank-b"), tmp_path / "old")
    key = net.signing_key("bank-b")
    assert net.stub(old_tls).Submit(ping("bank-b").sign(key), timeout=10).decision == "ALLOW"

    rotation = pki.rotate("bank-b", tls=True)
    assert rotation.rotated == ("tls",)
    net.reload_broker()

    # The old certificate still chains to the consortium CA, but it is not the one listed.
    err = submit_error(net.stub(old_tls), ping("bank-b").sign(key))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert err.details() == (
        "identity: certificate is not the one the directory lists for 'bank-b'"
    )
    with pytest.raises(grpc.RpcError) as info:
        net.stub(old_tls).GetDirectory(pb.DirectoryRequest(), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED

    # The new certificate (and the unchanged signing key) work.
    reply = net.stub_as("bank-b").Submit(ping("bank-b").sign(key), timeout=10)
    assert reply.decision == "ALLOW"
    net.restart("bank-b")


def test_old_broker_certificate_is_refused_by_nodes(net: Net, tmp_path: Path) -> None:
    pki = net.consortium.pki
    old_tls = copy_tls(net.tls("broker"), tmp_path / "old-broker")
    rotation = pki.rotate("broker")
    assert rotation.rotated == ("sealing", "tls")  # never the log-signing key
    net.restart_broker()
    net.refetch()

    with pytest.raises(DeliveryError, match="UNAUTHENTICATED identity: certificate is not"):
        net.as_broker("bank-a", ping().sign(net.signing_key("police-1")), tls=old_tls)

    # The restarted broker, with its new certificate, delivers and relays answers.
    reply = net.stub_as("police-1").Submit(ping().sign(net.signing_key("police-1")), timeout=10)
    assert [pb.Header.FromString(r.header).sender for r in reply.responses] == ["bank-a"]


def test_oprf_rotation_needs_a_reindex_and_answers_verify_under_the_new_key(net: Net) -> None:
    pki = net.consortium.pki
    bundle = pki.bundle("bank-b")
    card = normalise(RECORDS[3].kind, RECORDS[3].value)
    police = net.client("police-1")

    def ask() -> tuple[int, str, bool]:
        outcome = query_responders(police, [card], ["bank-b"], **CASE)[0]
        return len(outcome.matches), outcome.error, outcome.key_mismatch

    assert ask() == (1, "", False)
    old_secret = bundle.oprf_key.read_text().strip()
    rotation = pki.rotate("bank-b", oprf=True, oprf_key_factory=generate_key_pair)
    assert rotation.rotated == ("oprf",)
    net.reload_broker()
    police.client.refresh_directory()

    # The bank's index was built under the old key: it refuses until rebuilt.
    matches, error, _ = ask()
    assert matches == 0 and "another OPRF key" in error

    # A responder still answering under the old key: the DLEQ proof against the
    # directory's new key fails, and the querier says so rather than trust the answer.
    new_secret = bundle.oprf_key.read_text().strip()
    write_secret(bundle.oprf_key, old_secret)
    try:
        matches, error, mismatch = ask()
        assert matches == 0 and mismatch, error
    finally:
        write_secret(bundle.oprf_key, new_secret)

    build_index(net.consortium, "bank-b")
    assert ask() == (1, "", False)
