"""The console in Chromium: an officer queries and drafts a freeze, an approver sends it
through a real broker to a real bank, its receipt arrives; refusals are shown.

Broker, police and bank serve in this process over mTLS (tests/consortium.py); each node
serves its console over HTTP as `gateway node serve` does. Every page visited is saved
as a screenshot at 1280 and 800 px under test-output/screenshots/.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from gateway.cli import app as cli
from gateway.console.server import ConsoleServer
from gateway.localnet import Consortium
from nodes.actions.numbers import BUILTIN_NUMBERS
from nodes.actions.police import ActionSpec
from nodes.runtime import NodeContext
from nodes.staff.accounts import StaffUser, get_user
from nodes.staff.drafts import (
    ActionDraftRow,
    approve_draft,
    canonical,
    create_draft,
    get_draft,
    sha256_hex,
)
from nodes.staff.trail import recent
from tests.console.conftest import Staff, check_accessible, make_staff, shoot
from tests.consortium import running

ACCOUNT = "6222020200112233445"
ABSENT = "6222020200199999999"
SECOND = "6222020200155667788"
BANK_CSV = (
    "kind,value,record_id,status,balance_minor\n"
    f"bank_account,{ACCOUNT},A1,ACTIVE,1234567\n"
    f"bank_account,{SECOND},A2,ACTIVE,880000\n"
)
PHONE = "+8613812345678"
CARRIER_CSV = f"kind,value,record_id,status\nphone,{PHONE},S1,ACTIVE\n"
CASE = "C-2026-0412"
BASIS = "反电信网络诈骗法 第三十一条"

pytestmark = pytest.mark.slow


@dataclass
class Net:
    police: ConsoleServer
    bank: ConsoleServer
    carrier: ConsoleServer
    police_ctx: NodeContext
    bank_ctx: NodeContext
    carrier_ctx: NodeContext


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    root: Path = tmp_path_factory.mktemp("console-browser")
    c = Consortium.create(
        root,
        (
            ("police-1", "police", "City Police"),
            ("bank-a", "bank", "Bank A"),
            ("carrier-1", "carrier", "Carrier One"),
        ),
    )
    for node, name, text in (
        ("bank-a", "accounts", BANK_CSV),
        ("carrier-1", "numbers", CARRIER_CSV),
    ):
        (root / f"{name}.csv").write_text(text)
        done = CliRunner().invoke(
            cli, ["node", "ingest", str(root / f"{name}.csv"), "--config", str(c.config_path(node))]
        )
        assert done.exit_code == 0, done.output
    with running(c) as (_broker, nodes):
        consoles = {n: ConsoleServer(nodes[n].ctx, "127.0.0.1:0") for n in nodes}
        try:
            yield Net(
                consoles["police-1"],
                consoles["bank-a"],
                consoles["carrier-1"],
                nodes["police-1"].ctx,
                nodes["bank-a"].ctx,
                nodes["carrier-1"].ctx,
            )
        finally:
            for server in consoles.values():
                server.stop()


_made = itertools.count(1)


def user(ctx: NodeContext, role: str, language: str = "en") -> Staff:
    return make_staff(ctx, f"{role}-b{next(_made)}", role, language)


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser profile (its own cookies) per test."""
    made = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    try:
        yield made
    finally:
        made.close()


def log_in(page: Any, base: str, staff: Staff, shot: str = "") -> None:
    """Log in with the keyboard only: type, Tab from field to field, Enter on the button."""
    page.goto(f"{base}/login")
    if shot:
        check_accessible(page)
        shoot(page, shot)
    page.focus("#user_id")
    page.keyboard.type(staff.user_id)
    page.keyboard.press("Tab")
    page.keyboard.type(staff.password)
    page.keyboard.press("Tab")
    page.keyboard.type(staff.code())
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "login-button"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator("#login-error").count() == 0, page.inner_text("#login-error")


def visit(page: Any, url: str, shot: str) -> None:
    page.goto(url)
    check_accessible(page)
    shoot(page, shot)


def wait_for_receipt(page: Any, timeout_s: float = 30.0) -> None:
    """The action page reloads itself until the receipt is there; no click needed."""
    page.wait_for_selector("#receipt", timeout=timeout_s * 1000)


