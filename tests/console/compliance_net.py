"""A consortium with traffic for the compliance tests: police ping two banks and send a
stop-payment to one; broker and nodes serve in this process over mTLS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from gateway.envelope.build import Draft
from gateway.localnet import Consortium
from nodes.actions.police import issue_action
from nodes.runtime import NodeContext
from tests.actions.seed import ACCOUNT, seed_accounts, spec
from tests.consortium import client, running
from tests.waiting import wait_for

NODES = (
    ("police-1", "police", "City Police"),
    ("bank-a", "bank", "Bank A"),
    ("bank-b", "bank", "Bank B"),
    ("regulator-1", "regulator", "Regulator"),
)


def whole_log(c: Consortium) -> list[tuple[int, dict[str, Any]]]:
    regulator = client(c, "regulator-1")
    try:
        return [(e.position, json.loads(e.leaf)) for e in regulator.client.read_audit()]
    finally:
        regulator.client.close()


@contextmanager
def compliance_net(root: Path) -> Iterator[tuple[Consortium, dict[str, NodeContext]]]:
    c = Consortium.create(root, NODES)
    seed_accounts(c, "bank-b", {ACCOUNT: 1_000_000})
    with running(c) as (_broker, nodes):
        police = nodes["police-1"].ctx
        for bank, case in (("bank-a", "C-A"), ("bank-b", "C-B"), ("bank-a", "C-A2")):
            police.client.submit(
                Draft(
                    sender="police-1",
                    recipients=[bank],
                    kind="PING",
                    payload=b"{}",
                    case_ref=case,
                )
            )
        with pytest.raises(grpc.RpcError):  # refused, and logged as a DENY
            police.client.submit(
                Draft(sender="police-1", recipients=["regulator-1"], kind="PING", payload=b"{}")
            )
        issue_action(police, spec(recipient="bank-b", case_ref="C-B-HOLD"))
        wait_for(lambda: any(e.get("type") == "lifecycle" for _, e in whole_log(c)), timeout=30)
        yield c, {node_id: node.ctx for node_id, node in nodes.items()}
