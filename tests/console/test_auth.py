"""Login, sessions, CSRF and role guards of the console, in process (no browser).

Each refusal is checked on the page the user sees and in the node's staff trail.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.localnet import Consortium
from nodes.runtime import NodeContext, open_node
from nodes.staff.trail import recent
from tests.console.conftest import Client, Staff, make_staff

DESK_PAGES = ("/police/cases", "/police/query", "/police/drafts", "/police/actions")


@pytest.fixture(scope="module")
def police(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeContext]:
    root: Path = tmp_path_factory.mktemp("console-auth")
    net = Consortium.create(root, (("police-1", "police", "City Police"),))
    ctx = open_node(net.node_config("police-1"))
    try:
        yield ctx
    finally:
        ctx.client.close()


_made = itertools.count(1)


@pytest.fixture
def staff(police: NodeContext) -> dict[str, Staff]:
    """A user of each role, new for each test: a TOTP code logs in once only."""
    n = next(_made)
    return {
        role: make_staff(police, f"{role}-{n}", role)
        for role in ("officer", "approver", "auditor", "admin")
    }


def last_event(ctx: NodeContext, user_id: str) -> tuple[str, str, str]:
    event = recent(ctx.engine, 1, user_id=user_id)[0]
    return event.event, event.outcome, event.detail


def test_a_login_sets_a_strict_http_only_cookie_and_opens_the_role_s_first_page(
    police: NodeContext, staff: dict[str, Staff]
) -> None:
    client = Client(police)
    response = client.login(staff["officer"])
    assert response.status_code == 200
    assert response.url.path == "/police/cases"
    cookie = response.history[0].headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    assert last_event(police, staff["officer"].user_id)[:2] == ("login", "ok")


def test_behind_tls_the_cookie_is_secure(police: NodeContext) -> None:
    client = Client(police, secure_cookies=True)
    response = client.http.get("/login")
    assert "; secure" in response.headers["set-cookie"].lower()


def test_the_session_id_changes_at_login(police: NodeContext, staff: dict[str, Staff]) -> None:
    client = Client(police)
    client.http.get("/login")
    before = client.http.cookies.get("gateway_console")
    client.login(staff["auditor"])
    after = client.http.cookies.get("gateway_console")
    assert before and after and before != after


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(
    police: NodeContext, staff: dict[str, Staff]
) -> None:
    client = Client(police)
    response = client.login(staff["approver"], password="not the password at all")
    assert response.status_code == 401
    assert "Login refused: wrong user, password or code." in response.text
    assert last_event(police, staff["approver"].user_id) == ("login", "refused", "password")
    assert client.get("/police/drafts").url.path == "/login"


def test_a_replayed_totp_code_is_refused(police: NodeContext, staff: dict[str, Staff]) -> None:
    officer = make_staff(police, "replay-1", "officer")
    code = officer.code()
    assert Client(police).login(officer, code).status_code == 200
    replayed = Client(police).login(officer, code)
    assert replayed.status_code == 401
    assert "that code was used already; wait for the next one" in replayed.text
    assert last_event(police, "replay-1") == ("login", "refused", "totp replayed")


def test_a_post_without_or_with_a_forged_csrf_token_does_nothing(
    police: NodeContext, staff: dict[str, Staff]
) -> None:
    client = Client(police)
    client.login(staff["admin"])
    client.get("/admin/users")
    for data in (
        {"user_id": "sneaky-1", "role": "admin"},
        {"user_id": "sneaky-1", "role": "admin", "csrf_token": "forged"},
    ):
        response = client.post("/admin/users", data, csrf=False)
        assert response.status_code == 403
        assert "security token is missing or wrong" in response.text
        assert last_event(police, staff["admin"].user_id) == (
            "csrf",
            "refused",
            "POST /admin/users",
        )
    assert "sneaky-1" not in client.get("/admin/users").text


def test_an_idle_session_expires_and_the_user_must_log_in_again(
    police: NodeContext, staff: dict[str, Staff]
) -> None:
    client = Client(police, idle_timeout_s=900)
    client.login(staff["auditor"])
    assert client.get("/police/actions").url.path == "/police/actions"
    client.app.state.console.sessions.age_all(901)
    response = client.get("/police/actions")
    assert response.url.path == "/login"
    assert "Your session expired" in response.text
    assert last_event(police, staff["auditor"].user_id) == ("session", "expired", "/police/actions")


def test_an_auditor_may_read_but_not_draft(police: NodeContext, staff: dict[str, Staff]) -> None:
    client = Client(police)
    client.login(staff["auditor"])
    assert client.get("/police/drafts").status_code == 200
    response = client.get("/police/drafts/new")
    assert response.status_code == 403
    assert "Your role may not use this page" in response.text
    assert last_event(police, staff["auditor"].user_id) == (
        "access",
        "denied",
        "GET /police/drafts/new: role auditor",
    )
    refused = client.post("/police/drafts", {"action": "FREEZE", "recipient": "bank-a"})
    assert refused.status_code == 403


def test_logout_ends_the_session(police: NodeContext, staff: dict[str, Staff]) -> None:
    client = Client(police)
    client.login(staff["officer"])
    assert client.post("/logout", {}).url.path == "/login"
    assert client.get("/police/cases").url.path == "/login"
    assert last_event(police, staff["officer"].user_id)[:2] == ("logout", "ok")


def test_an_admin_adds_a_user_whose_credentials_are_shown_once_and_work(
    police: NodeContext, staff: dict[str, Staff]
) -> None:
    client = Client(police)
    client.login(staff["admin"])
    client.get("/admin/users")
    made = client.post(
        "/admin/users", {"user_id": "new-officer", "role": "officer", "language": "zh_CN"}
    )
    assert made.status_code == 200
    password = re.search(r'id="new-password">([^<]+)<', made.text)
    secret = re.search(r'id="new-totp-secret">([^<]+)<', made.text)
    assert password and secret
    assert "new-password" not in client.get("/admin/users").text
    newcomer = Staff("new-officer", "officer", password.group(1), secret.group(1))
    welcomed = Client(police).login(newcomer)
    assert welcomed.status_code == 200
    assert "<h1>案件</h1>" in welcomed.text  # a new user reads Chinese by default


def test_a_disabled_user_is_logged_out_and_cannot_log_in(
    police: NodeContext, staff: dict[str, Staff]
) -> None:
    victim = make_staff(police, "leaver-1", "officer")
    theirs = Client(police)
    theirs.login(victim)
    admin = Client(police, theirs.app)  # the same console: its sessions
    admin.login(staff["admin"])
    admin.get("/admin/users")
    admin.post("/admin/users/leaver-1/disable", {})
    assert theirs.get("/police/cases").url.path == "/login"
    assert Client(police).login(victim).status_code == 401


def test_a_login_without_the_login_page_s_csrf_token_is_refused(
    police: NodeContext, staff: dict[str, Staff]
) -> None:
    client = Client(police)
    client.http.get("/login?lang=en")
    officer = staff["officer"]
    response = client.http.post(
        "/login",
        data={
            "csrf_token": "forged",
            "user_id": officer.user_id,
            "password": officer.password,
            "totp": officer.code(),
        },
    )
    assert response.url.path == "/login"
    assert "The login form had expired or was not ours" in response.text
    assert client.get("/police/cases").url.path == "/login"
    assert last_event(police, officer.user_id) == (
        "login",
        "refused",
        "missing or wrong CSRF token",
    )


def test_each_page_is_also_json_for_scripts_under_the_same_guard(
    police: NodeContext, staff: dict[str, Staff]
) -> None:
    admin = Client(police)
    admin.login(staff["admin"])
    listed = admin.get("/admin/users.json").json()
    ids = {u["user_id"] for u in listed["users"]}
    assert staff["officer"].user_id in ids
    assert all("password" not in key for u in listed["users"] for key in u)
    auditor = Client(police)
    auditor.login(staff["auditor"])
    assert auditor.get("/police/drafts.json").json()["waiting"] == []
    refused = auditor.get("/admin/users.json")
    assert refused.status_code == 403
    assert refused.json()["message"].startswith("Your role may not use this page")