def test_a_freeze_is_queried_drafted_approved_sent_and_its_receipt_arrives(
    net: Net, context: Any
) -> None:
    officer = user(net.police_ctx, "officer", language="zh_CN")
    approver = user(net.police_ctx, "approver")
    base = net.police.url

    page = context.new_page()
    log_in(page, base, officer, shot="login")
    assert page.url.endswith("/police/cases")
    assert page.inner_text("h1") == "案件"
    visit(page, f"{base}/police/query", "query-form")
    page.fill("#case_ref", CASE)
    page.fill("#legal_basis", BASIS)
    page.select_option("#kind", "bank_account")
    page.fill("#identifiers", f"{ACCOUNT}\n{ABSENT}\n")
    page.click("#run-query")
    page.wait_for_load_state()
    responder = page.locator("section.responder", has_text="bank-a")
    assert responder.locator("td.mono", has_text=ACCOUNT).count() == 1
    assert page.locator("ul.mono li", has_text=ABSENT).count() == 1
    check_accessible(page)
    shoot(page, "query-results")

    responder.locator("button.draft-from-row").first.click()
    page.wait_for_load_state()
    assert page.input_value("#identifier") == ACCOUNT
    assert page.input_value("#case_ref") == CASE
    page.select_option("#action", "FREEZE")
    page.fill("#duration_hours", "72")
    check_accessible(page)
    shoot(page, "draft-form")
    page.click("#save-draft")
    page.wait_for_load_state()
    assert page.url.endswith("/police/drafts")
    assert page.locator(".flash.ok").count() == 1
    shoot(page, "drafts-officer")

    second = context.browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        approving = second.new_page()
        log_in(approving, base, approver)
        visit(approving, f"{base}/police/drafts", "drafts-approver")
        row = approving.locator("tr[data-draft-id]", has_text=CASE).first
        row.locator("button.approve").click()
        approving.wait_for_load_state()
        assert "/police/actions/" in approving.url
        assert "Approved and sent" in approving.inner_text(".flash.ok")
        wait_for_receipt(approving)
        assert approving.inner_text("#action-state") == "executed"
        assert approving.locator("#receipt .countdown").count() == 1
        check_accessible(approving)
        shoot(approving, "action-receipt")
        visit(approving, f"{base}/police/actions", "actions")
        visit(approving, f"{base}/police/cases", "cases")
        case_row = approving.locator("tr", has_text=CASE).inner_text()
        assert officer.user_id in case_row and approver.user_id in case_row
    finally:
        second.close()

    events = {(e.user_id, e.event, e.outcome) for e in recent(net.police_ctx.engine, 200)}
    assert {(officer.user_id, "query", "ok"), (officer.user_id, "draft", "ok")} <= events
    assert {(approver.user_id, "approve", "ok"), (approver.user_id, "send", "ok")} <= events
    for event in recent(net.police_ctx.engine, 200):
        assert ACCOUNT not in event.detail

    desk = user(net.bank_ctx, "officer")
    bank_page = context.browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    log_in(bank_page, net.bank.url, desk)
    assert bank_page.url.endswith("/desk")
    incoming = bank_page.locator("tr", has_text=CASE).first
    assert "executed" in incoming.inner_text()
    assert f"{officer.user_id} / {approver.user_id}" in incoming.inner_text()
    assert ACCOUNT not in bank_page.content()  # the desk masks the account
    check_accessible(bank_page)
    shoot(bank_page, "bank-desk")
    bank_page.context.close()


def test_an_approver_cannot_approve_their_own_draft(net: Net, context: Any) -> None:
    approver = user(net.police_ctx, "approver")
    page = context.new_page()
    log_in(page, net.police.url, approver)
    page.goto(f"{net.police.url}/police/drafts/new")
    page.select_option("#action", "FREEZE")
    page.fill("#case_ref", "C-2026-SELF")
    page.fill("#legal_basis", BASIS)
    page.select_option("#identifier_kind", "bank_account")
    page.fill("#identifier", ACCOUNT)
    page.click("#save-draft")
    page.wait_for_load_state()
    row = page.locator("tr[data-draft-id]", has_text="C-2026-SELF")
    assert row.locator("button.approve").count() == 0  # not even offered
    draft_id = row.get_attribute("data-draft-id")
    # Post the approval anyway, as a hand-made form with the page's own CSRF token.
    page.evaluate(
        """(id) => { const f = document.createElement('form'); f.method = 'post';
        f.action = '/police/drafts/' + id + '/approve';
        for (const [k, v] of [['csrf_token', document.querySelector('[name=csrf_token]').value],
                              ['spec_sha256', 'x']]) {
          const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v;
          f.appendChild(i); }
        document.body.appendChild(f); f.submit(); }""",
        draft_id,
    )
    page.wait_for_load_state()
    assert "nobody may decide their own draft" in page.inner_text(".flash.error")
    shoot(page, "self-approval-refused")
    assert page.locator("tr[data-draft-id]", has_text="C-2026-SELF").count() == 1


