"""A teller's alert to a stop-payment in Chromium, through a real broker and bank: the
bank's officer reports the account on the desk form, the police officer sees it with
its reporter sealed and drafts a stop-payment from it in one step, an approver (in
Chinese) sends it, and the bank executes it (its records are the seeded ones of
tests/actions/seed.py: holder 张伟, a credit of ¥5,000.00 at PAID_AT_MS).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.console.server import ConsoleServer
from gateway.localnet import Consortium
from nodes.actions.police import ActionRequestRow
from nodes.runtime import NodeContext
from tests.actions.seed import ACCOUNT, HOLDER, PAID_AT_MS, seed_accounts
from tests.console.conftest import Staff, check_accessible, make_staff, shoot
from tests.consortium import running
from tests.waiting import wait_for

pytestmark = pytest.mark.slow
_made = itertools.count(1)
TELLER = "陈静"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root: Path = tmp_path_factory.mktemp("console-alert")
    c = Consortium.create(root, (("police-1", "police", "City Police"), ("bank-a", "bank", "A")))
    seed_accounts(c, "bank-a", {ACCOUNT: 1_000_000})
    with running(c) as (_broker, nodes):
        consoles = {n: ConsoleServer(nodes[n].ctx, "127.0.0.1:0") for n in nodes}
        try:
            yield {"consoles": consoles, "ctx": {n: nodes[n].ctx for n in nodes}}
        finally:
            for server in consoles.values():
                server.stop()


def log_in(browser: Any, base: str, staff: Staff, locale: str = "en-GB") -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale=locale)
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill("#user_id", staff.user_id)
    page.fill("#password", staff.password)
    page.fill("#totp", staff.code())
    with page.expect_navigation():
        page.click("#login-button")
    return page


def user(ctx: NodeContext, role: str, language: str = "en") -> Staff:
    return make_staff(ctx, f"{role}-b{next(_made)}", role, language)


def test_a_tellers_alert_becomes_a_stop_payment_on_the_police_desk(
    browser: Any, net: dict[str, Any]
) -> None:
    police_ctx, bank_ctx = net["ctx"]["police-1"], net["ctx"]["bank-a"]
    police, bank = net["consoles"]["police-1"].url, net["consoles"]["bank-a"].url

    teller_desk = log_in(browser, bank, user(bank_ctx, "officer"))
    teller_desk.goto(f"{bank}/desk/alerts")
    check_accessible(teller_desk)
    teller_desk.fill("#region", "310104")
    teller_desk.fill("#identifier", ACCOUNT)
    teller_desk.select_option("#category", "unusual_withdrawal")
    teller_desk.fill("#seen", "customer withdrawing cash on a caller's instructions")
    teller_desk.fill("#branch", "Xuhui sub-branch")
    teller_desk.fill("#holder_name", HOLDER)
    paid = datetime.fromtimestamp(PAID_AT_MS / 1000, UTC).astimezone(ZoneInfo("Asia/Shanghai"))
    teller_desk.fill("#txn_time", paid.strftime("%Y-%m-%dT%H:%M"))
    teller_desk.fill("#txn_amount", "5000")
    teller_desk.fill("#reporter_name", TELLER)
    with teller_desk.expect_navigation():
        teller_desk.click("#raise-alert button[type=submit]")
    assert "sent to police-1" in teller_desk.inner_text(".flash")
    shoot(teller_desk, "alert-bank-desk")

    officer = log_in(browser, police, user(police_ctx, "officer"))
    officer.goto(f"{police}/police/alerts")
    check_accessible(officer)
    row = officer.locator("tr[data-alert-id]")
    assert row.count() == 1
    assert ACCOUNT in row.inner_text() and "sealed" in row.inner_text()
    assert TELLER not in officer.content()
    shoot(officer, "alert-police-desk")
    row.locator("input[name=case_ref]").fill("C-2026-TELLER")
    row.locator("input[name=legal_basis]").fill("反电信网络诈骗法 第二十五条")
    with officer.expect_navigation():
        row.locator("button[type=submit]").click()
    assert "an approver must approve it" in officer.inner_text(".flash")

    approver = log_in(browser, police, user(police_ctx, "approver", "zh_CN"), "zh-CN")
    approver.goto(f"{police}/police/drafts")
    with approver.expect_navigation():
        approver.locator("tr[data-draft-id] button.approve").click()

    def executed() -> bool:
        with Session(police_ctx.engine) as s:
            states = s.scalars(select(ActionRequestRow.state)).all()
        return list(states) == ["executed"]

    wait_for(executed, timeout=20)
