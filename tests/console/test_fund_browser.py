"""Fund control on the police desk in Chromium, through a real broker and bank: an
inquiry and its answer, a freeze's expiry warning, its renewal and a return of funds
with its due date, and a stop-payment whose holder's name the bank does not have.

The bank's records are the seeded ones of tests/actions/seed.py (holder 张伟, one credit
of ¥5,000.00 from VICTIM at PAID_AT_MS); expected outcomes are the bank's published
rules (a stop-payment's name must match the holder's), not this code's. Every page
visited is saved as a screenshot at 1280 and 800 px under test-output/screenshots/.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from gateway.console.server import ConsoleServer
from gateway.localnet import Consortium
from nodes.actions.accounts import BUILTIN_ACCOUNTS
from nodes.actions.police import ActionRequestRow, issue_action
from nodes.runtime import NodeContext
from nodes.staff.trail import recent
from tests.actions.seed import HOLDER, PAID_AT_MS, VICTIM, seed_accounts, spec
from tests.console.conftest import Staff, check_accessible, make_staff, shoot
from tests.consortium import running
from tests.postgres import opened
from tests.waiting import wait_for

SUSPECT = "6222020200112233445"
STOPPED = "6222020200135792468"
VICTIM_HERE = "6222020200123456789"
VICTIM_NAME = "李娜"
BASIS = "反电信网络诈骗法 第二十五条"
ZONE = "Asia/Shanghai"

pytestmark = pytest.mark.slow


@dataclass
class Net:
    police: ConsoleServer
    bank: ConsoleServer
    police_ctx: NodeContext
    bank_ctx: NodeContext


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    root: Path = tmp_path_factory.mktemp("console-fund")
    c = Consortium.create(root)
    seed_accounts(c, "bank-a", {SUSPECT: 1_000_000, STOPPED: 600_000, VICTIM_HERE: 10_000})
    with opened(c.node_config("bank-a").database) as engine, engine.begin() as conn:
        conn.execute(
            update(BUILTIN_ACCOUNTS)
            .where(BUILTIN_ACCOUNTS.c.account_no == VICTIM_HERE)
            .values(holder_name=VICTIM_NAME)
        )
    with running(c, ("police-1", "bank-a")) as (_broker, nodes):
        consoles = {n: ConsoleServer(nodes[n].ctx, "127.0.0.1:0") for n in nodes}
        try:
            yield Net(
                consoles["police-1"],
                consoles["bank-a"],
                nodes["police-1"].ctx,
                nodes["bank-a"].ctx,
            )
        finally:
            for server in consoles.values():
                server.stop()


_made = itertools.count(1)


def user(ctx: NodeContext, role: str, language: str = "en") -> Staff:
    return make_staff(ctx, f"{role}-f{next(_made)}", role, language)


def log_in(context: Any, base: str, staff: Staff) -> Any:
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill("#user_id", staff.user_id)
    page.fill("#password", staff.password)
    page.fill("#totp", staff.code())
    with page.expect_navigation():
        page.click("#login-button")
    assert page.locator("#login-error").count() == 0
    return page


def local(ms: int) -> str:
    """`ms` as a datetime-local input takes it, in the node's zone."""
    moment = datetime.fromtimestamp(ms / 1000, UTC).astimezone(ZoneInfo(ZONE))
    return moment.strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def desk(browser: Any, net: Net) -> Iterator[tuple[Any, Any]]:
    """An officer's page (English) and an approver's page (Chinese), each logged in."""
    officer = user(net.police_ctx, "officer")
    approver = user(net.police_ctx, "approver", language="zh_CN")
    drafting = browser.new_context(viewport={"width": 1280, "height": 900})
    approving = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    try:
        yield log_in(drafting, net.police.url, officer), log_in(approving, net.police.url, approver)
    finally:
        drafting.close()
        approving.close()


def save_draft(page: Any) -> None:
    page.click("#save-draft")
    page.wait_for_load_state()
    assert page.locator("#draft-errors").count() == 0, page.inner_text("#draft-errors")
    assert page.url.endswith("/police/drafts")


def approve_latest(page: Any, base: str, case: str, shot: str = "") -> None:
    """Approve the newest waiting draft of `case` and wait on its page for the receipt."""
    page.goto(f"{base}/police/drafts")
    if shot:
        check_accessible(page)
        shoot(page, shot)
    page.locator("tr[data-draft-id]", has_text=case).first.locator("button.approve").click()
    page.wait_for_load_state()
    assert "/police/actions/" in page.url
    page.wait_for_selector("#receipt", timeout=30_000)


def new_draft(page: Any, base: str, action: str, case: str) -> None:
    page.goto(f"{base}/police/drafts/new")
    page.select_option("#action", action)
    page.select_option("#recipient", "bank-a")
    page.fill("#case_ref", case)
    page.fill("#legal_basis", BASIS)
    page.select_option("#identifier_kind", "bank_account")


def test_an_inquiry_is_drafted_approved_and_its_answer_shown(
    net: Net, desk: tuple[Any, Any]
) -> None:
    officer, approver = desk
    base = net.police.url
    new_draft(officer, base, "INQUIRY", "C-2026-INQ")
    officer.fill("#identifier", SUSPECT)
    officer.fill("#window_from", local(PAID_AT_MS - 86_400_000))
    officer.fill("#window_until", local(PAID_AT_MS + 86_400_000))
    check_accessible(officer)
    shoot(officer, "fund-inquiry-draft")
    save_draft(officer)

    approve_latest(approver, base, "C-2026-INQ", shot="fund-inquiry-approval")
    approver.wait_for_selector("#answer", timeout=30_000)
    assert approver.inner_text("#action-state") == "已执行"
    holder = approver.locator("#answer div", has=approver.locator("[data-field=holder_name]"))
    assert holder.locator("dt").inner_text() == "户名"
    assert holder.locator("dd").inner_text() == HOLDER
    credit = approver.locator("#answer-transactions tbody tr").first.inner_text()
    assert "¥5,000.00" in credit and VICTIM in credit
    check_accessible(approver)
    shoot(approver, "fund-inquiry-answer")

    for event in recent(net.police_ctx.engine, 200):
        assert HOLDER not in event.detail and SUSPECT not in event.detail