def test_a_wrong_password_and_a_replayed_code_are_refused(net: Net, context: Any) -> None:
    officer = user(net.police_ctx, "officer")
    page = context.new_page()
    page.goto(f"{net.police.url}/login?lang=en")
    page.fill("#user_id", officer.user_id)
    page.fill("#password", "wrong password, clearly")
    page.fill("#totp", officer.code())
    page.click("#login-button")
    assert "wrong user, password or code" in page.inner_text("#login-error")
    shoot(page, "login-refused")
    code = officer.code()
    log_in_with = {"#user_id": officer.user_id, "#password": officer.password, "#totp": code}
    for selector, value in log_in_with.items():
        page.fill(selector, value)
    page.click("#login-button")
    page.wait_for_load_state()
    assert page.url.endswith("/police/cases")
    other = context.browser.new_context().new_page()
    other.goto(f"{net.police.url}/login?lang=en")
    for selector, value in log_in_with.items():
        other.fill(selector, value)
    other.click("#login-button")
    assert "that code was used already" in other.inner_text("#login-error")
    other.context.close()


def test_a_form_without_its_csrf_token_an_auditor_drafting_and_an_expired_session_are_refused(
    net: Net, context: Any
) -> None:
    auditor = user(net.police_ctx, "auditor")
    page = context.new_page()
    log_in(page, net.police.url, auditor)
    page.goto(f"{net.police.url}/police/drafts/new")
    assert "Your role may not use this page" in page.inner_text(".flash.error")
    shoot(page, "auditor-refused")

    page.goto(f"{net.police.url}/police/cases")
    page.evaluate(
        """() => { const f = document.querySelector('form[action="/logout"]');
        f.querySelector('[name=csrf_token]').remove(); f.submit(); }"""
    )
    page.wait_for_load_state()
    assert "security token is missing or wrong" in page.inner_text(".flash.error")
    page.goto(f"{net.police.url}/police/cases")
    assert page.url.endswith("/police/cases")  # the logout was not done

    net.police.app.state.console.sessions.age_all(24 * 3600)
    page.goto(f"{net.police.url}/police/actions")
    assert page.url.endswith("/login")
    assert "Your session expired" in page.inner_text(".flash.error")
    shoot(page, "session-expired")


def test_the_admin_page_adds_a_user_and_shows_the_credentials_once(net: Net, context: Any) -> None:
    admin = user(net.police_ctx, "admin")
    page = context.new_page()
    log_in(page, net.police.url, admin)
    assert page.url.endswith("/admin/users")
    page.fill("#new-user-id", f"desk-{next(_made)}")
    page.select_option("#new-role", "officer")
    page.click("#add-user-button")
    page.wait_for_load_state()
    assert len(page.inner_text("#new-password")) >= 12
    assert page.inner_text("#new-totp-secret")
    check_accessible(page)
    shoot(page, "admin-users")
    page.goto(f"{net.police.url}/admin/users")
    assert page.locator("#new-password").count() == 0


