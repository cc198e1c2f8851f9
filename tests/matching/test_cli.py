"""`gateway node ingest` and `gateway query` as an operator and an officer use them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.localnet import Consortium
from tests.consortium import running

runner = CliRunner()

HELD = "+8613912345678"
HELD_TYPED = "139 1234 5678"
CSV = f"""kind,value,record_id,status,holder_name
phone,{HELD},C1,ACTIVE,王伟
phone,12345,C2,ACTIVE,李娜
phone,+8613987654321,C3,SUSPENDED,张敏
fax,+8613911112222,C4,ACTIVE,刘洋
phone,+8613955556666,C5,ACTIVE
"""


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Consortium]:
    consortium = Consortium.create(tmp_path_factory.mktemp("match-cli"))
    with running(consortium, ("carrier-1", "bank-a")):
        yield consortium


def config(net: Consortium, node_id: str) -> str:
    return str(net.config_path(node_id))


@pytest.fixture(scope="module")
def ingested(net: Consortium, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("csv") / "subscribers.csv"
    path.write_text(CSV, encoding="utf-8")
    result = runner.invoke(app, ["node", "ingest", str(path), "--config", config(net, "carrier-1")])
    assert result.exit_code == 1, result.output  # rows were rejected: a script must notice
    assert result.output.strip().splitlines()[-1] == (
        "error: 3 of 5 rows rejected (listed above); the other rows were loaded: fix those "
        "rows and load the file again (--strict loads nothing when a row is bad)"
    )
    return result.output


def flat(output: str) -> str:
    """Output with rich's line wrapping undone."""
    return " ".join(output.split())


def test_ingest_reports_every_rejected_row_without_its_value(ingested: str) -> None:
    assert "3 rows rejected" in ingested
    assert "│    3 │ invalid phone: not a valid number for its country" in ingested
    assert "│    5 │ unknown identifier kind 'fax'" in ingested
    assert "│    6 │ row has 4 fields, header has 5" in ingested
    for value in ("12345", "+8613911112222", "+8613955556666"):
        assert value not in ingested
    assert "records: 2 added, 0 changed, 0 unchanged, 3 rejected" in ingested
    assert "match index rebuilt: 2 records (re)indexed" in ingested


def test_ingest_again_updates_the_index_incrementally(net: Consortium, tmp_path: Path) -> None:
    path = tmp_path / "more.csv"
    path.write_text(f"kind,value,record_id,status\nphone,{HELD},C1,SUSPENDED\n", encoding="utf-8")
    result = runner.invoke(app, ["node", "ingest", str(path), "--config", config(net, "carrier-1")])
    assert result.exit_code == 0, result.output
    assert "records: 0 added, 1 changed" in result.output
    assert "match index updated: 1 records (re)indexed, 0 removed" in result.output
    path.write_text(f"kind,value,record_id,status\nphone,{HELD},C1,ACTIVE\n", encoding="utf-8")
    result = runner.invoke(app, ["node", "ingest", str(path), "--config", config(net, "carrier-1")])
    assert result.exit_code == 0, result.output


