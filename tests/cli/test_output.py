"""`--output table|json|csv`: tables fit 80 columns without cutting ids; exports use ISO UTC.

A real consortium (broker, police, bank over mTLS, SQLite): freeze requests are issued
through the CLI, then listed, looked up by id prefix and found in the audit log,
including a request the broker's policy denies, whose reason the search shows.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from gateway.cli import app
from gateway.localnet import Consortium
from nodes.actions.police import ActionRequestRow
from nodes.staff.accounts import add_user
from tests.actions.seed import seed_accounts
from tests.consortium import client, running

runner = CliRunner()
ACCOUNT = "6222020200112233445"
PASSWORD = "a password long enough"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Consortium]:
    c = Consortium.create(tmp_path_factory.mktemp("output"))
    seed_accounts(c, "bank-a", {ACCOUNT: 1_000_000}, frozenset())
    with running(c, ("police-1", "bank-a")):
        yield c


@pytest.fixture(autouse=True)
def eighty_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")


@pytest.fixture(scope="module")
def password(net: Consortium, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An officer and an approver on the police node, without TOTP, and their password."""
    police = client(net, "police-1")
    police.client.close()
    add_user(police.engine, "o-1", "officer", password=PASSWORD, totp=False)
    add_user(police.engine, "o-2", "approver", password=PASSWORD, totp=False)
    path = tmp_path_factory.mktemp("staff") / "pw"
    path.write_text(PASSWORD + "\n")
    return path


def freeze(net: Consortium, password: Path, case: str, *extra: str) -> str:
    """Drafted by o-1, approved by o-2: what the approval printed."""
    config = str(net.config_path("police-1"))
    login = ["--password-file", str(password), "--totp", ""]
    draft = runner.invoke(
        app,
        [
            "freeze",
            "draft",
            ACCOUNT,
            "--config",
            config,
            "--to",
            "bank-a",
            "--amount",
            "1.00",
            "--case",
            case,
            "--basis",
            "a long legal basis, art. 143",
            "--as",
            "o-1",
            *login,
            *extra,
        ],
    )
    assert draft.exit_code == 0, draft.output
    draft_id = draft.stdout.split("drafted ")[1].split(":")[0]
    approved = runner.invoke(
        app, ["freeze", "approve", draft_id, "--config", config, "--as", "o-2", *login]
    )
    return approved.stdout + approved.stderr


def journal(net: Consortium) -> list[ActionRequestRow]:
    police = client(net, "police-1")
    police.client.close()
    with Session(police.engine) as s:
        return list(s.query(ActionRequestRow).order_by(ActionRequestRow.requested_at_ms))


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def test_freeze_list_fits_80_columns_and_exports_iso_times(net: Consortium, password: Path) -> None:
    case = "CASE-WITH-A-LONG-REFERENCE-2026-000123"
    for _ in range(2):
        assert "stored by the broker" in freeze(net, password, case)
    rows = [r for r in journal(net) if r.case_ref == case]
    config = str(net.config_path("police-1"))
    table = runner.invoke(app, ["freeze", "list", "--config", config, "--case", case])
    assert table.exit_code == 0, table.output
    assert all(len(line) <= 80 for line in table.stdout.splitlines()), table.stdout
    for row in rows:
        assert row.request_id in table.stdout, "the id freeze status needs is shown whole"
    as_json = runner.invoke(app, ["freeze", "list", "--config", config, "-o", "json"])
    listed = {r["request_id"]: r for r in json.loads(as_json.stdout)}
    for row in rows:
        assert listed[row.request_id]["requested_at"] == iso(row.requested_at_ms)
        assert listed[row.request_id]["case_ref"] == case
    as_csv = runner.invoke(app, ["freeze", "list", "--config", config, "-o", "csv"])
    records = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    by_id = {r["request_id"]: r for r in records}
    assert by_id[rows[0].request_id]["requested_at"] == iso(rows[0].requested_at_ms)


def test_request_ids_by_unique_prefix(net: Consortium, password: Path) -> None:
    assert "stored by the broker" in freeze(net, password, "C-PREFIX")
    row = next(r for r in journal(net) if r.case_ref == "C-PREFIX")
    config = str(net.config_path("police-1"))
    found = runner.invoke(app, ["freeze", "status", row.request_id[:10], "--config", config])
    assert found.exit_code == 0, found.output
    assert f"request {row.request_id}" in found.stdout
    police = client(net, "police-1")
    police.client.close()
    with Session(police.engine) as s:  # two journal rows sharing a prefix
        for n in (1, 2):
            s.add(
                ActionRequestRow(
                    request_id=f"zz00{n}",
                    recipient="bank-a",
                    action="FREEZE",
                    case_ref="C-Z",
                    requested_at_ms=1,
                )
            )
        s.commit()
    ambiguous = runner.invoke(app, ["freeze", "status", "zz00", "--config", config])
    assert ambiguous.exit_code == 1
    assert ambiguous.stderr == (
        "error: request id prefix zz00 matches 2 requests; give more characters\n"
    )


def test_audit_search_shows_why_a_request_was_denied(net: Consortium, password: Path) -> None:
    """A stop-payment may last 48 hours at most: the broker denies a longer one, and the
    search says why."""
    refused = freeze(net, password, "C-DENIED", "--hours", "49")
    assert "error: the broker refused the request: policy: " in refused, refused
    pki = str(net.root / "pki")
    common = ["audit", "search", "--case", "C-DENIED", "--database", net.broker_database]
    result = runner.invoke(app, [*common, "--pki", pki, "-o", "json"])
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)
    denied = [e for e in entries if e["decision"] == "DENY"]
    assert denied and all(e["reason"] for e in denied), entries
    assert all(e["at"].endswith("Z") and "T" in e["at"] for e in entries)
    table = runner.invoke(app, [*common, "--pki", pki])
    assert "DENY" in table.stdout and all(len(x) <= 80 for x in table.stdout.splitlines())
