"""The police desk's watchlist page, in process: add, refuse a bad entry, list, remove.

An entry added on the page is indexed at once (the index's live rows are counted in
the police node's database); the staff trail names the reason and advice, never the
identifier.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.localnet import Consortium
from gateway.matching.index_store import MatchIndexRow
from nodes.runtime import NodeContext
from nodes.staff.trail import recent
from tests.console.conftest import Client, make_staff
from tests.consortium import running

LISTED = "11010519491231002X"
_made = itertools.count(1)


@pytest.fixture(scope="module")
def police(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeContext]:
    root: Path = tmp_path_factory.mktemp("console-watchlist")
    c = Consortium.create(root, (("police-1", "police", "City Police"), ("bank-a", "bank", "A")))
    with running(c, ("police-1",)) as (_broker, nodes):
        yield nodes["police-1"].ctx


def logged_in(ctx: NodeContext, role: str) -> Client:
    client = Client(ctx)
    staff = make_staff(ctx, f"{role}-w{next(_made)}", role)
    assert client.login(staff).status_code == 200
    return client


def indexed(ctx: NodeContext) -> int:
    with ctx.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(MatchIndexRow)) or 0)


def test_an_officer_adds_lists_and_removes_an_entry(police: NodeContext) -> None:
    officer = logged_in(police, "officer")
    officer.get("/police/watchlist")
    before = indexed(police)
    added = officer.post(
        "/police/watchlist",
        {
            "kind": "id_card",
            "value": LISTED.lower(),
            "reason": "MULE_RECRUITER",
            "advice": "refuse",
        },
    )
    assert added.status_code == 200
    assert "The entry is on the watchlist and indexed." in added.text
    assert indexed(police) == before + 1
    listing = json.loads(officer.get("/police/watchlist.json").text)
    rows = [e for e in listing["entries"] if e["value"] == LISTED]
    assert rows and rows[0]["reason"] == "MULE_RECRUITER" and rows[0]["advice"] == "refuse"

    officer.get("/police/watchlist")
    removed = officer.post("/police/watchlist/remove", {"kind": "id_card", "value": LISTED})
    assert "The entry was removed from the watchlist." in removed.text
    assert indexed(police) == before
    trail = " ".join(f"{e.event} {e.detail}" for e in recent(police.engine, 50))
    assert "watchlist.add" in trail and "watchlist.remove" in trail
    assert "MULE_RECRUITER" in trail
    assert LISTED not in trail and LISTED[:14] not in trail


def test_a_bad_entry_is_refused_and_nothing_is_changed(police: NodeContext) -> None:
    officer = logged_in(police, "officer")
    officer.get("/police/watchlist")
    before = indexed(police)
    bad = officer.post(
        "/police/watchlist",
        {"kind": "id_card", "value": "110105194912310022", "reason": "MULE", "advice": "refuse"},
    )
    assert bad.status_code == 400
    assert "invalid id_card" in bad.text and "Nothing was changed" in bad.text
    officer.get("/police/watchlist")
    reason = officer.post(
        "/police/watchlist",
        {"kind": "phone", "value": "+8613800138000", "reason": "lower case", "advice": "refuse"},
    )
    assert reason.status_code == 400 and "reason code must be" in reason.text
    assert indexed(police) == before


def test_an_auditor_reads_but_may_not_change_the_list(police: NodeContext) -> None:
    auditor = logged_in(police, "auditor")
    page = auditor.get("/police/watchlist")
    assert page.status_code == 200 and 'id="watchlist-add"' not in page.text
    refused = auditor.post(
        "/police/watchlist",
        {"kind": "id_card", "value": LISTED, "reason": "MULE_RECRUITER", "advice": "refuse"},
    )
    assert refused.status_code == 403
