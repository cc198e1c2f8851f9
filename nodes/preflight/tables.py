"""The node's database: reachable, migrated, the mapped action table usable, the index current.

A wrong column name or type in `[adapter_columns]` otherwise shows only when the first
freeze runs its SQL; an index built under a rotated OPRF key only when the first query
is refused. Both are found here, before the node listens.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from alembic.util import CommandError as AlembicError
from sqlalchemy import Engine, Table, false, inspect, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import sqltypes

from gateway import migrate
from gateway.config import NodeConfig
from gateway.crypto.blinded import OprfServer
from gateway.matching.index_store import read_state
from gateway.migrate import MigrationError
from gateway.pki.keys import read_hex
from gateway.pki.store import RESPONDER_ROLES, NodeBundle
from nodes.actions import accounts, numbers
from nodes.actions.ledger import ledger_for
from nodes.index_build import build_unfinished, index_params, key_id
from nodes.preflight.checks import Check, fail, ok, skip, warn
from nodes.records import current_version

DATABASE, TABLE, INDEX = "database", "action table", "match index"
TEXT_COLUMNS = ("identifier", "status", "holder_name")
"""Compared with and set to text: account numbers keep leading zeros, E.164 has a '+'."""
LONGEST_STATUS = {"bank": len(accounts.FROZEN_STATUS), "carrier": len(numbers.SUSPENDED_STATUS)}
UPGRADE = "run `gateway db upgrade --config` with this node's file"


def _known(revision: str) -> bool:
    try:
        return migrate._scripts("node").get_revision(revision) is not None
    except AlembicError:
        return False


def check_database(engine: Engine, *, serve: bool) -> tuple[Check, bool]:
    """Reachable and at the code's migration head (`node serve` migrates it first).

    Also says whether the database can be read (the agency's own table may be checked
    in a database the gateway has not migrated yet).
    """
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not serve and path and path != ":memory:" and not Path(path).exists():
        return fail(DATABASE, f"{path} does not exist; {UPGRADE} to create it"), False
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        unknown = [r for r in migrate.current(engine, "node") if not _known(r)]
        if unknown:
            return fail(
                DATABASE,
                f"cannot be migrated: at {', '.join(unknown)}, a revision this code does not "
                "know (written by a newer gateway?); run the version that migrated it",
            ), True
        if serve:
            migrate.upgrade(engine, "node")
        at, want = migrate.current(engine, "node"), migrate.heads("node")
    except MigrationError as exc:
        return fail(DATABASE, f"cannot be migrated: {str(exc).splitlines()[0]}"), True
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        return fail(DATABASE, f"unreachable ({reason}); check `database` and the server"), False
    if set(at) != set(want):
        shown = ", ".join(at) or "no revision (never migrated)"
        return fail(DATABASE, f"at {shown}, the code needs {', '.join(want)}; {UPGRADE}"), True
    return ok(DATABASE, f"{engine.dialect.name}, migrated to {', '.join(want)}"), True


def _usable(gateway_name: str, kind: sqltypes.TypeEngine[object], role: str) -> str:
    """Why a column of this type cannot hold what the gateway writes ('' if it can)."""
    if gateway_name in TEXT_COLUMNS:
        if not isinstance(kind, sqltypes.String):
            return f"is {kind}, needs a text type (VARCHAR, TEXT)"
        length = getattr(kind, "length", None)
        if gateway_name == "status" and length is not None and length < LONGEST_STATUS[role]:
            return f"is {kind}, too short for the status values the gateway writes"
        return ""
    if isinstance(kind, sqltypes.Integer):
        return ""
    if isinstance(kind, sqltypes.Numeric) and kind.scale == 0:
        return ""
    return f"is {kind}, needs an integer type (BIGINT)"


def _mapped(config: NodeConfig) -> tuple[dict[str, str], Table]:
    """Gateway name -> column name, and the table, as the action handler will use them."""
    if config.role == "bank":
        cols = accounts.bank_columns(config.adapter_table, config.adapter_columns)
        mapped = {k: v for k, v in asdict(cols).items() if v}  # holder_name may be unmapped
        return mapped, accounts.account_table(config.adapter_table, cols)
    number_cols = numbers.NumberColumns.from_config(config.adapter_columns)
    return asdict(number_cols), numbers.number_table(config.adapter_table, number_cols)


def check_action_table(engine: Engine, config: NodeConfig) -> Check:
    """The table the action handler writes, its mapped columns and their types."""
    try:
        mapping, table = _mapped(config)
    except ValueError as exc:
        return fail(TABLE, f"{exc}; fix [adapter_columns]")
    name = table.name
    fix = "fix adapter_table" if config.adapter_table else UPGRADE
    try:
        found = inspect(engine).get_columns(name)
    except SQLAlchemyError:
        return fail(TABLE, f"table {name} does not exist in the node's database; {fix}")
    types = {c["name"]: c["type"] for c in found}
    for gateway_name, column in mapping.items():
        if column not in types:
            have = ", ".join(types)
            return fail(
                TABLE,
                f"table {name} has no column {column} (adapter_columns {gateway_name}); "
                f"its columns are {have}; fix [adapter_columns]",
            )
        problem = _usable(gateway_name, types[column], config.role)
        if problem:
            return fail(TABLE, f"{name}.{column} ({gateway_name}) {problem}; fix the mapping")
    try:  # the statement the handler runs, matching nothing: permissions, quoting, views
        with engine.connect() as conn:
            conn.execute(select(*table.c).where(false()))
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).splitlines()[0]
        return fail(TABLE, f"cannot read {name} ({reason}); grant the gateway SELECT and UPDATE")
    if config.role == "bank":
        problem = _ledger_problem(engine, config)
        if problem:
            return fail(TABLE, problem)
    return ok(TABLE, f"{name} ({', '.join(mapping.values())})")


def _ledger_problem(engine: Engine, config: NodeConfig) -> str:
    """Why the bank's ledger (built-in or `transactions_table`) cannot be used ("" if it can)."""
    try:
        table = ledger_for(config).table
    except ValueError as exc:
        return f"{exc}; fix [transaction_columns]"
    try:  # the ledger's mapped columns, read as the stop-payment check reads them
        with engine.connect() as conn:
            conn.execute(select(*table.c).where(false()))
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).splitlines()[0]
        return (
            f"cannot read the ledger {table.name} ({reason}); "
            "fix transactions_table and [transaction_columns]"
        )
    return ""