def test_a_csv_upload_with_a_bad_line_sends_nothing_and_names_the_line(
    net: Net, context: Any, tmp_path: Path
) -> None:
    officer = user(net.police_ctx, "officer")
    page = context.new_page()
    log_in(page, net.police.url, officer)
    page.goto(f"{net.police.url}/police/query")
    upload = tmp_path / "suspects.csv"
    upload.write_text(f"kind,value\nbank_account,{SECOND}\nbank_account,12AB\n")
    page.fill("#case_ref", "C-2026-CSV")
    page.fill("#legal_basis", BASIS)
    page.select_option("#kind", "bank_account")
    page.set_input_files("#file", str(upload))
    page.click("#run-query")
    page.wait_for_load_state()
    assert "Uploaded file line 3" in page.inner_text("#query-errors")
    assert page.locator("section.responder").count() == 0
    shoot(page, "query-csv-refused")
    events = recent(net.police_ctx.engine, 5, user_id=officer.user_id)
    assert (events[0].event, events[0].outcome) == ("query", "refused")

    upload.write_text(f"kind,value\nbank_account,{SECOND}\n")
    page.set_input_files("#file", str(upload))
    page.click("#run-query")
    page.wait_for_load_state()
    responder = page.locator("section.responder", has_text="bank-a")
    assert responder.locator("td.mono", has_text=SECOND).count() == 1


def test_a_freeze_is_renewed_through_a_second_four_eyes_draft(net: Net, context: Any) -> None:
    officer = user(net.police_ctx, "officer")
    approver = user(net.police_ctx, "approver")
    page = context.new_page()
    log_in(page, net.police.url, officer)
    page.goto(f"{net.police.url}/police/drafts/new")
    page.select_option("#action", "FREEZE")
    page.fill("#case_ref", "C-2026-EXT")
    page.fill("#legal_basis", BASIS)
    page.select_option("#identifier_kind", "bank_account")
    page.fill("#identifier", SECOND)
    page.uncheck("#whole_balance")  # checked by default
    page.fill("#amount", "1,000.50")
    page.fill("#duration_hours", "48")
    page.click("#save-draft")
    page.wait_for_load_state()

    checker = context.browser.new_context().new_page()
    log_in(checker, net.police.url, approver)

    def approve_latest(case: str) -> None:
        checker.goto(f"{net.police.url}/police/drafts")
        checker.locator("tr[data-draft-id]", has_text=case).first.locator("button.approve").click()
        checker.wait_for_load_state()
        wait_for_receipt(checker)

    approve_latest("C-2026-EXT")
    assert checker.inner_text("#action-state") == "executed"
    assert "¥1,000.50" in checker.inner_text("#receipt")
    freeze = checker.url

    page.goto(freeze)
    page.click("#follow-extend")
    page.wait_for_load_state()
    assert page.input_value("[name=target_request_id]") == freeze.rsplit("/", 1)[1]
    page.click("#save-draft")
    page.wait_for_load_state()
    approve_latest("C-2026-EXT")
    assert checker.inner_text("#action-state") == "executed"
    checker.goto(freeze)
    assert checker.inner_text("#action-state") == "extended"
    shoot(checker, "action-extended")
    checker.context.close()


def test_a_rejected_draft_is_never_sent(net: Net, context: Any) -> None:
    officer = user(net.police_ctx, "officer")
    approver = user(net.police_ctx, "approver")
    page = context.new_page()
    log_in(page, net.police.url, officer)
    page.goto(f"{net.police.url}/police/drafts/new")
    page.select_option("#action", "FREEZE")
    page.fill("#case_ref", "C-2026-REJ")
    page.fill("#legal_basis", BASIS)
    page.select_option("#identifier_kind", "bank_account")
    page.fill("#identifier", SECOND)
    page.click("#save-draft")
    page.wait_for_load_state()
    checker = context.browser.new_context().new_page()
    log_in(checker, net.police.url, approver)
    checker.goto(f"{net.police.url}/police/drafts")
    row = checker.locator("tr[data-draft-id]", has_text="C-2026-REJ").first
    row.locator("button.reject").click()
    checker.wait_for_load_state()
    assert "give a reason for the rejection" in checker.inner_text(".flash.error")
    row = checker.locator("tr[data-draft-id]", has_text="C-2026-REJ").first
    row.locator("input[name=reason]").fill("wrong account")
    row.locator("button.reject").click()
    checker.wait_for_load_state()
    assert "nothing was sent" in checker.inner_text(".flash.ok")
    decided = checker.locator("#decided ~ div tr", has_text="C-2026-REJ")
    assert "wrong account" in decided.inner_text()
    assert checker.locator("tr[data-draft-id]", has_text="C-2026-REJ").count() == 0
    checker.context.close()


