"""`gateway node check` and `node serve` catch each deployment mistake before listening.

Each test injects one mistake a bank or carrier integration team makes (a wrong column,
a certificate of another node, an index under a rotated OPRF key, a key in the wrong
TOML section, ...) into a real consortium: real PKI, a broker serving over mTLS, the
node's database on SQLite and on PostgreSQL. `node check` must print a FAIL line and
a final `error:` line naming the problem, and `node serve` must refuse to start with
the same message, before its port is bound.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import socket
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner, Result

from gateway import migrate
from gateway.cli import app
from gateway.config import NodeConfig, load_config
from gateway.crypto.oprf import generate_key_pair
from gateway.identifiers import Identifier, IdentifierKind
from gateway.localnet import DEFAULT_NODES, Consortium
from gateway.pki import ca
from gateway.pki.keys import read_hex
from nodes.matching import refresh_index
from nodes.preflight.calendar import check_calendar
from nodes.records import upsert_records
from nodes.runtime import serve_node
from tests.consortium import running
from tests.postgres import Databases, opened

runner = CliRunner()
NODES = (*DEFAULT_NODES, ("bank-r", "bank", "Bank R"))
OWN_TABLE = """
CREATE TABLE core_accounts (
    acct_no VARCHAR(32) PRIMARY KEY,
    state VARCHAR(16) NOT NULL,
    bal_fen BIGINT NOT NULL,
    hold_fen BIGINT,
    hold_until BIGINT,
    branch TEXT,
    opened DATE
)
"""
COLUMNS = """
[adapter_columns]
identifier = "acct_no"
status = "state"
balance_minor = "bal_fen"
held_minor = "hold_fen"
hold_expires_at_ms = "hold_until"
"""


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory, databases: Databases) -> Iterator[Consortium]:
    c = Consortium.create(
        tmp_path_factory.mktemp("check"),
        NODES,
        database_urls=databases.for_consortium(NODES),
    )
    for node in ("bank-a", "bank-r", "carrier-1", "police-1"):
        with opened(c.node_config(node).database) as engine:
            migrate.upgrade(engine, "node")
    with opened(c.node_config("bank-a").database) as engine, engine.begin() as conn:
        conn.execute(text(OWN_TABLE))
    c.pki.revoke("bank-r")
    # carrier-1 indexes a record, then its OPRF key is rotated: the index is stale.
    carrier = c.node_config("carrier-1")
    with opened(carrier.database) as engine:
        phone = Identifier(IdentifierKind.PHONE, "+8613812345678")
        upsert_records(engine, [(phone, {"status": "active"})])
        refresh_index(engine, carrier, read_hex(c.pki.bundle("carrier-1").oprf_key, 32))
    c.pki.rotate("carrier-1", oprf=True, oprf_key_factory=generate_key_pair)
    with running(c, ()):
        yield c


def variant(net: Consortium, node: str, tmp_path: Path, edit: str = "", add: str = "") -> Path:
    """The node's configuration with `edit` lines replacing keys and `add` appended."""
    lines = net.config_path(node).read_text().splitlines()
    changes = dict(line.split(" = ", 1) for line in edit.strip().splitlines() if line)
    kept = [
        f"{line.split(' = ')[0]} = {changes.pop(line.split(' = ')[0])}"
        if line.split(" = ")[0] in changes
        else line
        for line in lines
    ]
    kept += [f"{key} = {value}" for key, value in changes.items()]
    path = tmp_path / f"{node}.toml"
    path.write_text("\n".join(kept) + "\n" + add)
    return path


def own_table(net: Consortium, tmp_path: Path, columns: str = COLUMNS) -> Path:
    return variant(net, "bank-a", tmp_path, 'adapter_table = "core_accounts"', columns)


def port_is_free(config: Path) -> bool:
    listen = tomllib.loads(config.read_text())["listen"]
    host, port = listen.rsplit(":", 1)
    with socket.socket() as s:
        try:
            s.bind((host, int(port)))
        except OSError:
            return False
    return True