def test_a_freeze_warns_is_renewed_and_funds_are_returned_by_their_due_date(
    net: Net, desk: tuple[Any, Any]
) -> None:
    officer, approver = desk
    base = net.police.url
    frozen = issue_action(
        net.police_ctx,
        spec(
            identifier=SUSPECT,
            action="FREEZE",
            case_ref="C-2026-FRZ",
            whole_balance=True,
            duration_hours=72,
            account_name="",
            transaction=None,
        ),
    ).message_id
    wait_for(lambda: _state(net.police_ctx, frozen) == "executed")

    officer.goto(f"{base}/police/actions")
    row = officer.locator(f"tr[data-request-id='{frozen}']")
    assert "renew it before then" in row.locator("td.warning").inner_text()
    shoot(officer, "fund-actions-warning")
    officer.goto(f"{base}/police/actions/{frozen}")
    assert "renew it before then" in officer.inner_text("#warning")

    officer.click("#follow-extend")
    officer.wait_for_load_state()
    assert officer.input_value("[name=target_request_id]") == frozen
    assert officer.input_value("#duration_hours") == "720"
    officer.fill("#legal_basis", BASIS)  # the freeze was sent without a draft to take it from
    save_draft(officer)
    approve_latest(approver, base, "C-2026-FRZ")
    assert approver.inner_text("#action-state") == "已执行"
    shoot(approver, "fund-renewal-receipt")
    officer.goto(f"{base}/police/actions/{frozen}")
    assert officer.inner_text("#action-state") == "extended"
    assert officer.locator("#warning").count() == 0  # 30 more days: past the 7-day threshold

    officer.click("#follow-return_funds")
    officer.wait_for_load_state()
    assert officer.input_value("#amount") == "10000.00"
    officer.fill("#amount", "1000.50")
    officer.select_option("#victim_bank", "bank-a")
    officer.fill("#victim_account", VICTIM_HERE)
    officer.fill("#victim_name", VICTIM_NAME)
    officer.fill("#legal_basis", BASIS)
    check_accessible(officer)
    shoot(officer, "fund-return-draft")
    save_draft(officer)
    approve_latest(approver, base, "C-2026-FRZ")
    assert approver.inner_text("#action-state") == "已执行"
    assert "¥1,000.50" in approver.inner_text("#receipt")
    assert approver.inner_text("#due-state") == "按时"
    check_accessible(approver)
    shoot(approver, "fund-return-receipt")

    bank_desk = log_in(
        approver.context.browser.new_context(), net.bank.url, user(net.bank_ctx, "auditor")
    )
    returned = bank_desk.locator("#fund ~ div tr[data-kind=RETURN_FUNDS]", has_text="C-2026-FRZ")
    assert "¥1,000.50" in returned.inner_text()
    shoot(bank_desk, "fund-bank-desk")
    bank_desk.context.close()


def test_a_stop_payment_with_another_holder_s_name_comes_back_rejected(
    net: Net, desk: tuple[Any, Any]
) -> None:
    officer, approver = desk
    base = net.police.url
    new_draft(officer, base, "STOP_PAYMENT", "C-2026-STP")
    officer.fill("#identifier", STOPPED)
    officer.fill("#txn_time", local(PAID_AT_MS))
    officer.fill("#txn_amount", "5000.00")
    officer.fill("#txn_from", VICTIM)
    officer.click("#save-draft")
    officer.wait_for_load_state()
    assert "holder's name and the transaction" in officer.inner_text("#draft-errors")
    shoot(officer, "fund-stop-payment-refused-form")

    officer.fill("#account_name", "王五")
    save_draft(officer)
    approve_latest(approver, base, "C-2026-STP")
    assert approver.inner_text("#action-state") == "已拒绝"
    assert "does not match the holder" in approver.inner_text("#receipt")
    check_accessible(approver)
    shoot(approver, "fund-stop-payment-rejected")


def test_the_bank_desk_names_the_fields_an_inquiry_was_answered_with_not_their_values(
    net: Net, desk: tuple[Any, Any]
) -> None:
    officer, approver = desk
    new_draft(officer, net.police.url, "INQUIRY", "C-2026-INQ2")
    officer.fill("#identifier", VICTIM_HERE)
    save_draft(officer)
    approve_latest(approver, net.police.url, "C-2026-INQ2")
    page = log_in(
        approver.context.browser.new_context(), net.bank.url, user(net.bank_ctx, "officer")
    )
    asked = page.locator("#fund ~ div tr[data-kind=INQUIRY]", has_text="C-2026-INQ2")
    assert "holder_name" in asked.inner_text() and "transactions" in asked.inner_text()
    assert VICTIM_NAME not in page.content() and VICTIM_HERE not in page.content()
    check_accessible(page)
    page.context.close()


def _state(ctx: NodeContext, request_id: str) -> str:
    with Session(ctx.engine) as session:
        row = session.get(ActionRequestRow, request_id)
        return row.state if row is not None else ""