def test_the_bank_desk_shows_a_rejection_and_its_reason(net: Net, context: Any) -> None:
    officer = user(net.police_ctx, "officer")
    approver = user(net.police_ctx, "approver")
    unknown = "6222020200177777777"
    spec = ActionSpec(
        recipient="bank-a",
        action="STOP_PAYMENT",
        case_ref="C-2026-UNK",
        legal_basis=BASIS,
        issuing_officer="",
        approving_officer="",
        identifier_kind="bank_account",
        identifier=unknown,
        whole_balance=True,
        duration_hours=48,
    )
    as_officer = StaffUser(officer.user_id, "", "officer", "en")
    as_approver = StaffUser(approver.user_id, "", "approver", "en")
    draft_id = create_draft(net.police_ctx.engine, as_officer, spec)
    draft = get_draft(net.police_ctx.engine, draft_id)
    assert draft is not None
    approve_draft(net.police_ctx, as_approver, draft_id, expected_sha256=draft.spec_sha256)

    desk = user(net.bank_ctx, "auditor")
    page = context.new_page()
    log_in(page, net.bank.url, desk)
    row = page.locator("tr", has_text="C-2026-UNK")
    for _ in range(60):  # the broker delivers from its outbox: reload until it is there
        if row.count() and "rejected" in row.first.inner_text():
            break
        page.wait_for_timeout(500)
        page.reload()
    row = row.first
    assert "unknown account" in row.inner_text()
    assert unknown not in page.content()
    shoot(page, "bank-desk-rejection")


def test_a_draft_changed_after_the_approver_saw_it_is_not_sent(net: Net, context: Any) -> None:
    officer = user(net.police_ctx, "officer")
    approver = user(net.police_ctx, "approver")
    spec = ActionSpec(
        recipient="bank-a",
        action="FREEZE",
        case_ref="C-2026-TAMPER",
        legal_basis=BASIS,
        issuing_officer="",
        approving_officer="",
        identifier_kind="bank_account",
        identifier=SECOND,
        whole_balance=True,
        duration_hours=24,
    )
    engine = net.police_ctx.engine
    draft_id = create_draft(engine, StaffUser(officer.user_id, "", "officer", "en"), spec)
    page = context.new_page()
    log_in(page, net.police.url, approver)
    page.goto(f"{net.police.url}/police/drafts")
    # Someone with database access changes the draft (and its hash) after it was shown.
    changed = replace(spec, identifier=ACCOUNT)
    with Session(engine) as session, session.begin():
        session.execute(
            update(ActionDraftRow)
            .where(ActionDraftRow.draft_id == draft_id)
            .values(spec_json=canonical(changed), spec_sha256=sha256_hex(canonical(changed)))
        )
    page.locator(f"tr[data-draft-id='{draft_id}'] button.approve").click()
    page.wait_for_load_state()
    assert "the draft changed after you viewed it" in page.inner_text(".flash.error")
    draft = get_draft(engine, draft_id)
    assert draft is not None and draft.state == "drafted" and not draft.request_id


def test_a_user_s_language_choice_is_kept(net: Net, context: Any) -> None:
    officer = user(net.police_ctx, "officer")
    page = context.new_page()
    log_in(page, net.police.url, officer)
    assert page.inner_text("h1") == "Cases"
    page.select_option("#language-choice", "zh_CN")
    page.locator("form[action='/language'] button").click()
    page.wait_for_load_state()
    assert page.inner_text("h1") == "案件"
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert get_user(net.police_ctx.engine, officer.user_id).language == "zh_CN"  # type: ignore[union-attr]


