"""Broker and nodes run only the policy bundle the signed directory lists, and a node
audits what its own policy refuses.

Served in this process over mTLS. The attacker's cheapest moves: edit the policy file a
server loads (refused at start), keep running an older policy after the administrator
signed a new one (every message refused until restarted on the listed bundle), and have
a broker deliver what the node's policy forbids (refused, and written to the node's own
chained staff trail).
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from gateway.broker.delivery import DeliveryError
from gateway.broker.server import serve_broker
from gateway.policy import PolicyLoadError
from gateway.resources import POLICIES
from nodes.preflight import PreflightError
from nodes.runtime import serve_node
from nodes.staff.trail import StaffEvent, recent, verify_trail
from tests.consortium import Consortium
from tests.nodes.test_inbound_checks import ACCOUNT, freeze, message_id
from tests.postgres import opened
from tests.security.net import Net, journalled, ping, serving, submit_error

BANK_POLICY_RULE = "bank-forbids-actions-from-non-police"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    consortium = Consortium.create(tmp_path_factory.mktemp("bundle"))
    with serving(consortium, ("police-1", "bank-a")) as network:
        yield network


def _edit_in_place(path: Path) -> None:
    """Loosen the bank's policy inside the signed bundle file, keeping its signature."""
    doc = json.loads(path.read_bytes())
    inner = json.loads(base64.b64decode(doc["bundle"]))
    inner["files"]["node-bank.cedar"] = inner["files"]["node-bank.cedar"].replace(
        f'@id("{BANK_POLICY_RULE}")', '@id("gone")\n@id2("x")', 1
    )
    data = json.dumps(inner, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    doc["bundle"] = base64.b64encode(data.encode()).decode()
    path.write_text(json.dumps(doc))


def test_a_node_whose_bundle_was_edited_does_not_start(net: Net, tmp_path: Path) -> None:
    config = net.consortium.node_config("bank-a")
    folder = tmp_path / "bank-a"
    shutil.copytree(config.pki_bundle, folder)
    _edit_in_place(folder / "policy-bundle.json")
    with pytest.raises(PreflightError, match="policy: policy bundle signature does not verify"):
        serve_node(replace(config, pki_bundle=folder, listen="127.0.0.1:0"))


def test_a_broker_whose_bundle_was_edited_does_not_start(net: Net, tmp_path: Path) -> None:
    config = net.consortium.broker_config()
    folder = tmp_path / "broker"
    shutil.copytree(config.pki_bundle, folder)
    _edit_in_place(folder / "policy-bundle.json")
    with pytest.raises(PolicyLoadError, match="signature does not verify"):
        serve_broker(
            replace(
                config,
                pki_bundle=folder,
                listen="127.0.0.1:0",
                database=str(tmp_path / "broker.db"),
            )
        )


def policy_denials(net: Net, node_id: str) -> list[StaffEvent]:
    """The node's trail events for its policy's refusals, oldest first; the chain intact."""
    with opened(net.consortium.node_config(node_id).database) as engine:
        assert verify_trail(engine) == []
        return [e for e in reversed(recent(engine)) if e.event == "policy.deny"]


def test_a_node_policy_refusal_is_audited_at_the_node(net: Net) -> None:
    # A broker gone bad delivers bank-b's (genuinely signed) freeze to bank-a.
    before = len(policy_denials(net, "bank-a"))
    envelope = freeze(net, sender="bank-b")
    with pytest.raises(DeliveryError, match=BANK_POLICY_RULE):
        net.as_broker("bank-a", envelope)
    events = policy_denials(net, "bank-a")[before:]
    assert len(events) == 1
    (event,) = events
    assert event.user_id == "(node policy)" and event.outcome == "denied"
    assert message_id(envelope) in event.detail
    assert "FREEZE" in event.detail and "bank-b" in event.detail
    assert BANK_POLICY_RULE in event.detail
    listed = net.consortium.pki.directory().policy_bundle
    assert f"bundle {listed[:12]}" in event.detail
    assert ACCOUNT not in event.detail


def test_each_broker_decision_entry_names_the_listed_bundle(net: Net) -> None:
    envelope = ping().sign(net.signing_key("police-1"))
    net.stub_as("police-1").Submit(envelope, timeout=10)
    audit = net.broker.broker.audit
    leaves = [json.loads(leaf) for _, leaf in audit.read(0, audit.size)]
    (decision,) = [
        e for e in leaves if e.get("message_id") == message_id(envelope) and "policy_set" in e
    ]
    signed = json.loads((net.consortium.pki.root / "policy-bundle.json").read_bytes())
    expected = hashlib.sha256(base64.b64decode(signed["bundle"])).hexdigest()
    assert decision["policy_set"] == expected == net.consortium.pki.directory().policy_bundle


def test_servers_refuse_while_the_directory_lists_another_bundle(net: Net, tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    shutil.copytree(POLICIES, folder)
    (folder / "broker.cedar").write_text((folder / "broker.cedar").read_text() + "\n")
    pki = net.consortium.pki
    try:
        pki.sign_policies(folder)
        net.reload_broker()
        net.refetch()
        # The broker still runs the bundle it loaded: it refuses rather than decide with it.
        envelope = ping().sign(net.signing_key("police-1"))
        error = submit_error(net.stub_as("police-1"), envelope)
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "is not the one the directory lists" in str(error.details())
        # So does a node, even for what its policy allows, and it audits the refusal.
        with pytest.raises(DeliveryError, match="is not the one the directory lists"):
            net.as_broker("bank-a", envelope)
        assert journalled(net.consortium, "bank-a", message_id(envelope)) == 0
        assert message_id(envelope) in policy_denials(net, "bank-a")[-1].detail
        # Restarted, each loads the listed bundle and serves again.
        net.restart_broker()
        net.restart("bank-a")
        assert net.as_broker("bank-a", ping().sign(net.signing_key("police-1"))).accepted
    finally:
        pki.sign_policies(POLICIES)
        net.restart_broker()
        net.restart("bank-a")
