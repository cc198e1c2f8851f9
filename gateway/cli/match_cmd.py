"""`gateway node reindex` and `gateway query`: targeted matching (ingest: ingest_cmd.py).

A responder loads its records and keeps its match index current; police ask one or all
responders of a role whether they hold given identifiers. Identifiers typed by the user
are shown back on the user's own terminal only; errors name positions and line numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from gateway.cli.common import console, fail, node_config
from gateway.config import NodeConfig
from gateway.matching.index_build import IndexUpdate

__all__ = ["query", "reindex"]


@contextmanager
def _progress_bar(label: str) -> Iterator[Progress]:
    with Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("records"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        yield progress


def _index(cfg: NodeConfig) -> IndexUpdate:
    """Update the responder's index with a progress bar."""
    from gateway import migrate
    from gateway.db import make_engine
    from gateway.pki.keys import read_hex
    from gateway.pki.store import NodeBundle
    from nodes.matching import refresh_index

    engine = make_engine(cfg.database)
    migrate.upgrade(engine, "node")
    try:
        private_key = read_hex(NodeBundle(cfg.pki_bundle).oprf_key, 32)
    except (OSError, ValueError) as exc:
        fail(f"cannot read the node's OPRF key: {exc}")
    with _progress_bar("indexing") as progress:
        task = progress.add_task("index", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        update = refresh_index(engine, cfg, private_key, advance)
    what = "rebuilt" if update.rebuilt else "updated"
    console.print(
        f"match index {what}: {update.indexed} records (re)indexed, {update.removed} removed, "
        f"at record version {update.version}"
    )
    return update


def _responder_config(config: Path) -> NodeConfig:
    from nodes.matching import RESPONDER_ROLES

    cfg = node_config(config)
    if cfg.role not in RESPONDER_ROLES:
        fail(f"{cfg.node_id} is a {cfg.role} node; only banks and carriers hold records")
    return cfg


def reindex(config: Path = typer.Option(..., help="The bank's or carrier's TOML file.")) -> None:
    """Bring the match index up to date (rebuilt if key, bucket size or labels changed)."""
    _index(_responder_config(config))


def query(
    values: list[str] = typer.Argument(None, help="Identifiers to look for."),
    config: Path = typer.Option(..., help="The police node's TOML file."),
    kind: str = typer.Option(..., "--kind", help="phone, id_card, bank_card or bank_account."),
    file: Path | None = typer.Option(None, "--file", help="More identifiers: one per line."),
    to: list[str] = typer.Option([], "--to", help="Responder node id (repeatable)."),
    role: str | None = typer.Option(None, "--role", help="Ask every responder: bank or carrier."),
    case: str = typer.Option(..., "--case", help="Case reference."),
    basis: str = typer.Option(..., "--basis", help="Legal basis of the query."),
    purpose: str = typer.Option("targeted match", "--purpose"),
) -> None:
    """Ask responders whether they hold the identifiers; print what they hold as a table."""
    from gateway.identifiers import (
        IdentifierKind,
        InvalidIdentifier,
        UnknownIdentifierKind,
        normalise,
    )
    from gateway.ingest_csv import IngestError, read_identifiers
    from gateway.matching.errors import MatchError
    from nodes.matching import query_responders, responders_of
    from nodes.runtime import open_node

    cfg = node_config(config)
    if bool(to) == bool(role):
        fail("name the responders with --to NODE (repeatable) or --role bank|carrier, not both")
    try:
        parsed_kind = IdentifierKind.parse(kind)
    except UnknownIdentifierKind as exc:
        fail(str(exc))
    shown: list[str] = []
    identifiers = []
    problems: list[str] = []
    for position, raw in enumerate(values or [], start=1):
        try:
            identifiers.append(normalise(parsed_kind, raw, default_region=cfg.default_region))
            shown.append(raw)
        except InvalidIdentifier as exc:
            problems.append(f"value #{position}: {exc}")
    if file is not None:
        try:
            loaded = read_identifiers(file, parsed_kind, default_region=cfg.default_region)
        except (IngestError, OSError) as exc:
            fail(f"{file}: {exc}")
        problems.extend(f"{file} line {row.line}: {row.reason}" for row in loaded.rejected)
        identifiers.extend(loaded.identifiers)
        shown.extend(i.value for i in loaded.identifiers)
    if problems:
        for problem in problems:
            console.print(f"[red]{problem}[/]")
        fail(f"{len(problems)} identifiers are not valid; nothing was sent")
    if not identifiers:
        fail("give at least one identifier, as an argument or with --file")

    ctx = open_node(cfg)
    try:
        recipients = list(to) or responders_of(ctx.client.directory(), role or "")
        if not recipients:
            fail(f"the directory lists no active {role} with a match key")
        outcomes = query_responders(
            ctx, identifiers, recipients, case_ref=case, legal_basis=basis, purpose=purpose
        )
    except MatchError as exc:
        fail(exc.reason)
    finally:
        ctx.client.close()

    table = Table(
        title=f"case {case}: {len(identifiers)} identifiers, {len(recipients)} responders"
    )
    table.add_column("identifier")
    table.add_column("responder")
    table.add_column("handle")
    table.add_column("label")
    found = 0
    for outcome in outcomes:
        for match in outcome.matches:
            found += 1
            fields = dict(match.fields)
            handle = fields.pop("handle", "")
            details = ", ".join(f"{k}={v}" for k, v in sorted(fields.items()))
            table.add_row(shown[match.position], outcome.node_id, handle, details)
    console.print(table)
    failed = [o for o in outcomes if not o.ok]
    for outcome in outcomes:
        if outcome.ok:
            console.print(f"{outcome.node_id}: {len(outcome.matches)} matches")
        elif outcome.key_mismatch:
            console.print(f"[bold red]{outcome.node_id}: WRONG KEY: {outcome.error}[/]")
        else:
            console.print(f"[red]{outcome.node_id}: {outcome.error}[/]")
    console.print(f"{found} matches")
    if failed:
        raise typer.Exit(1)
