"""Four-eyes at the broker and, in depth, at the bank and carrier: an action request
whose issuing and approving officers are missing or the same is refused.

Through the real broker and nodes over mTLS. The second half runs a broker whose policy
lacks the four-eyes rule (a misconfigured or compromised broker): the bank's own policy
still refuses to act.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from gateway.localnet import Consortium
from gateway.resources import POLICIES as REPO_POLICIES
from nodes.actions.police import issue_action
from tests.actions.seed import ACCOUNT, account, number_status, seed_accounts, seed_numbers, spec
from tests.consortium import client, running
from tests.waiting import wait_for

PHONE = "+8613812345678"
BROKER_RULE = "forbid-actions-without-two-officers"
ONE_PERSON = (
    {"issuing_officer": "wang", "approving_officer": "wang"},
    {"issuing_officer": "", "approving_officer": "chen"},
    {"issuing_officer": "wang", "approving_officer": ""},
)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Consortium:
    c = Consortium.create(tmp_path_factory.mktemp("four-eyes"))
    seed_accounts(c, "bank-a", {ACCOUNT: 1_000_000})
    seed_numbers(c, "carrier-1", [PHONE])
    return c


@pytest.mark.parametrize("officers", ONE_PERSON)
def test_the_broker_refuses_an_action_without_two_officers(
    net: Consortium, officers: dict[str, str]
) -> None:
    with running(net, ("police-1", "bank-a", "carrier-1")):
        police = client(net, "police-1")
        try:
            for request in (
                spec(**officers),
                spec(
                    recipient="carrier-1",
                    action="SUSPEND_NUMBER",
                    identifier_kind="phone",
                    identifier=PHONE,
                    amount_minor=0,
                    **officers,
                ),
            ):
                with pytest.raises(grpc.RpcError) as info:
                    issue_action(police, request)
                assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
                assert BROKER_RULE in str(info.value.details())
        finally:
            police.client.close()
    assert account(net, "bank-a", ACCOUNT)["held_minor"] == 0
    assert number_status(net, "carrier-1", PHONE) == "active"


@pytest.fixture
def lax_broker_policy(net: Consortium, tmp_path: Path) -> Iterator[Path]:
    """The shipped policies with the broker's four-eyes rule left out, signed into the
    consortium's bundle (a misconfigured policy set); the shipped set is signed again after."""
    folder = tmp_path / "policies"
    shutil.copytree(REPO_POLICIES, folder)
    text = (folder / "broker.cedar").read_text()
    start = text.index(f'@id("{BROKER_RULE}")')
    end = text.index("};", start) + 2
    (folder / "broker.cedar").write_text(text[:start] + text[end:])
    net.pki.sign_policies(folder)
    try:
        yield folder
    finally:
        net.pki.sign_policies(REPO_POLICIES)


def test_a_broker_without_the_rule_still_cannot_make_the_bank_act(
    net: Consortium, lax_broker_policy: Path
) -> None:
    with running(net, ("police-1", "bank-a", "carrier-1")):
        police = client(net, "police-1")
        try:
            result = issue_action(police, spec(issuing_officer="wang", approving_officer="wang"))
            assert result.decision == "ALLOW"  # the lax broker let it through
            done = ("failed", "refused")

            def closed() -> bool:
                return police.client.status(result.message_id).state in done

            wait_for(closed)
            reply = police.client.status(result.message_id)
        finally:
            police.client.close()
    details = " ".join(e.detail for e in reply.events)
    assert "bank-forbids-actions-without-two-officers" in details
    assert account(net, "bank-a", ACCOUNT)["held_minor"] == 0
