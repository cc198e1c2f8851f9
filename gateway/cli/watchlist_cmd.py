"""`gateway watchlist ...` (police) and `gateway check` (banks, carriers): the watchlist.

Police list identifiers with a reason and an advice level; banks and carriers check an
identifier against the list through the broker, blinded. Identifiers the user typed are
shown back on the user's own terminal only; logs and errors name lines and counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from gateway.cli.common import console, fail, node_config
from gateway.cli.output import OUTPUT, Column, Output, render
from gateway.config import NodeConfig

if TYPE_CHECKING:
    from gateway.identifiers import Identifier
    from nodes.index_build import IndexUpdate

__all__ = ["app", "check"]

app = typer.Typer(no_args_is_help=True, help="The police watchlist: add, remove, load, list.")

POLICE_CONFIG = typer.Option(..., "--config", help="The police node's TOML file.")
KIND = typer.Option(..., "--kind", help="phone, id_card, bank_card or bank_account.")


def _police_config(config: Path) -> NodeConfig:
    cfg = node_config(config)
    if cfg.role != "police":
        fail(f"{cfg.node_id} is a {cfg.role} node; the watchlist is held by the police node")
    return cfg


def _identifier(cfg: NodeConfig, kind: str, value: str) -> Identifier:
    from gateway.identifiers import InvalidIdentifier, UnknownIdentifierKind, normalise

    try:
        return normalise(kind, value, default_region=cfg.default_region)
    except (InvalidIdentifier, UnknownIdentifierKind) as exc:
        fail(f"{exc}; nothing was changed")


def _reindex(cfg: NodeConfig) -> IndexUpdate:
    from gateway.db import make_engine
    from gateway.pki.keys import read_hex
    from gateway.pki.store import NodeBundle
    from nodes.watchlist.store import reindex

    try:
        private_key = read_hex(NodeBundle(cfg.pki_bundle).oprf_key, 32)
    except (OSError, ValueError) as exc:
        fail(f"cannot read the police node's OPRF key: {exc}")
    update = reindex(make_engine(cfg.database), private_key, cfg.match_bucket_bits)
    console.print(
        f"watchlist index {'rebuilt' if update.rebuilt else 'updated'}: {update.indexed} "
        f"entries (re)indexed, {update.removed} removed"
    )
    return update


def _engine(cfg: NodeConfig):  # type: ignore[no-untyped-def]
    from gateway import migrate
    from gateway.db import make_engine

    engine = make_engine(cfg.database)
    migrate.upgrade(engine, "node")
    return engine


@app.command("add")
def add(
    value: str = typer.Argument(..., help="The identifier to list."),
    kind: str = KIND,
    reason: str = typer.Option(..., "--reason", help="Reason code, e.g. MULE_ACCOUNT."),
    advice: str = typer.Option(..., "--advice", help="refuse, enhanced_checks or warn_customer."),
    expires: str = typer.Option("", "--expires", help="Date (2027-01-31) or ISO 8601 time."),
    by: str = typer.Option("", "--by", help="Who lists it (kept with the entry)."),
    config: Path = POLICE_CONFIG,
) -> None:
    """List one identifier (or change the terms of a listed one), and index it."""
    from gateway.envelope.build import now_ms
    from gateway.watchlist import Advice, EntryError, check_reason
    from gateway.watchlist.ingest import parse_expiry
    from nodes.watchlist.store import WatchlistEntry, add_entries

    cfg = _police_config(config)
    identifier = _identifier(cfg, kind, value)
    try:
        entry = WatchlistEntry(
            identifier,
            check_reason(reason),
            Advice.parse(advice),
            parse_expiry(expires, now_ms()),
            listed_by=by,
        )
    except EntryError as exc:
        fail(f"{exc}; nothing was changed")
    result = add_entries(_engine(cfg), [entry])
    console.print(f"watchlist: {result.added} added, {result.changed} changed")
    _reindex(cfg)


@app.command("remove")
def remove(
    value: str = typer.Argument(..., help="The identifier to take off the list."),
    kind: str = KIND,
    config: Path = POLICE_CONFIG,
) -> None:
    """Take one identifier off the watchlist; its index row goes with it."""
    from nodes.watchlist.store import remove_entries

    cfg = _police_config(config)
    identifier = _identifier(cfg, kind, value)
    removed = remove_entries(_engine(cfg), [identifier])
    if not removed:
        fail("that identifier is not on the watchlist; nothing was changed")
    console.print("watchlist: 1 removed")
    _reindex(cfg)


@app.command("load")
def load(
    file: Path = typer.Argument(..., help="CSV: kind,value,reason,advice[,expires]."),
    config: Path = POLICE_CONFIG,
    encoding: str = typer.Option("utf-8-sig", "--encoding", help="e.g. gbk or gb18030."),
) -> None:
    """Load a CSV of entries: bad rows are listed by line and reason, the rest loaded."""
    from rich.table import Table

    from gateway.envelope.build import now_ms
    from gateway.ingest_csv import IngestError
    from gateway.watchlist.ingest import read_watchlist
    from nodes.watchlist.store import WatchlistEntry, add_entries

    cfg = _police_config(config)
    try:
        read = read_watchlist(
            file, now_ms=now_ms(), default_region=cfg.default_region, encoding=encoding
        )
    except (IngestError, OSError) as exc:
        fail(f"{file}: {exc}")
    if read.rejected:
        table = Table(title=f"{len(read.rejected)} rows rejected (not loaded)")
        table.add_column("line", justify="right")
        table.add_column("reason")
        for row in read.rejected:
            table.add_row(str(row.line), row.reason)
        console.print(table)
    entries = [
        WatchlistEntry(
            r.identifier, r.reason, r.advice, r.expires_ms, listed_by=f"load:{file.name}"
        )
        for r in read.rows
    ]
    result = add_entries(_engine(cfg), entries)
    console.print(
        f"watchlist: {result.added} added, {result.changed} changed, {result.unchanged} "
        f"unchanged, {len(read.rejected)} rejected"
    )
    _reindex(cfg)
    if read.rejected:
        total = len(read.rows) + len(read.rejected)
        fail(
            f"{len(read.rejected)} of {total} rows rejected (listed above); the other rows "
            "were loaded: fix those rows and load the file again"
        )


LIST_COLUMNS = (
    Column("kind", rank=2),
    Column("identifier", keep=True),
    Column("reason", rank=3),
    Column("advice", rank=3),
    Column("expires", time=True, rank=1),
    Column("listed_by", rank=0),
)


@app.command("list")
def list_(
    kind: str | None = typer.Option(None, "--kind", help="Only this kind."),
    config: Path = POLICE_CONFIG,
    output: Output = OUTPUT,
) -> None:
    """The entries on the watchlist (on this terminal only: it shows identifiers)."""
    from gateway.identifiers import IdentifierKind, UnknownIdentifierKind
    from nodes.watchlist.store import list_entries

    cfg = _police_config(config)
    try:
        only = IdentifierKind.parse(kind) if kind else None
    except UnknownIdentifierKind as exc:
        fail(str(exc))
    rows: list[dict[str, object]] = [
        {
            "kind": e.identifier.kind.value,
            "identifier": e.identifier.value,
            "reason": e.reason,
            "advice": e.advice.value,
            "expires": e.expires_ms or 0,
            "listed_by": e.listed_by,
        }
        for e in list_entries(_engine(cfg), only)
    ]
    render(rows, LIST_COLUMNS, output, title=f"watchlist: {len(rows)} entries")


@app.command("reindex")
def reindex_cmd(config: Path = POLICE_CONFIG) -> None:
    """Remove expired entries and bring the watchlist index up to date."""
    cfg = _police_config(config)
    _engine(cfg)
    _reindex(cfg)


def check(
    value: str = typer.Argument(..., help="The identifier to check."),
    kind: str = KIND,
    config: Path = typer.Option(..., "--config", help="The bank's or carrier's TOML file."),
    police: str | None = typer.Option(None, "--police", help="The police node, if several."),
    output: Output = OUTPUT,
) -> None:
    """Check an identifier against the police watchlist, blinded: listed or not listed.

    Exits 0 either way; 1 with an `error:` line if no usable answer came back.
    """
    from gateway.watchlist import Listed
    from nodes.runtime import open_node
    from nodes.watchlist.client import WatchlistClient, WatchlistError, WrongKey

    cfg = node_config(config)
    identifier = _identifier(cfg, kind, value)
    if cfg.role not in ("bank", "carrier"):
        fail(f"{cfg.node_id} is a {cfg.role} node; only banks and carriers check the watchlist")
    ctx = open_node(cfg)
    try:
        result = WatchlistClient(ctx, police=police, window_s=0).check_identifier(identifier)
    except WrongKey as exc:
        fail(f"wrong key: {exc.reason}")
    except WatchlistError as exc:
        fail(exc.reason)
    finally:
        ctx.client.close()
    row: dict[str, object] = {"identifier": value, "result": "not listed"}
    if isinstance(result, Listed):
        row.update(
            result="listed",
            reason=result.reason,
            advice=result.advice.value,
            expires=result.expires_ms or 0,
        )
    render(
        [row],
        (
            Column("identifier", keep=True),
            Column("result", keep=True),
            Column("reason", rank=2),
            Column("advice", keep=True),
            Column("expires", time=True, rank=1),
        ),
        output,
    )
