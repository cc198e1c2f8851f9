"""The compliance pages in-process: what a bank's and the regulator's auditors see, the
CSV export, the entry page's proof data, the dashboard, and who may not see them."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.audit.merkle import leaf_hash
from gateway.audit.tlog_proof import verify_tlog_proof
from gateway.localnet import Consortium
from nodes.runtime import NodeContext
from tests.console.compliance_net import compliance_net, whole_log
from tests.console.conftest import Client, make_staff

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def net(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Consortium, dict[str, NodeContext]]]:
    with compliance_net(tmp_path_factory.mktemp("compliance-pages")) as made:
        yield made


_made = iter(range(1, 1000))


def auditor(ctx: NodeContext, role: str = "auditor") -> Client:
    staff = make_staff(ctx, f"{role}-{next(_made)}", role)
    http = Client(ctx)
    assert http.login(staff).status_code == 200
    return http


def entry_links(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'href="/compliance/entry/(\d+)"', html)]


def test_a_bank_auditor_sees_its_own_entries_only(net: Any) -> None:
    c, ctx = net
    page = auditor(ctx["bank-a"]).get("/compliance")
    assert page.status_code == 200
    assert "C-A" in page.text and "C-A2" in page.text
    assert "C-B" not in page.text
    log = dict(whole_log(c))
    shown = entry_links(page.text)
    assert shown and all(
        "bank-a" in {log[i].get("sender"), log[i].get("recipient"), *log[i].get("recipients", [])}
        for i in shown
    )


def test_search_by_case_and_decision(net: Any) -> None:
    _c, ctx = net
    http = auditor(ctx["regulator-1"])
    page = http.get("/compliance?case=C-B-HOLD&decision=ALLOW")
    assert page.status_code == 200
    assert "C-B-HOLD" in page.text and "C-A2" not in page.text
    assert "The whole log verifies" in page.text


def test_a_bad_date_is_a_clear_error(net: Any) -> None:
    _c, ctx = net
    page = auditor(ctx["regulator-1"]).get("/compliance?since=03/12/2026")
    assert page.status_code == 400
    assert "give a date as YYYY-MM-DD" in page.text


def test_csv_export_of_a_search(net: Any) -> None:
    c, ctx = net
    response = auditor(ctx["regulator-1"]).get("/compliance/export.csv?case=C-A")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    expected = [i for i, e in whole_log(c) if e.get("case_ref") == "C-A"]
    assert [int(r["index"]) for r in rows] == expected
    assert all(r["case_ref"] == "C-A" for r in rows)


def test_the_entry_page_carries_a_proof_that_checks_out(net: Any) -> None:
    c, ctx = net
    http = auditor(ctx["bank-a"])
    index = entry_links(http.get("/compliance?case=C-A").text)[0]
    page = http.get(f"/compliance/entry/{index}")
    assert page.status_code == 200
    found = re.search(
        r'<script type="application/json" id="proof-data">(.*?)</script>', page.text, re.S
    )
    assert found
    data = json.loads(found.group(1))
    leaf = base64.b64decode(data["leaf"])
    assert json.loads(leaf) == dict(whole_log(c))[index]
    verifier = ctx["bank-a"].client.broker_note_verifier()
    assert verify_tlog_proof(data["tlogProof"], leaf_hash(leaf), [verifier]).proof.index == index
    given = ctx["bank-a"].bundle.directory_pub.read_text().strip()
    assert base64.b64decode(data["directoryKey"]) == bytes.fromhex(given)
    # The downloadable proof is a proof of the same entry (under the log's newest checkpoint).
    download = http.get(f"/compliance/entry/{index}/proof.txt").text
    assert verify_tlog_proof(download, leaf_hash(leaf), [verifier]).proof.index == index


def test_a_bank_auditor_cannot_open_another_banks_entry(net: Any) -> None:
    c, ctx = net
    other = [i for i, e in whole_log(c) if e.get("case_ref") == "C-B"]
    http = auditor(ctx["bank-a"])
    for index in other:
        page = http.get(f"/compliance/entry/{index}")
        assert page.status_code == 404
        assert "C-B" not in page.text


def test_the_dashboard_draws_its_charts(net: Any) -> None:
    _c, ctx = net
    page = auditor(ctx["regulator-1"]).get("/compliance/dashboard")
    assert page.status_code == 200
    assert page.text.count("<svg") == 4
    assert "City Police" in page.text  # messages per agency, from the signed directory
    assert "Stop-payment" in page.text  # kinds as users name them
    assert "forbid-regulator-receives-other-than-pong" in page.text  # refusals by policy


def test_officers_may_not_use_the_compliance_view(net: Any) -> None:
    _c, ctx = net
    http = auditor(ctx["bank-a"], role="officer")
    for path in (
        "/compliance",
        "/compliance/dashboard",
        "/compliance/export.csv",
        "/compliance/entry/0",
    ):
        assert http.get(path).status_code == 403, path


def test_json_twins_of_the_search_and_the_entry(net: Any) -> None:
    c, ctx = net
    http = auditor(ctx["bank-a"])
    found = http.get("/compliance.json?case=C-A").json()
    expected = [i for i, e in whole_log(c) if e.get("case_ref") == "C-A"]
    assert [row["index"] for row in found["entries"]] == sorted(expected, reverse=True)
    assert found["verification"]["ok"] is True and found["verification"]["whole_log"] is False
    index = expected[0]
    data = http.get(f"/compliance/entry/{index}.json").json()
    assert data["index"] == index and data["entry"] == dict(whole_log(c))[index]
    assert http.get("/compliance.json?since=yesterday").status_code == 400


def test_a_log_that_fails_its_checks_is_reported_not_shown(net: Any) -> None:
    from nodes.broker_client import LogIntegrityError

    _c, ctx = net
    http = auditor(ctx["bank-a"])
    client = ctx["bank-a"].client
    real = client.read_audit_proven

    def forked(*_args: Any, **_kwargs: Any) -> Any:
        raise LogIntegrityError("two checkpoints of size 9 with different roots: the log forked")

    client.read_audit_proven = forked  # type: ignore[method-assign]
    try:
        for path in ("/compliance", "/compliance/dashboard", "/compliance/entry/0"):
            page = http.get(path)
            assert page.status_code == 502, path
            assert "the log forked" in page.text and "Traceback" not in page.text
            assert 'id="proof-data"' not in page.text and "<svg" not in page.text
    finally:
        client.read_audit_proven = real  # type: ignore[method-assign]
