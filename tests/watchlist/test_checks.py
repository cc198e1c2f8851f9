"""Watchlist checks through the real broker: banks and carriers ask, police answer blinded.

The police node's list is loaded from a CSV with `gateway watchlist load`; bank-a and
carrier-1 check with `WatchlistClient` and `gateway check`. What is listed is what the
test wrote into the CSV, never read back from the code under test.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from gateway.audit.store import AuditEntryRow
from gateway.broker.server import RunningBroker
from gateway.cli import app
from gateway.config import ConfigError
from gateway.crypto.oprf import generate_key_pair
from gateway.db import make_engine
from gateway.envelope.build import now_ms
from gateway.identifiers import IdentifierKind, InvalidIdentifier, normalise
from gateway.localnet import Consortium
from gateway.matching.index_store import read_state
from gateway.pki.keys import read_hex
from gateway.synthetic import luhn_check_digit
from gateway.v1 import watchlist_pb2 as wpb
from gateway.v1 import watchlist_pb2_grpc as wrpc
from gateway.watchlist import Advice, Listed, NotListed
from nodes.runtime import NodeContext, serve_node
from nodes.watchlist.client import WatchlistClient, WatchlistError, WrongKey
from nodes.watchlist.store import WatchlistEntry, add_entries, reindex
from tests.consortium import client, free_port, running

runner = CliRunner()

LISTED_ID = "11010519491231002X"
"""GB 11643 sample number (check digit X), listed to be refused."""
LISTED_PHONE = "+8613800138000"
LISTED_ACCOUNT = "6222020200112233445"
CSV = f"""kind,value,reason,advice,expires
id_card,{LISTED_ID},MULE_RECRUITER,refuse,
phone,{LISTED_PHONE},SCAM_CALLS,enhanced_checks,2099-12-31
bank_account,{LISTED_ACCOUNT},MULE_ACCOUNT,warn_customer,
id_card,110105194912310021,MULE_RECRUITER,refuse,
phone,+8613800138001,bad reason,refuse,
phone,+8613800138002,SCAM_CALLS,ignore,
phone,+8613800138003,SCAM_CALLS,refuse,2001-01-01
"""
NOT_LISTED_ID = "440524188001010014"
"""A valid ID number (check digit 4) that is on no list."""


@pytest.fixture(scope="module")
def log_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every log line of broker and nodes (all run in this process), at DEBUG."""
    path = tmp_path_factory.mktemp("logs") / "all.log"
    handler = logging.FileHandler(path)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    yield path
    root.removeHandler(handler)
    root.setLevel(old)
    handler.close()


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Consortium, str]:
    consortium = Consortium.create(tmp_path_factory.mktemp("watchlist"))
    bank_config = consortium.config_path("bank-a")
    bank_config.write_text(
        bank_config.read_text() + f'\nwatchlist_listen = "127.0.0.1:{free_port()}"\n'
    )
    police_config = consortium.config_path("police-1")
    police_config.write_text(
        police_config.read_text()
        + '\n[watchlist_advice]\nbank = "refuse,enhanced_checks,warn_customer"\ncarrier = "refuse"\n'
    )
    path = tmp_path_factory.mktemp("csv") / "watchlist.csv"
    path.write_text(CSV, encoding="utf-8")
    result = runner.invoke(
        app, ["watchlist", "load", str(path), "--config", str(consortium.config_path("police-1"))]
    )
    return consortium, result.output


@pytest.fixture(scope="module")
def net(
    loaded: tuple[Consortium, str], log_file: Path
) -> Iterator[tuple[Consortium, RunningBroker]]:
    consortium, _ = loaded
    with running(consortium, ("police-1", "bank-a", "carrier-1")) as (broker, _nodes):
        yield consortium, broker


@pytest.fixture(scope="module")
def bank(net: tuple[Consortium, RunningBroker]) -> Iterator[NodeContext]:
    ctx = client(net[0], "bank-a")
    yield ctx
    ctx.client.close()


@pytest.fixture(scope="module")
def checker(bank: NodeContext) -> WatchlistClient:
    return WatchlistClient(bank)


def test_load_reports_bad_rows_by_line_and_loads_the_rest(loaded: tuple[Consortium, str]) -> None:
    _, output = loaded
    flat = " ".join(output.split())
    assert "4 rows rejected" in flat
    assert "│ 5 │ invalid id_card" in flat
    assert "│ 6 │ reason code must be" in flat
    assert "│ 7 │ unknown advice level" in flat
    assert "│ 8 │ expiry is in the past" in flat
    assert "watchlist: 3 added, 0 changed, 0 unchanged, 4 rejected" in flat
    assert "error: 4 of 7 rows rejected" in flat
    for value in ("110105194912310021", "+8613800138001", "+8613800138002", "13800138003"):
        assert value not in output