def test_ingest_is_for_responders_only(net: Consortium, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("kind,value\n", encoding="utf-8")
    result = runner.invoke(app, ["node", "ingest", str(path), "--config", config(net, "police-1")])
    assert result.exit_code == 1
    assert "only banks and carriers hold records" in result.output


@pytest.mark.usefixtures("ingested")
def test_query_prints_matches_as_a_table(net: Consortium, tmp_path: Path) -> None:
    listing = tmp_path / "numbers.txt"
    listing.write_text("# suspects\n+8613987654321\n", encoding="utf-8")
    args = ["query", "--config", config(net, "police-1"), "--kind", "phone", HELD_TYPED]
    args += ["+8613000000000", "--file", str(listing), "--role", "carrier"]
    result = runner.invoke(app, [*args, "--case", "CASE-1", "--basis", "CPL art. 143"])
    assert result.exit_code == 0, result.output
    assert HELD_TYPED in result.output, "the officer sees what they typed"
    assert "record_id=C1" in result.output and "status=ACTIVE" in result.output
    assert "record_id=C3" in result.output and "status=SUSPENDED" in result.output
    assert "王伟" not in result.output, "holder_name is not a label attribute"
    summary = "2 matches, 1 identifiers absent from every responder that answered (1 of 1 answered)"
    assert summary in result.output
    counts = [x for x in result.output.splitlines() if " INFO " not in x and "matches" in x]
    assert counts == [summary], "the match count is printed once"
    assert "absent" in result.output
    as_json = runner.invoke(
        app, [*args, "--case", "CASE-1", "--basis", "CPL art. 143", "--output", "json"]
    )
    assert as_json.exit_code == 0, as_json.output
    rows = json.loads(as_json.stdout)
    assert {r["identifier"]: r["result"] for r in rows} == {
        HELD_TYPED: "match",
        "+8613000000000": "absent",
        "+8613987654321": "match",
    }
    assert all(r["handle"] for r in rows if r["result"] == "match")
    assert "filter version" in result.output and "chunks pulled" in result.output
    bucket = runner.invoke(
        app,
        [
            *args,
            "--case",
            "CASE-1",
            "--basis",
            "CPL art. 143",
            "--mode",
            "bucket",
            "--output",
            "json",
        ],
    )
    assert bucket.exit_code == 0, bucket.output
    assert json.loads(bucket.stdout) == rows, "both modes find the same matches"


def test_query_refuses_malformed_identifiers_and_sends_nothing(net: Consortium) -> None:
    args = ["query", "--config", config(net, "police-1"), "--kind", "phone", HELD, "12345"]
    result = runner.invoke(app, [*args, "--to", "carrier-1", "--case", "C", "--basis", "B"])
    assert result.exit_code == 1
    assert "value #2: invalid phone: not a valid number for its country" in flat(result.output)
    assert "nothing was sent" in flat(result.output)
    assert "12345" not in result.output


def test_query_needs_exactly_one_way_to_name_responders(net: Consortium) -> None:
    args = ["query", "--config", config(net, "police-1"), "--kind", "phone", HELD]
    result = runner.invoke(app, [*args, "--case", "C", "--basis", "B"])
    assert result.exit_code == 1
    assert "--to NODE (repeatable) or --role bank|carrier" in flat(result.output)


def test_a_responder_without_an_index_is_reported(net: Consortium) -> None:
    args = ["query", "--config", config(net, "police-1"), "--kind", "phone", HELD]
    bucket = ["--mode", "bucket", "--to", "bank-a", "--case", "C", "--basis", "B"]
    result = runner.invoke(app, [*args, *bucket])
    assert result.exit_code == 1
    assert (
        "bank-a: no answer: bank-a: FAILED_PRECONDITION match: this node has no match index yet"
        in flat(result.output)
    )
    result = runner.invoke(app, [*args, "--to", "bank-a", "--case", "C", "--basis", "B"])
    assert result.exit_code == 1
    assert (
        "bank-a: filter sync failed: no answer: bank-a: FAILED_PRECONDITION filter: this node "
        "has no match index yet; run `gateway node ingest`" in flat(result.output)
    )


ACCOUNTS_CSV = """kind,value,record_id,status,holder_name,balance_minor
bank_account,6222020200112233445,A1,ACTIVE,王伟,120000
bank_account,6222020200998877665,A2,ACTIVE,李娜,5000
"""


def bank_b_state(net: Consortium) -> tuple[int, list[dict[str, str]]]:
    """bank-b's record version and its records' attributes (empty if it has no database)."""
    from gateway.db import make_engine
    from nodes.records import current_version, live_records

    database = net.node_config("bank-b").database
    if not Path(database).exists():
        return 0, []
    engine = make_engine(database)
    try:
        return current_version(engine), [r.attribute_map() for r in live_records(engine)]
    finally:
        engine.dispose()


def test_ingest_dry_run_checks_the_file_and_writes_nothing(net: Consortium, tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text(ACCOUNTS_CSV, encoding="utf-8")
    args = ["node", "ingest", str(path), "--config", config(net, "bank-b"), "--dry-run"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "dry run: 2 rows would be loaded, 0 rejected; nothing written" in flat(result.output)
    assert bank_b_state(net) == (0, [])
    path.write_text(ACCOUNTS_CSV + "bank_account,12,A3,ACTIVE,张敏,1\n", encoding="utf-8")
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        "error: dry run: 2 rows would be loaded, 1 rejected; nothing written"
    )
    assert bank_b_state(net) == (0, [])


def test_ingest_strict_loads_nothing_when_a_row_is_bad(net: Consortium, tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv"
    bad_balance = "bank_account,6222020200555544443,A3,ACTIVE,张敏,12.50\n"
    path.write_text(ACCOUNTS_CSV + bad_balance, encoding="utf-8")
    before = bank_b_state(net)
    args = ["node", "ingest", str(path), "--config", config(net, "bank-b"), "--strict"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "│    4 │ balance_minor is not a whole number of minor units" in result.output
    assert result.output.strip().splitlines()[-1] == (
        "error: 1 of 3 rows rejected; nothing loaded (--strict)"
    )
    assert bank_b_state(net) == before


def test_ingest_reads_a_gbk_export_given_its_encoding(net: Consortium, tmp_path: Path) -> None:
    path = tmp_path / "accounts-gbk.csv"
    path.write_bytes(ACCOUNTS_CSV.encode("gbk"))
    args = ["node", "ingest", str(path), "--config", config(net, "bank-b")]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "or give its encoding (e.g. --encoding gbk)" in result.output.strip().splitlines()[-1]
    result = runner.invoke(app, [*args, "--encoding", "gbk"])
    assert result.exit_code == 0, result.output
    names = sorted(attributes["holder_name"] for attributes in bank_b_state(net)[1])
    assert names == sorted(["王伟", "李娜"])
    result = runner.invoke(app, [*args, "--encoding", "klingon"])
    assert result.exit_code == 1
    assert "unknown encoding 'klingon'" in result.output.strip().splitlines()[-1]


def test_filters_sync_pulls_each_responders_filter_and_names_those_that_fail(
    net: Consortium, ingested: str
) -> None:
    police = config(net, "police-1")
    result = runner.invoke(app, ["node", "filters", "--config", police, "--sync"])
    out = flat(result.output)
    assert "carrier-1: filter version" in out and ", 2 tags (" in out, result.output
    assert "bank-a: no answer: bank-a: FAILED_PRECONDITION filter: this node has no match" in out
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("error: the filters of ") and "bank-a" in last
    assert last.endswith("could not be synced (reasons above)")
    listed = runner.invoke(app, ["node", "filters", "--config", police, "--output", "json"])
    assert listed.exit_code == 0, listed.output
    rows = {row["responder"]: row for row in json.loads(listed.stdout)}
    assert rows["carrier-1"]["version"] > 0 and "bank-a" not in rows
