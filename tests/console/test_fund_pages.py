"""Fund control on the police desk, in process: what a bad fund-control draft is told,
the expiry and due-date warnings, and an inquiry's answer on the action page and its
JSON twin. Journal rows are written as receipts would leave them; expected texts come
from the thresholds in the node's configuration (7 days for a freeze) and the clock.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.envelope.build import new_message_id, now_ms
from gateway.localnet import Consortium
from nodes.actions.police import ActionRequestRow
from nodes.runtime import NodeContext
from nodes.staff.drafts import ActionDraftRow
from nodes.staff.trail import recent
from tests.console.conftest import Client, make_staff
from tests.consortium import running

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
BASIS = "反电信网络诈骗法 第二十五条"
HOLDER = "张伟"


@pytest.fixture(scope="module")
def police(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeContext]:
    root: Path = tmp_path_factory.mktemp("console-fund-pages")
    c = Consortium.create(root, (("police-1", "police", "City Police"), ("bank-a", "bank", "A")))
    with running(c, ("police-1",)) as (_broker, nodes):
        yield nodes["police-1"].ctx


_made = itertools.count(1)


def logged_in(ctx: NodeContext, role: str, language: str = "en") -> Client:
    client = Client(ctx)
    staff = make_staff(ctx, f"{role}-p{next(_made)}", role, language)
    assert client.login(staff).status_code == 200
    return client


def journal(ctx: NodeContext, **values: object) -> str:
    request_id = new_message_id()
    row: dict[str, object] = {
        "request_id": request_id,
        "recipient": "bank-a",
        "case_ref": "C-2026-PG",
        "requested_at_ms": now_ms() - HOUR_MS,
        "leaf_index": 3,
        "receipt_id": new_message_id(),
        **values,
    }
    with Session(ctx.engine) as session, session.begin():
        session.add(ActionRequestRow(**row))
    return request_id


def drafts(ctx: NodeContext) -> int:
    with Session(ctx.engine) as session:
        return int(session.scalar(select(func.count()).select_from(ActionDraftRow)) or 0)


def draft(client: Client, **fields: str) -> object:
    values = {
        "recipient": "bank-a",
        "case_ref": "C-2026-PG",
        "legal_basis": BASIS,
        "identifier_kind": "bank_account",
        **fields,
    }
    return client.post("/police/drafts", values)


@pytest.mark.parametrize(
    ("fields", "told"),
    [
        (
            {"action": "STOP_PAYMENT", "identifier": "6222020200112233445", "amount": "10"},
            "A stop-payment states the holder&#39;s name and the transaction",
        ),
        (
            {
                "action": "INQUIRY",
                "identifier": "6222020200112233445",
                "window_from": "2026-06-02T10:00",
                "window_until": "2026-06-01T10:00",
            },
            "the window&#39;s end must come after its start",
        ),
        (
            {"action": "INQUIRY", "identifier": "6222020200112233445", "window_from": "yesterday"},
            "An inquiry states its window",
        ),
        (
            {
                "action": "INQUIRY",
                "identifier": "6222020200112233445",
                "window_from": "yesterday",
                "window_until": "2026-06-01T10:00",
            },
            "Window from: give a date and time",
        ),
        (
            {"action": "RETURN_FUNDS", "amount": "100", "victim_account": "6222020200123456789"},
            "A return follows a freeze",
        ),
        (
            {
                "action": "RETURN_FUNDS",
                "target_request_id": "<img src=x onerror=alert(1)>",
                "amount": "100",
                "victim_bank": "bank-a",
                "victim_account": "6222020200123456789",
                "victim_name": "李娜",
            },
            "no request &lt;img src=x onerror=alert(1)&gt; in this node",
        ),
    ],
)
def test_a_fund_control_draft_that_is_incomplete_is_not_saved_and_says_why(
    police: NodeContext, fields: dict[str, str], told: str
) -> None:
    client = logged_in(police, "officer")
    before = drafts(police)
    response = draft(client, **fields)
    assert response.status_code == 400
    assert told in response.text, response.text[response.text.find("draft-errors") :][:400]
    assert drafts(police) == before


def test_a_return_or_renewal_of_an_expired_freeze_is_refused_before_it_is_drafted(
    police: NodeContext,
) -> None:
    expired = journal(
        police, action="FREEZE", state="executed", hold_expires_at_ms=now_ms() - HOUR_MS
    )
    client = logged_in(police, "officer")
    before = drafts(police)
    renewal = draft(client, action="EXTEND", target_request_id=expired, duration_hours="720")
    assert "the freeze has expired; issue a new freeze" in renewal.text
    returned = draft(
        client,
        action="RETURN_FUNDS",
        target_request_id=expired,
        amount="100.00",
        victim_bank="bank-a",
        victim_account="6222020200123456789",
        victim_name="李娜",
    )
    assert "the freeze has expired" in returned.text
    assert drafts(police) == before


def test_a_return_and_a_renewal_drafted_from_a_freeze_in_force_carry_what_the_bank_needs(
    police: NodeContext,
) -> None:
    frozen = journal(
        police,
        action="FREEZE",
        state="executed",
        executed_amount_minor=500_000,
        hold_expires_at_ms=now_ms() + 30 * DAY_MS,
    )
    client = logged_in(police, "officer")
    too_much = draft(
        client,
        action="RETURN_FUNDS",
        target_request_id=frozen,
        amount="5000.01",
        victim_bank="bank-a",
        victim_account="6222020200123456789",
        victim_name="李娜",
    )
    assert "larger than the frozen amount (5000.00)" in too_much.text
    saved = draft(
        client,
        action="RETURN_FUNDS",
        target_request_id=frozen,
        amount="1,000.50",
        victim_bank="bank-a",
        victim_account="6222 0202 0012 3456 789",
        victim_name="李娜",
    )
    assert saved.status_code == 200 and saved.url.path == "/police/drafts"
    listed = client.get("/police/drafts.json").json()["waiting"]
    spec = next(d["spec"] for d in listed if d["spec"]["action"] == "RETURN_FUNDS")
    assert spec["amount_minor"] == 100_050
    assert spec["victim"] == {"bank": "bank-a", "account": "6222020200123456789", "name": "李娜"}
    assert spec["target_request_id"] == frozen
    assert spec["due_at_ms"] > now_ms()  # three working days ahead, set by nodes.actions.fund
    renewed = draft(client, action="EXTEND", target_request_id=frozen, duration_hours="720")
    assert renewed.url.path == "/police/drafts"


def test_warnings_follow_the_configured_thresholds_in_the_user_s_language(
    police: NodeContext,
) -> None:
    assert police.config.freeze_warning_hours == 7 * 24
    now = now_ms()
    soon = journal(
        police,
        action="FREEZE",
        state="executed",
        hold_expires_at_ms=now + 30 * HOUR_MS + 30 * 60_000,
    )
    later = journal(police, action="FREEZE", state="extended", hold_expires_at_ms=now + 8 * DAY_MS)
    overdue = journal(
        police,
        action="RETURN_FUNDS",
        state="delivered",
        target_request_id=soon,
        due_at_ms=now - HOUR_MS,
        receipt_id="",
    )
    met = journal(
        police,
        action="RETURN_FUNDS",
        state="executed",
        target_request_id=soon,
        due_at_ms=now + DAY_MS,
        effective_at_ms=now - HOUR_MS,
    )
    english = logged_in(police, "auditor")
    warned = english.get("/police/actions.json").json()["warnings"]
    assert warned[soon] == "Expires in 1 d 6 h: renew it before then"
    assert later not in warned and met not in warned
    assert warned[overdue] == "Return overdue: not completed within its working days"
    assert english.get(f"/police/actions/{overdue}.json").json()["due_state"] == "overdue"
    assert english.get(f"/police/actions/{met}.json").json()["due_state"] == "met"

    chinese = logged_in(police, "auditor", language="zh_CN")
    page = chinese.get(f"/police/actions/{soon}")
    assert "1 天 6 小时后到期：请在此前续冻" in page.text  # noqa: RUF001


def test_an_inquiry_answer_is_shown_labelled_and_never_logged(
    police: NodeContext, caplog: pytest.LogCaptureFixture
) -> None:
    answer = {
        "fields": {"holder_name": HOLDER, "balance_minor": 1_234_567, "branch": "朝阳支行"},
        "window": {"from_ms": 1_780_000_000_000 - DAY_MS, "until_ms": 1_780_000_000_000},
        "transactions": [
            {
                "txn_id": "T-1",
                "at_ms": 1_780_000_000_000 - HOUR_MS,
                "amount_minor": 500_000,
                "counterparty_account": "6217000010001234567",
            }
        ],
        "more_transactions": True,
    }
    asked = journal(police, action="INQUIRY", state="executed", answer=json.dumps(answer))
    client = logged_in(police, "officer", language="zh_CN")
    with caplog.at_level(logging.DEBUG):
        page = client.get(f"/police/actions/{asked}")
        twin = client.get(f"/police/actions/{asked}.json").json()["answer"]
    assert '<dt>户名</dt><dd data-field="holder_name">张伟</dd>' in page.text
    assert '<dt>余额</dt><dd data-field="balance_minor">¥12,345.67</dd>' in page.text
    assert '<dt>branch</dt><dd data-field="branch">朝阳支行</dd>' in page.text
    assert "¥5,000.00" in page.text and "6217000010001234567" in page.text
    assert "请缩短时间范围再次查询" in page.text
    assert twin["fields"][0] == {
        "name": "holder_name",
        "label": "户名",
        "value": HOLDER,
        "money": False,
    }
    assert HOLDER not in caplog.text and "朝阳支行" not in caplog.text
    for event in recent(police.engine, 500):
        assert HOLDER not in event.detail


def test_a_freeze_offers_renewal_and_return_and_a_stop_payment_only_its_release(
    police: NodeContext,
) -> None:
    later = now_ms() + 30 * DAY_MS
    frozen = journal(police, action="FREEZE", state="executed", hold_expires_at_ms=later)
    stopped = journal(police, action="STOP_PAYMENT", state="executed", hold_expires_at_ms=later)
    client = logged_in(police, "officer")
    offered = client.get(f"/police/actions/{frozen}.json").json()["next_actions"]
    assert list(offered) == ["EXTEND", "RETURN_FUNDS", "RELEASE"]
    assert list(client.get(f"/police/actions/{stopped}.json").json()["next_actions"]) == ["RELEASE"]