def check_index(engine: Engine, config: NodeConfig) -> Check:
    """Built under the node's current OPRF key, bucket size and label fields."""
    reindex = "run `gateway node reindex --config` with this node's file"
    try:
        server = OprfServer(read_hex(NodeBundle(config.pki_bundle).oprf_key, 32))
    except (OSError, ValueError):
        return skip(INDEX, "not checked: the bundle's OPRF key cannot be read")
    state = read_state(engine)
    records = current_version(engine)
    if state is None:
        if records:  # bulk PSI answers from the records; match queries would be refused
            return warn(INDEX, f"records are loaded but no index is built; {reindex}")
        return ok(INDEX, "no records yet; `gateway node ingest` loads them and builds it")
    if state.params.key_id != key_id(server.public_key):
        return fail(INDEX, f"built under another OPRF key (the key was rotated); {reindex}")
    wanted = index_params(server.public_key, config.match_bucket_bits, config.label_attributes)
    if state.params.format != wanted.format:
        return fail(
            INDEX,
            f"built in index format {state.params.format}, this version reads format "
            f"{wanted.format}; {reindex}",
        )
    if state.params != wanted:
        return fail(
            INDEX,
            f"built with another match_bucket_bits or label_attributes than configured; {reindex}",
        )
    if build_unfinished(state, records):
        return warn(
            INDEX,
            "a full rebuild has not finished (cut short, or running now): match queries are "
            f"refused until it has; if none is running, {reindex}",
        )
    behind = "current" if state.version >= records else "behind the records (updated on query)"
    return ok(INDEX, f"built under this node's OPRF key, {behind}")


def check_tables(engine: Engine, config: NodeConfig, *, serve: bool) -> list[Check]:
    database, readable = check_database(engine, serve=serve)
    if config.role not in RESPONDER_ROLES:
        return [database]
    if database.failed:
        waiting = "not checked: the database is not ready"
        if config.adapter_table and readable:
            return [database, check_action_table(engine, config), skip(INDEX, waiting)]
        return [database, skip(TABLE, waiting), skip(INDEX, waiting)]
    return [database, check_action_table(engine, config), check_index(engine, config)]
