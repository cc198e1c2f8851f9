"""Alerts in the console, in process with a real broker: a bank officer raises one from
the desk form; the police desk shows it with its reporter sealed; a tip-off reader
opens the reporter (and the staff trail says so); an officer drafts a stop-payment from
it in one step, which waits for an approver."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.localnet import Consortium
from nodes.runtime import NodeContext
from nodes.staff.drafts import list_drafts
from nodes.staff.trail import recent
from tests.actions.seed import ACCOUNT, HOLDER, seed_accounts
from tests.console.conftest import Client, make_staff
from tests.consortium import running

_made = itertools.count(1)
REPORTER = "王芳"


def logged_in(ctx: NodeContext, role: str) -> Client:
    client = Client(ctx)
    staff = make_staff(ctx, f"{role}-a{next(_made)}", role)
    assert client.login(staff).status_code == 200
    return client


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, NodeContext]]:
    root: Path = tmp_path_factory.mktemp("console-alerts")
    c = Consortium.create(
        root,
        (
            ("police-1", "police", "City Police"),
            ("bank-a", "bank", "A"),
            ("carrier-1", "carrier", "C"),
        ),
    )
    seed_accounts(c, "bank-a", {ACCOUNT: 1_000_000})
    with running(c) as (_broker, started):
        yield {node_id: node.ctx for node_id, node in started.items()}


FORM = {
    "region": "310104",
    "identifier_kind": "bank_account",
    "identifier": ACCOUNT,
    "category": "unusual_withdrawal",
    "seen": "customer on the phone with a 'police officer' while withdrawing",
    "seen_at": "",
    "branch": "Xuhui sub-branch",
    "holder_name": HOLDER,
    "txn_time": "2026-05-29T04:26",
    "txn_amount": "5000",
    "reporter_role": "teller",
    "reporter_name": REPORTER,
    "reporter_contact": "",
    "reporter_staff_id": "T-7",
}


def test_a_bank_alert_reaches_the_police_desk_sealed_and_becomes_a_draft(
    nodes: dict[str, NodeContext],
) -> None:
    bank = logged_in(nodes["bank-a"], "officer")
    refused = bank.post("/desk/alerts", {**FORM, "region": "440300"})
    assert refused.status_code == 400
    assert "region 440300: no police node" in refused.text
    sent = bank.post("/desk/alerts", FORM)
    assert sent.status_code == 200, sent.text  # after the redirect
    assert "sent to police-1" in sent.text

    officer = logged_in(nodes["police-1"], "officer")
    desk = officer.get("/police/alerts")
    assert ACCOUNT in desk.text and "Xuhui sub-branch" in desk.text
    assert "sealed" in desk.text and REPORTER not in desk.text
    as_json = officer.get("/police/alerts.json")
    assert REPORTER not in as_json.text
    (alert,) = as_json.json()["alerts"]

    forbidden = officer.post(f"/police/alerts/{alert['alert_id']}/reporter", {})
    assert forbidden.status_code == 403
    reader = logged_in(nodes["police-1"], "tipoff_reader")
    opened = reader.post(f"/police/alerts/{alert['alert_id']}/reporter", {})
    assert opened.status_code == 200 and REPORTER in opened.text and "T-7" in opened.text
    events = [e for e in recent(nodes["police-1"].engine) if e.event == "open_reporter"]
    assert [e.outcome for e in events] == ["ok"]  # the officer was refused at the door
    auditor = logged_in(nodes["police-1"], "auditor")
    openings = auditor.get("/police/alerts.json").json()["openings"]
    assert [(o["user_id"], o["detail"]) for o in openings] == [
        (events[0].user_id, f"alert {alert['alert_id']}")
    ]
    assert REPORTER not in auditor.get("/police/alerts").text

    drafted = officer.post(
        f"/police/alerts/{alert['alert_id']}/draft-stop",
        {"case_ref": "C-2026-TELLER", "legal_basis": "反电信网络诈骗法 第二十五条"},
    )
    assert drafted.status_code == 200 and "an approver must approve it" in drafted.text
    (draft,) = list_drafts(nodes["police-1"].engine, "drafted")
    assert draft.spec["action"] == "STOP_PAYMENT" and draft.spec["identifier"] == ACCOUNT
    assert draft.spec["recipient"] == "bank-a" and draft.spec["account_name"] == HOLDER
    assert draft.spec["amount_minor"] == 500_000


def test_a_carrier_desk_offers_numbers_only(nodes: dict[str, NodeContext]) -> None:
    carrier = logged_in(nodes["carrier-1"], "officer")
    page = carrier.get("/desk/alerts")
    assert 'value="phone"' in page.text and 'value="bank_account"' not in page.text
    wrong = carrier.post(
        "/desk/alerts",
        {**FORM, "holder_name": "", "txn_time": "", "txn_amount": "", "category": "fraud_calls"},
    )
    assert wrong.status_code == 400
    assert "identifier kind: a SUSPICIOUS_NUMBER alert names a phone" in wrong.text