def serve(config: Path) -> Result:
    """`gateway node serve` in this process, with the test's log handlers put back after:
    the command points the root logger at the runner's stderr, closed once it returns."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return runner.invoke(app, ["node", "serve", "--dev", "--config", str(config)])
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def refused(config: Path, message: str) -> None:
    """`node check` fails naming `message`, and `node serve` refuses with it, unbound."""
    checked = runner.invoke(app, ["node", "check", "--config", str(config)])
    assert checked.exit_code == 1, checked.output
    lines = checked.output.strip().splitlines()
    assert lines[-1].startswith("error: "), lines
    assert message in lines[-1], lines
    assert any(line.startswith("FAIL ") and message in line for line in lines), lines
    assert "Traceback" not in checked.output
    served = serve(config)
    assert served.exit_code == 1, served.output
    error = served.output.strip().splitlines()[-1]
    assert error.startswith("error: ") and message in error, served.output
    assert port_is_free(config)


def test_a_good_configuration_passes_and_serves(net: Consortium, tmp_path: Path) -> None:
    config = own_table(net, tmp_path)
    checked = runner.invoke(app, ["node", "check", "--config", str(config)])
    assert checked.exit_code == 0, checked.output
    names = [line.split(":")[0] for line in checked.output.splitlines()[:-1]]
    assert names == [
        "OK   configuration",
        "OK   PKI bundle",
        "WARN key storage",  # the test consortium's keys are plain files
        "OK   broker and directory",
        "OK   directory membership",
        "OK   policy",
        "OK   database",
        "OK   action table",
        "OK   match index",
    ]
    assert "all checks passed" in checked.output
    node = serve_node(load_config(NodeConfig, config))
    try:
        assert not port_is_free(config)
    finally:
        node.stop(0)


def test_a_misspelt_column(net: Consortium, tmp_path: Path) -> None:
    config = own_table(net, tmp_path, COLUMNS.replace('"bal_fen"', '"bal_fenn"'))
    refused(config, "table core_accounts has no column bal_fenn (adapter_columns balance_minor)")


def test_a_column_of_the_wrong_type(net: Consortium, tmp_path: Path) -> None:
    config = own_table(net, tmp_path, COLUMNS.replace('"hold_until"', '"branch"'))
    refused(config, "core_accounts.branch (hold_expires_at_ms) is TEXT, needs an integer type")


def test_a_missing_table(net: Consortium, tmp_path: Path) -> None:
    config = variant(net, "bank-a", tmp_path, 'adapter_table = "core_acounts"', COLUMNS)
    refused(config, "table core_acounts does not exist in the node's database")


def test_a_database_never_migrated_fails_the_check(
    net: Consortium, databases: Databases, tmp_path: Path
) -> None:
    url = databases.url("empty")
    with opened(url) as engine, engine.connect() as conn:
        conn.execute(text("SELECT 1"))  # exists, holds nothing
    config = variant(net, "bank-a", tmp_path, f'database = "{url}"')
    checked = runner.invoke(app, ["node", "check", "--config", str(config)])
    assert checked.exit_code == 1
    assert "FAIL database: at no revision (never migrated), the code needs" in checked.output
    assert "run `gateway db upgrade --config`" in checked.output.splitlines()[-1]


def test_a_missing_sqlite_file_is_named_and_not_created(net: Consortium, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.db"
    edit = f'database = "{missing}"\nadapter_table = "core_accounts"'
    config = variant(net, "bank-a", tmp_path, edit, COLUMNS)
    checked = runner.invoke(app, ["node", "check", "--config", str(config)])
    assert checked.exit_code == 1
    assert f"FAIL database: {missing} does not exist; run `gateway db upgrade" in checked.output
    assert "SKIP action table: not checked: the database is not ready" in checked.output
    assert not missing.exists()


def test_a_database_the_code_cannot_migrate(
    net: Consortium, databases: Databases, tmp_path: Path
) -> None:
    url = databases.url("newer")
    with opened(url) as engine, engine.begin() as conn:  # written by a newer gateway
        conn.execute(text("CREATE TABLE alembic_version_node (version_num VARCHAR(32))"))
        conn.execute(text("INSERT INTO alembic_version_node VALUES ('9999')"))
    config = variant(net, "bank-a", tmp_path, f'database = "{url}"')
    refused(config, "database: cannot be migrated")


def test_a_certificate_of_another_node(net: Consortium, tmp_path: Path) -> None:
    bundle = net.pki.bundle("bank-b").folder
    config = variant(net, "bank-a", tmp_path, f'pki_bundle = "{bundle}"')
    refused(config, "the certificate names bank-b, not bank-a")


def test_an_expired_certificate(
    net: Consortium, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(net.pki.bundle("bank-a").folder, bundle)
    issued_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    monkeypatch.setattr(ca, "_now", lambda: issued_at)  # a certificate issued a month ago
    expired = ca.issue_node_certificate(net.pki.ca(), net.name, "bank-a", days=7)
    monkeypatch.undo()
    (bundle / "tls.crt").write_bytes(expired.cert_pem)
    (bundle / "tls.key").write_bytes(expired.key_pem)
    config = variant(net, "bank-a", tmp_path, f'pki_bundle = "{bundle}"')
    refused(config, "PKI bundle: the certificate expired on")


def test_a_revoked_member(net: Consortium, tmp_path: Path) -> None:
    refused(variant(net, "bank-r", tmp_path), "the broker refused this node (UNAUTHENTICATED)")


def test_an_index_built_under_the_old_oprf_key(net: Consortium, tmp_path: Path) -> None:
    refused(variant(net, "carrier-1", tmp_path), "match index: built under another OPRF key")


def test_a_key_uncommented_into_the_columns_table(net: Consortium, tmp_path: Path) -> None:
    config = own_table(net, tmp_path, COLUMNS + "match_workers = 2\n")
    refused(config, "match_workers is under [adapter_columns]; move it above the")


def test_an_unknown_key(net: Consortium, tmp_path: Path) -> None:
    config = variant(net, "bank-a", tmp_path, "match_worker = 2")
    refused(config, "unknown keys match_worker (did you mean match_workers?)")


def test_an_unknown_column_key(net: Consortium, tmp_path: Path) -> None:
    config = own_table(net, tmp_path, COLUMNS + 'balance = "bal_fen"\n')
    refused(config, "[adapter_columns] unknown keys balance (did you mean balance_minor?)")


def test_a_holiday_calendar_that_does_not_load(net: Consortium, tmp_path: Path) -> None:
    (tmp_path / "holidays.toml").write_text('[2027]\nholidays = ["1 Jan"]\n')
    config = variant(net, "police-1", tmp_path, 'holiday_calendar = "holidays.toml"')
    refused(config, "[2027] holidays: '1 Jan' is not a date")


@pytest.mark.parametrize(
    ("today", "listed", "status", "named"),
    [
        (dt.date(2026, 11, 30), "2026", "OK", "lists 2026"),
        (dt.date(2026, 12, 1), "2026", "WARN", "does not list 2027"),
        (dt.date(2026, 12, 1), "2026, 2027", "OK", "lists 2026, 2027"),
        (dt.date(2027, 3, 1), "2026", "WARN", "does not list 2027"),
    ],
)
def test_a_police_node_warns_from_december_without_next_years_schedule(
    net: Consortium, tmp_path: Path, today: dt.date, listed: str, status: str, named: str
) -> None:
    years = "".join(f"[{y}]\nholidays = []\n" for y in listed.split(", "))
    (tmp_path / "holidays.toml").write_text(years)
    config = variant(net, "police-1", tmp_path, 'holiday_calendar = "holidays.toml"')
    check = check_calendar(load_config(NodeConfig, config), today)
    assert check is not None and check.status == status and named in check.detail
    bank = check_calendar(load_config(NodeConfig, own_table(net, tmp_path)), today)
    assert bank is None  # only a police node counts return deadlines


def test_serve_warns_but_starts_without_the_broker(
    net: Consortium, databases: Databases, tmp_path: Path
) -> None:
    config = variant(net, "police-1", tmp_path, 'broker_endpoint = "127.0.0.1:1"')
    checked = runner.invoke(app, ["node", "check", "--config", str(config)])
    assert checked.exit_code == 1
    assert "FAIL broker and directory: broker broker at 127.0.0.1:1 is unreachable" in (
        checked.output
    )
    node = serve_node(load_config(NodeConfig, config))
    node.stop(0)


def test_the_template_keeps_match_keys_out_of_the_columns_table(tmp_path: Path) -> None:
    """Uncommenting every line of the rendered template leaves each key where it belongs."""
    from gateway.node_config_template import render

    for role in ("bank", "carrier", "police"):
        rendered = render(
            node="n", role=role, listen="l", broker="b", bundle=Path("/p"), database="d"
        )
        uncommented = "\n".join(
            line[2:] if line.startswith("# ") and " = " in line else line
            for line in rendered.splitlines()
        )
        tables = ("adapter_columns", "transaction_columns", "inquiry_columns", "inquiry_fields")
        for table in tables:
            uncommented = uncommented.replace(f"# [{table}]", f"[{table}]")
        path = tmp_path / f"{role}.toml"
        path.write_text(uncommented)
        cfg = load_config(NodeConfig, path)
        assert cfg.match_workers == 0 and cfg.match_bucket_bits == 16
        assert (
            set(cfg.adapter_columns)
            == {
                "bank": {
                    "identifier",
                    "status",
                    "balance_minor",
                    "held_minor",
                    "hold_expires_at_ms",
                    "holder_name",
                },
                "carrier": {"identifier", "status"},
                "police": set(),
            }[role]
        )
        if role == "police":
            assert cfg.freeze_warning_hours == 168 and cfg.return_working_days == 3
            assert cfg.holiday_calendar == tmp_path / "holidays.toml"
        else:
            assert set(cfg.inquiry_fields) == {"police"} and "id_number" in cfg.inquiry_columns
            if role == "bank":
                assert cfg.transaction_columns["amount_minor"] == "fen"


def test_records_without_an_index_warn_since_bulk_psi_still_works(
    net: Consortium, tmp_path: Path
) -> None:
    with opened(net.node_config("bank-b").database) as engine:
        migrate.upgrade(engine, "node")
        account = Identifier(IdentifierKind.BANK_ACCOUNT, "6222020200112233445")
        upsert_records(engine, [(account, {"status": "active"})])
    checked = runner.invoke(app, ["node", "check", "--config", str(net.config_path("bank-b"))])
    assert checked.exit_code == 0, checked.output
    assert "WARN match index: records are loaded but no index is built; run `gateway node " in (
        checked.output
    )


def test_an_index_of_an_older_format_fails_the_check(net: Consortium, tmp_path: Path) -> None:
    """Format 1 rows (HKDF tags, JSON labels) would never match a version 2 query."""
    config = net.node_config("bank-a")
    with opened(config.database) as engine:
        account = Identifier(IdentifierKind.BANK_ACCOUNT, "6222020200112233445")
        upsert_records(engine, [(account, {"status": "active"})])
        refresh_index(engine, config, read_hex(net.pki.bundle("bank-a").oprf_key, 32))
        with engine.begin() as conn:
            conn.execute(text("UPDATE match_index_state SET format = 1"))
    try:
        refused(own_table(net, tmp_path), "match index: built in index format 1")
    finally:
        with opened(config.database) as engine, engine.begin() as conn:
            conn.execute(text("UPDATE match_index_state SET format = 2"))


def test_an_unfinished_rebuild_warns_that_queries_are_refused(
    net: Consortium, tmp_path: Path
) -> None:
    """A reindex killed part-way: the node still serves (bulk PSI, actions), and says why
    its match queries are refused."""
    config = net.node_config("bank-a")
    with opened(config.database) as engine:
        account = Identifier(IdentifierKind.BANK_ACCOUNT, "6222020200112233445")
        upsert_records(engine, [(account, {"status": "active"})])
        refresh_index(engine, config, read_hex(net.pki.bundle("bank-a").oprf_key, 32))
        with engine.begin() as conn:
            conn.execute(text("UPDATE match_index_state SET version = 0"))
    try:
        checked = runner.invoke(app, ["node", "check", "--config", str(net.config_path("bank-a"))])
        assert checked.exit_code == 0, checked.output
        assert (
            "WARN match index: a full rebuild has not finished (cut short, or running now): "
            "match queries are refused until it has; if none is running, run `gateway node "
            "reindex" in " ".join(checked.output.split())
        )
    finally:
        with opened(config.database) as engine:
            refresh_index(engine, config, read_hex(net.pki.bundle("bank-a").oprf_key, 32))
