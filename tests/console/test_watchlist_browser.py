"""The police desk's watchlist page in Chromium: an officer lists an ID number, sees it in
the list, and removes it; the page passes the console's accessibility checks and is
screenshot at both widths (test-output/screenshots/watchlist-*.png).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.console.server import ConsoleServer
from gateway.localnet import Consortium
from nodes.runtime import NodeContext
from tests.console.conftest import check_accessible, make_staff, shoot
from tests.consortium import running

pytestmark = pytest.mark.slow
LISTED = "11010519491231002X"


@pytest.fixture(scope="module")
def console(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ConsoleServer, NodeContext]]:
    root: Path = tmp_path_factory.mktemp("console-watchlist-browser")
    c = Consortium.create(root, (("police-1", "police", "City Police"), ("bank-a", "bank", "A")))
    with running(c, ("police-1",)) as (_broker, nodes):
        server = ConsoleServer(nodes["police-1"].ctx, "127.0.0.1:0")
        try:
            yield server, nodes["police-1"].ctx
        finally:
            server.stop()


def test_an_officer_lists_and_removes_an_id_number(
    browser: Any, console: tuple[ConsoleServer, NodeContext]
) -> None:
    server, ctx = console
    staff = make_staff(ctx, "officer-wb1", "officer", "en")
    page = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB").new_page()
    page.goto(f"{server.url}/login")
    page.fill("#user_id", staff.user_id)
    page.fill("#password", staff.password)
    page.fill("#totp", staff.code())
    with page.expect_navigation():
        page.click("#login-button")

    page.goto(f"{server.url}/police/watchlist")
    check_accessible(page)
    page.select_option("#kind", "id_card")
    page.fill("#value", LISTED)
    page.fill("#reason", "MULE_RECRUITER")
    page.select_option("#advice", "refuse")
    with page.expect_navigation():
        page.click("#watchlist-add-button")
    assert "on the watchlist and indexed" in page.inner_text(".flash")
    row = page.locator("#watchlist-entries tr", has_text=LISTED)
    assert row.count() == 1 and "MULE_RECRUITER" in row.inner_text()
    shoot(page, "watchlist-police-desk")

    with page.expect_navigation():
        row.locator("button[type=submit]").click()
    assert "removed from the watchlist" in page.inner_text(".flash")
    assert page.locator("#watchlist-entries tr", has_text=LISTED).count() == 0