def test_a_listed_id_card_is_listed_with_reason_and_advice(checker: WatchlistClient) -> None:
    result = checker.check("id_card", LISTED_ID.lower())  # the x is normalised
    assert result == Listed("MULE_RECRUITER", Advice.REFUSE)


def test_each_kind_answers_with_its_own_entry(checker: WatchlistClient) -> None:
    phone = checker.check("phone", "138 0013 8000")
    assert phone == Listed("SCAM_CALLS", Advice.ENHANCED_CHECKS, _expiry_2099())
    assert checker.check("bank_account", LISTED_ACCOUNT) == Listed(
        "MULE_ACCOUNT", Advice.WARN_CUSTOMER
    )
    # the same digits as another kind are another identifier
    assert checker.check("phone", "+8613800138009") == NotListed()


def test_an_unlisted_id_card_is_not_listed(checker: WatchlistClient) -> None:
    assert checker.check("id_card", NOT_LISTED_ID) == NotListed()


def test_a_carrier_is_shown_only_the_advice_levels_its_role_may_see(
    net: tuple[Consortium, RunningBroker], checker: WatchlistClient
) -> None:
    """The police node's watchlist_advice shows carriers "refuse" entries only: the
    enhanced-checks phone entry a bank sees answers "not listed" to the carrier."""
    ctx = client(net[0], "carrier-1")
    try:
        carrier = WatchlistClient(ctx)
        assert carrier.check("id_card", LISTED_ID) == Listed("MULE_RECRUITER", Advice.REFUSE)
        assert carrier.check("phone", LISTED_PHONE) == NotListed()
    finally:
        ctx.client.close()
    assert checker.check("phone", LISTED_PHONE) == Listed(
        "SCAM_CALLS", Advice.ENHANCED_CHECKS, _expiry_2099()
    )


def test_an_unknown_advice_level_in_the_police_configuration_is_refused_at_start(
    loaded: tuple[Consortium, str],
) -> None:
    consortium, _ = loaded
    cfg = replace(consortium.node_config("police-1"), watchlist_advice={"bank": "refuse,block"})
    with pytest.raises(ConfigError, match="watchlist_advice: bank: unknown advice level 'block'"):
        serve_node(cfg)


def _expiry_2099() -> int:
    from datetime import datetime, timedelta, timezone

    return int(datetime(2099, 12, 31, tzinfo=timezone(timedelta(hours=8))).timestamp() * 1000)


