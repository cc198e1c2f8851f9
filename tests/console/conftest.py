"""Fixtures of the console tests: consortia, staff accounts, logged-in clients, Chromium.

Browser tests drive Debian's Chromium through Playwright (never `playwright install`).
They skip, saying why, where /usr/bin/chromium is missing on a developer's machine, and
fail in CI (CI=true), where .ci/run installs it.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
from starlette.testclient import TestClient

from gateway.console.app import create_app
from nodes.runtime import NodeContext
from nodes.staff.accounts import NewCredentials, add_user

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
WIDTHS = (1280, 800)


@dataclass
class Staff:
    """A user the test made, with what it needs to log in."""

    user_id: str
    role: str
    password: str
    totp_secret: str

    def code(self, at: float | None = None) -> str:
        return pyotp.TOTP(self.totp_secret).at(at if at is not None else time.time())


def make_staff(ctx: NodeContext, user_id: str, role: str, language: str = "en") -> Staff:
    made: NewCredentials = add_user(
        ctx.engine, user_id, role, display_name=user_id.title(), language=language, by="test"
    )
    return Staff(user_id, role, made.password, made.totp_secret)


def next_step_code(staff: Staff, used: set[str]) -> str:
    """A code not used before: waits for the next 30 s step if this one's was (TOTP
    codes are single-use, so a second login in the same step needs the next code)."""
    while True:
        code = staff.code()
        if (staff.user_id, code) not in used:
            used.add((staff.user_id, code))  # type: ignore[arg-type]
            return code
        time.sleep(1)


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


class Client:
    """An in-process HTTP client of one console, with login and form posting."""

    def __init__(self, ctx: NodeContext, app: Any = None, **settings: Any) -> None:
        self.app = app if app is not None else create_app(ctx, **settings)
        self.http = TestClient(self.app, follow_redirects=True)
        self.token = ""

    def login(self, staff: Staff, code: str | None = None, password: str | None = None) -> Any:
        page = self.http.get("/login?lang=en")
        response = self.http.post(
            "/login",
            data={
                "csrf_token": csrf_of(page.text),
                "user_id": staff.user_id,
                "password": staff.password if password is None else password,
                "totp": code if code is not None else staff.code(),
            },
        )
        if response.status_code == 200:
            self.token = csrf_of(response.text)
        return response

    def get(self, path: str) -> Any:
        response = self.http.get(path)
        if "csrf_token" in response.text:
            self.token = csrf_of(response.text)
        return response

    def post(self, path: str, data: dict[str, str], csrf: bool = True, **kw: Any) -> Any:
        body = {**data, "csrf_token": self.token} if csrf else data
        return self.http.post(path, data=body, **kw)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium from Debian's package, driven by Playwright."""
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing in CI: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium to run the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield launched
        finally:
            launched.close()


def shoot(page: Any, name: str) -> None:
    """Screenshots of the page at 1280 and 800 px wide, for people to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} scrolls sideways at {width} px ({overflow} px too wide)"
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})


UNLABELLED = """() => Array.from(document.querySelectorAll(
    'input:not([type=hidden]), select, textarea')).filter(el => {
    if (el.getAttribute('aria-label')) return false;
    if (el.id && document.querySelector('label[for="' + el.id + '"]')) return false;
    return !el.closest('label');
}).map(el => el.name || el.id || el.outerHTML.slice(0, 60))"""


def check_accessible(page: Any) -> None:
    """Basic checks: one h1, every input labelled, the page in a declared language."""
    assert page.locator("h1").count() == 1, f"{page.url} has not exactly one h1"
    assert page.evaluate(UNLABELLED) == [], f"{page.url} has inputs without a label"
    assert page.evaluate("document.documentElement.lang") in ("zh-CN", "en")
