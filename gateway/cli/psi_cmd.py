"""`gateway psi` and `gateway psi-offers ...`: bulk PSI with another node, and what we offer.

The querier's own identifiers that are in the intersection are printed on its own
operator's terminal only (they are its own records); errors never show an identifier.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Engine

from gateway.bulk_psi.plan import DEFAULT_CHUNK_SIZE, DEFAULT_MAX_SET_SIZE, MAX_CHUNK_SIZE
from gateway.cli.common import console, fail, node_config

__all__ = ["offers_app", "psi"]

offers_app = typer.Typer(
    no_args_is_help=True, help="The sets this node offers for bulk PSI (none by default)."
)


def _engine(config: Path) -> tuple[str, Engine]:
    """The node's id and its database, migrated to the current schema."""
    from gateway import migrate
    from gateway.db import make_engine

    cfg = node_config(config)
    engine = make_engine(cfg.database)
    migrate.upgrade(engine, "node")
    return cfg.node_id, engine


def _selection(pairs: list[str]) -> dict[str, str]:
    selection: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            fail("--where takes attribute=value, e.g. --where flag=mule")
        selection[key.strip()] = value.strip()
    return selection


def psi(
    config: Path = typer.Option(..., help="This node's TOML file."),
    peer: str = typer.Option(..., "--with", help="The node to match with, e.g. carrier-1."),
    kind: str = typer.Option(..., help="phone, id_card, bank_card or bank_account."),
    where: list[str] = typer.Option(
        [], "--where", help="attribute=value selecting this node's set (repeatable)."
    ),
    cardinality_only: bool = typer.Option(
        False, "--cardinality-only", help="Learn only how many are in common, not which."
    ),
    case: str = typer.Option(..., "--case", help="Case reference."),
    basis: str = typer.Option(..., "--basis", help="Legal basis."),
    purpose: str = typer.Option("bulk PSI", "--purpose"),
    their_set: str = typer.Option(
        "", "--their-set", help="The set the other node offers (default: the kind's name)."
    ),
    chunk_size: int = typer.Option(DEFAULT_CHUNK_SIZE, "--chunk-size", min=1, max=MAX_CHUNK_SIZE),
    max_size: int = typer.Option(
        DEFAULT_MAX_SET_SIZE, "--max-size", min=1, help="Refuse larger sets on either side."
    ),
) -> None:
    """Private set intersection of this node's records with another node's offered set."""
    from gateway.bulk_psi import BulkPsiError, Mode
    from gateway.identifiers import IdentifierKind, UnknownIdentifierKind
    from nodes.bulk_psi import run_psi
    from nodes.runtime import open_node

    cfg = node_config(config)
    try:
        parsed_kind = IdentifierKind.parse(kind)
    except UnknownIdentifierKind as exc:
        fail(str(exc))
    selection = _selection(where)
    mode = Mode.CARDINALITY if cardinality_only else Mode.INTERSECTION
    ctx = open_node(cfg)
    try:
        with Progress(
            TextColumn(f"[bold]PSI with {peer}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("exchanges"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("psi", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            outcome = run_psi(
                ctx,
                peer=peer,
                kind=parsed_kind,
                where=selection,
                case_ref=case,
                legal_basis=basis,
                purpose=purpose,
                mode=mode,
                responder_set=their_set or None,
                chunk_size=chunk_size,
                max_set_size=max_size,
                progress=advance,
            )
    except BulkPsiError as exc:
        fail(f"bulk PSI failed: {exc.reason}")
    finally:
        ctx.client.close()

    result = outcome.result
    summary = (
        f"{result.cardinality} in common: {result.querier_size} here, "
        f"{result.responder_size} at {peer} ({result.exchanges} exchanges, case {case})"
    )
    console.print(summary)
    if outcome.matches is None:
        return
    table = Table(title=f"in common with {peer}")
    table.add_column("#", justify="right")
    table.add_column("kind")
    table.add_column("identifier")
    for number, identifier in enumerate(outcome.matches, start=1):
        table.add_row(str(number), identifier.kind.value, identifier.value)
    console.print(table)


@offers_app.command("add")
def add_offer(
    config: Path = typer.Option(..., help="This node's TOML file."),
    kind: str = typer.Option(..., help="phone, id_card, bank_card or bank_account."),
    where: list[str] = typer.Option(
        [], "--where", help="attribute=value a record needs to be in the set (repeatable)."
    ),
    name: str = typer.Option("", "--name", help="The name queriers ask for (default: the kind)."),
    max_size: int = typer.Option(DEFAULT_MAX_SET_SIZE, "--max-size", min=1),
    role: list[str] = typer.Option([], "--role", help="Only these roles may ask (repeatable)."),
    cardinality_only: bool = typer.Option(False, "--cardinality-only"),
) -> None:
    """Offer a set for bulk PSI (replacing an offer of the same name)."""
    from gateway.bulk_psi import BulkPsiError, save_offer
    from gateway.identifiers import IdentifierKind, UnknownIdentifierKind

    node_id, engine = _engine(config)
    try:
        parsed_kind = IdentifierKind.parse(kind)
        offer = save_offer(
            engine,
            name or parsed_kind.value,
            parsed_kind,
            _selection(where),
            max_set_size=max_size,
            roles=role,
            cardinality_only=cardinality_only,
        )
    except (UnknownIdentifierKind, BulkPsiError) as exc:
        fail(str(exc))
    console.print(f"{node_id} offers {offer.name!r} for bulk PSI")


@offers_app.command("list")
def list_offers(config: Path = typer.Option(..., help="This node's TOML file.")) -> None:
    """Show the sets this node offers."""
    from gateway.bulk_psi import list_offers as offers

    node_id, engine = _engine(config)
    table = Table(title=f"bulk PSI offers of {node_id}")
    for column in ("name", "kind", "where", "max size", "roles", "cardinality only"):
        table.add_column(column)
    for offer in offers(engine):
        table.add_row(
            offer.name,
            offer.kind.value,
            ", ".join(f"{k}={v}" for k, v in sorted(offer.where.items())) or "(all)",
            str(offer.max_set_size),
            ", ".join(sorted(offer.roles)) or "(any allowed by policy)",
            "yes" if offer.cardinality_only else "no",
        )
    console.print(table)


@offers_app.command("remove")
def remove(
    name: str = typer.Argument(..., help="The offer's name."),
    config: Path = typer.Option(..., help="This node's TOML file."),
) -> None:
    """Stop offering a set (sessions already open run to their end)."""
    from gateway.bulk_psi import remove_offer

    node_id, engine = _engine(config)
    if not remove_offer(engine, name):
        fail(f"{node_id} has no offer named {name!r}")
    console.print(f"{node_id} no longer offers {name!r}")