def test_concurrent_checks_are_answered_each_with_its_own_result(
    checker: WatchlistClient, bank: NodeContext
) -> None:
    values = [LISTED_ID, NOT_LISTED_ID] * 8
    sent = _sent_checks(bank)
    results: list[object] = [None] * len(values)

    def run(i: int) -> None:
        results[i] = checker.check("id_card", values[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(values))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for value, result in zip(values, results, strict=True):
        assert isinstance(result, Listed) == (value == LISTED_ID)
    # gathered into batches: fewer messages than checks (at most 4 travel at once)
    assert _sent_checks(bank) - sent < len(values)


def test_the_same_identifier_is_asked_afresh_every_time(
    checker: WatchlistClient, bank: NodeContext
) -> None:
    """No cache of the police's evaluations: each check is a message of its own."""
    sent = _sent_checks(bank)
    for _ in range(3):
        assert checker.check("id_card", LISTED_ID) == Listed("MULE_RECRUITER", Advice.REFUSE)
    assert _sent_checks(bank) - sent == 3


def test_a_malformed_identifier_is_refused_before_anything_is_sent(
    checker: WatchlistClient, bank: NodeContext
) -> None:
    sent = _sent_checks(bank)
    with pytest.raises(InvalidIdentifier, match="invalid id_card") as err:
        checker.check("id_card", "110105194912310022")  # wrong check digit
    assert "110105194912310022" not in str(err.value)
    assert _sent_checks(bank) == sent


def _sent_checks(bank: NodeContext) -> int:
    """WATCHLIST_CHECK messages in the bank's own journal of what it sent."""
    from sqlalchemy import func, select

    from nodes.journal import OutboundRow

    with bank.engine.connect() as conn:
        query = select(func.count()).where(OutboundRow.kind == "WATCHLIST_CHECK")
        return int(conn.scalar(query) or 0)


def test_cli_check_prints_listed_and_malformed_is_one_error_line(
    net: tuple[Consortium, RunningBroker],
) -> None:
    config = str(net[0].config_path("bank-a"))
    listed = runner.invoke(
        app, ["check", LISTED_ID, "--kind", "id_card", "--config", config, "-o", "json"]
    )
    assert listed.exit_code == 0, listed.output
    assert '"result": "listed"' in listed.output and '"advice": "refuse"' in listed.output
    bad = runner.invoke(app, ["check", "12345", "--kind", "id_card", "--config", config])
    assert bad.exit_code == 1
    assert bad.output.strip().startswith("error: invalid id_card")
    assert "12345" not in bad.output


def test_expired_and_removed_entries_are_not_listed_and_leave_the_index(
    net: tuple[Consortium, RunningBroker], checker: WatchlistClient
) -> None:
    consortium, _ = net
    police = consortium.node_config("police-1")
    engine = make_engine(police.database)
    key = read_hex(consortium.pki.bundle("police-1").oprf_key, 32)
    lapsing = normalise("bank_card", "6222021234567890128")
    add_entries(engine, [WatchlistEntry(lapsing, "MULE_CARD", Advice.REFUSE, now_ms() + 60_000)])
    reindex(engine, key, police.match_bucket_bits)
    assert isinstance(checker.check_identifier(lapsing), Listed)
    add_entries(engine, [WatchlistEntry(lapsing, "MULE_CARD", Advice.REFUSE, now_ms() - 1)])
    update = reindex(engine, key, police.match_bucket_bits)  # the sweep
    assert update.removed == 1
    assert checker.check_identifier(lapsing) == NotListed()

    config = str(consortium.config_path("police-1"))
    removed = runner.invoke(
        app, ["watchlist", "remove", LISTED_ACCOUNT, "--kind", "bank_account", "--config", config]
    )
    assert removed.exit_code == 0, removed.output
    assert "1 removed" in removed.output
    assert checker.check("bank_account", LISTED_ACCOUNT) == NotListed()
    again = runner.invoke(
        app, ["watchlist", "remove", LISTED_ACCOUNT, "--kind", "bank_account", "--config", config]
    )
    assert again.exit_code == 1
    assert again.output.startswith("error: that identifier is not on the watchlist")


def test_checks_above_the_hourly_quota_are_denied(
    net: tuple[Consortium, RunningBroker], checker: WatchlistClient
) -> None:
    _, broker = net
    counters = broker.broker.rates
    original = counters.clock_ms
    hour = 3_600_000
    start = (now_ms() // hour + 5) * hour + 1_000
    counters.clock_ms = lambda: start
    try:
        counters.hit("bank-a", "WATCHLIST_CHECK", 0, messages=360_000 - 1)
        assert checker.check("id_card", NOT_LISTED_ID) == NotListed()  # the 360,000th
        with pytest.raises(WatchlistError, match=r"PERMISSION_DENIED.*over-quota"):
            checker.check("id_card", NOT_LISTED_ID)
        counters.clock_ms = lambda: start + 2 * hour
        assert checker.check("id_card", NOT_LISTED_ID) == NotListed()
    finally:
        counters.clock_ms = original


def test_police_and_regulator_cannot_check(net: tuple[Consortium, RunningBroker]) -> None:
    ctx = client(net[0], "police-1")
    try:
        with pytest.raises(WatchlistError, match="only banks and carriers"):
            WatchlistClient(ctx)
    finally:
        ctx.client.close()


def test_neither_police_nor_broker_keep_the_checked_identifier(
    net: tuple[Consortium, RunningBroker], checker: WatchlistClient, log_file: Path
) -> None:
    consortium, _ = net
    typed = "440524 18800101 0014"
    secret = normalise(IdentifierKind.ID_CARD, typed)
    assert checker.check("id_card", typed) == NotListed()
    needles = {
        typed.encode(),
        secret.value.encode(),
        secret.canonical_input(),
        secret.value.encode("utf-16-le"),
        secret.value[:14].encode(),  # without the last digits
    }
    files = [
        *consortium.root.glob("police-1.db*"),
        *consortium.root.glob("broker.db*"),
        log_file,
    ]
    assert any(f.name == "police-1.db" for f in files) and any(f.name == "broker.db" for f in files)
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, f"{path.name} holds the checked identifier"
    assert b"watchlist check" in log_file.read_bytes()  # the police did log the check
    # the same search finds what the police node does hold: its watchlist
    police_files = b"".join(p.read_bytes() for p in consortium.root.glob("police-1.db*"))
    assert LISTED_ID.encode() in police_files


def test_an_answer_under_another_key_is_refused(
    net: tuple[Consortium, RunningBroker], checker: WatchlistClient
) -> None:
    """The police node answers under a key the directory does not list: the checker refuses."""
    consortium, _ = net
    police = consortium.node_config("police-1")
    key_file = Path(consortium.pki.bundle("police-1").oprf_key)
    registered = key_file.read_text()
    engine = make_engine(police.database)
    other, _public = generate_key_pair()
    key_file.write_text(other.hex() + "\n")
    try:
        reindex(engine, other, police.match_bucket_bits)
        assert read_state(engine) is not None
        with pytest.raises(
            WrongKey, match=r"OPRF key other than the one the signed directory lists"
        ):
            checker.check("id_card", LISTED_ID)
        result = runner.invoke(
            app,
            [
                "check",
                LISTED_ID,
                "--kind",
                "id_card",
                "--config",
                str(consortium.config_path("bank-a")),
            ],
        )
        assert result.exit_code == 1
        # The in-process broker's log lines may share the captured stream; the CLI's own
        # output is its one error line.
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and errors[0].startswith("error: wrong key:"), result.output
        assert "Traceback" not in result.output
    finally:
        key_file.write_text(registered)
        reindex(engine, read_hex(key_file, 32), police.match_bucket_bits)
    assert checker.check("id_card", LISTED_ID) == Listed("MULE_RECRUITER", Advice.REFUSE)


def test_the_banks_own_systems_check_through_its_local_grpc_service(
    net: tuple[Consortium, RunningBroker],
) -> None:
    listen = net[0].node_config("bank-a").watchlist_listen
    with grpc.insecure_channel(listen) as channel:
        stub = wrpc.WatchlistStub(channel)
        listed = stub.Check(wpb.WatchlistCheckRequest(kind="id_card", value=LISTED_ID), timeout=20)
        assert (listed.listed, listed.reason, listed.advice) == (True, "MULE_RECRUITER", "refuse")
        clear = stub.Check(
            wpb.WatchlistCheckRequest(kind="id_card", value=NOT_LISTED_ID), timeout=20
        )
        assert not clear.listed and clear.reason == ""
        with pytest.raises(grpc.RpcError) as err:
            stub.Check(wpb.WatchlistCheckRequest(kind="id_card", value="12345"), timeout=20)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "12345" not in (err.value.details() or "")


@pytest.mark.parametrize("listen", ["0.0.0.0:7001", "10.1.2.3:7001", "bank.example:7001"])
def test_a_non_local_watchlist_listen_is_refused_at_start(
    loaded: tuple[Consortium, str], listen: str
) -> None:
    consortium, _ = loaded
    cfg = replace(consortium.node_config("bank-a"), watchlist_listen=listen)
    with pytest.raises(ConfigError, match="watchlist_listen must be a loopback address"):
        serve_node(cfg)


def test_every_check_is_audited_with_who_when_and_how_many_never_what(
    net: tuple[Consortium, RunningBroker], checker: WatchlistClient, bank: NodeContext
) -> None:
    consortium, _ = net
    sent = _sent_checks(bank)
    started = now_ms()
    checker.check_many([normalise("id_card", LISTED_ID), normalise("id_card", NOT_LISTED_ID)])
    assert _sent_checks(bank) == sent + 1
    engine = make_engine(consortium.broker_database)
    with engine.connect() as conn:
        leaves = conn.scalars(select(AuditEntryRow.leaf).where(AuditEntryRow.at_ms >= started))
        entries = [json.loads(leaf) for leaf in leaves]
    checks = [e for e in entries if e.get("kind") == "WATCHLIST_CHECK"]
    answers = [e for e in entries if e.get("kind") == "WATCHLIST_ANSWER"]
    assert checks and answers, entries
    last = checks[-1]
    assert last["sender"] == "bank-a" and last["recipients"] == ["police-1"]
    assert last["batch_size"] == 2 and last["decision"] == "ALLOW"
    text = json.dumps(entries)
    assert LISTED_ID not in text and NOT_LISTED_ID not in text


def test_cli_add_and_list_and_their_mistakes(net: tuple[Consortium, RunningBroker]) -> None:
    consortium, _ = net
    config = str(consortium.config_path("police-1"))
    card = "622202555566667777" + luhn_check_digit("622202555566667777")
    add = ["watchlist", "add", card, "--kind", "bank_card", "--reason", "MULE_CARD"]
    bad = runner.invoke(app, [*add, "--advice", "block", "--config", config])
    assert bad.exit_code == 1
    assert bad.output.strip() == (
        "error: unknown advice level; expected one of: refuse, enhanced_checks, "
        "warn_customer; nothing was changed"
    )
    not_police = runner.invoke(
        app,
        ["watchlist", "list", "--config", str(consortium.config_path("bank-a"))],
    )
    assert not_police.exit_code == 1
    assert not_police.output.startswith("error: bank-a is a bank node; the watchlist is held")
    added = runner.invoke(
        app, [*add, "--advice", "warn_customer", "--expires", "2099-01-01", "--config", config]
    )
    assert added.exit_code == 0, added.output
    assert "watchlist: 1 added" in added.output
    listed = runner.invoke(
        app, ["watchlist", "list", "--kind", "bank_card", "--config", config, "-o", "json"]
    )
    rows = json.loads(listed.output)
    assert [(r["identifier"], r["reason"], r["advice"]) for r in rows] == [
        (card, "MULE_CARD", "warn_customer")
    ]