def test_a_number_found_at_the_carrier_is_suspended_and_the_carrier_desk_shows_it(
    net: Net, context: Any
) -> None:
    officer = user(net.police_ctx, "officer")
    approver = user(net.police_ctx, "approver")
    page = context.new_page()
    log_in(page, net.police.url, officer)
    page.goto(f"{net.police.url}/police/query")
    page.fill("#case_ref", "C-2026-NUM")
    page.fill("#legal_basis", BASIS)
    page.select_option("#kind", "phone")
    page.select_option("#target", "role:carrier")
    page.fill("#identifiers", "138 1234 5678\n")
    page.click("#run-query")
    page.wait_for_load_state()
    responder = page.locator("section.responder", has_text="carrier-1")
    responder.locator("button.draft-from-row").first.click()
    page.wait_for_load_state()
    assert page.input_value("#action") == "SUSPEND_NUMBER"
    assert page.input_value("#recipient") == "carrier-1"
    page.fill("#duration_hours", "72")
    page.click("#save-draft")
    page.wait_for_load_state()

    checker = context.browser.new_context().new_page()
    log_in(checker, net.police.url, approver)
    checker.goto(f"{net.police.url}/police/drafts")
    row = checker.locator("tr[data-draft-id]", has_text="C-2026-NUM").first
    assert "Phone number" in row.inner_text()
    row.locator("button.approve").click()
    checker.wait_for_load_state()
    wait_for_receipt(checker)
    assert checker.inner_text("#action-state") == "executed"
    assert checker.locator("#follow-restore_number").count() == 1
    checker.context.close()

    desk = context.browser.new_context().new_page()
    log_in(desk, net.carrier.url, user(net.carrier_ctx, "officer"))
    suspended = desk.locator("table[aria-labelledby=holds] tr", has_text="Number suspension").first
    assert "•5678" in suspended.inner_text() and PHONE not in desk.content()
    check_accessible(desk)
    shoot(desk, "carrier-desk")
    desk.context.close()


def test_an_inquiry_drafted_from_a_matched_row_is_answered(net: Net, context: Any) -> None:
    officer = user(net.police_ctx, "officer")
    approver = user(net.police_ctx, "approver")
    page = context.new_page()
    log_in(page, net.police.url, officer)
    page.goto(f"{net.police.url}/police/query")
    page.fill("#case_ref", "C-2026-ASK")
    page.fill("#legal_basis", BASIS)
    page.select_option("#kind", "bank_account")
    page.fill("#identifiers", f"{SECOND}\n")
    page.click("#run-query")
    page.wait_for_load_state()
    responder = page.locator("section.responder", has_text="bank-a")
    responder.locator("button.inquire-from-row").first.click()
    page.wait_for_load_state()
    assert page.input_value("#action") == "INQUIRY"
    assert page.input_value("#identifier") == SECOND
    page.click("#save-draft")
    page.wait_for_load_state()
    assert page.url.endswith("/police/drafts")

    checker = context.browser.new_context().new_page()
    log_in(checker, net.police.url, approver)
    checker.goto(f"{net.police.url}/police/drafts")
    checker.locator("tr[data-draft-id]", has_text="C-2026-ASK").first.locator(
        "button.approve"
    ).click()
    checker.wait_for_load_state()
    checker.wait_for_selector("#answer", timeout=30_000)
    assert checker.inner_text("[data-field=balance_minor]") == "¥8,800.00"
    shoot(checker, "inquiry-from-row-answer")
    checker.context.close()


def test_a_carrier_answers_an_inquiry_about_a_matched_number_with_its_subscriber_status(
    net: Net, context: Any
) -> None:
    officer = user(net.police_ctx, "officer")
    approver = user(net.police_ctx, "approver")
    page = context.new_page()
    log_in(page, net.police.url, officer)
    page.goto(f"{net.police.url}/police/query")
    page.fill("#case_ref", "C-2026-SUB")
    page.fill("#legal_basis", BASIS)
    page.select_option("#kind", "phone")
    page.fill("#identifiers", f"{PHONE}\n")
    page.click("#run-query")
    page.wait_for_load_state()
    responder = page.locator("section.responder", has_text="carrier-1")
    responder.locator("button.inquire-from-row").first.click()
    page.wait_for_load_state()
    assert page.input_value("#recipient") == "carrier-1"
    page.click("#save-draft")
    page.wait_for_load_state()

    checker = context.browser.new_context().new_page()
    log_in(checker, net.police.url, approver)
    checker.goto(f"{net.police.url}/police/drafts")
    row = checker.locator("tr[data-draft-id]", has_text="C-2026-SUB").first
    row.locator("button.approve").click()
    checker.wait_for_load_state()
    checker.wait_for_selector("#answer", timeout=30_000)
    with Session(net.carrier_ctx.engine) as session:
        on_record = session.scalar(
            select(BUILTIN_NUMBERS.c.status).where(BUILTIN_NUMBERS.c.number == PHONE)
        )
    assert checker.inner_text("[data-field=status]") == on_record  # another test may suspend it
    assert checker.locator("#answer-transactions").count() == 0  # a carrier has no ledger
    shoot(checker, "inquiry-carrier-answer")
    checker.context.close()
