"""`gateway node reindex` and `gateway query`: targeted matching (ingest: ingest_cmd.py).

A responder loads its records and keeps its match index current; police ask one or all
responders of a role whether they hold given identifiers. Identifiers typed by the user
are shown back on the user's own terminal only; errors name positions and line numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from gateway.cli.common import console, err_console, fail, node_config
from gateway.cli.output import OUTPUT, Column, Output, render
from gateway.config import NodeConfig
from nodes.index_build import IndexUpdate

if TYPE_CHECKING:
    from gateway.identifiers import Identifier
    from nodes.matching import ResponderOutcome
    from nodes.runtime import NodeContext

__all__ = ["filters", "query", "reindex"]


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


def filters(
    config: Path = typer.Option(..., help="The police node's TOML file."),
    sync: bool = typer.Option(
        False, "--sync", help="First bring every responder's filter up to date (progress shown)."
    ),
    output: Output = OUTPUT,
) -> None:
    """Filter mode: the responders' filters this node holds, and syncs under way."""
    from gateway.db import make_engine
    from gateway.matching.filter_store import sync_status

    cfg = node_config(config)
    if cfg.role != "police":
        fail(f"{cfg.node_id} is a {cfg.role} node; only police nodes hold responders' filters")
    from sqlalchemy.exc import SQLAlchemyError

    if sync:
        _sync_every_filter(cfg)

    try:
        rows = sync_status(make_engine(cfg.database))
    except SQLAlchemyError:
        fail(
            f"cannot read the filter tables of {cfg.node_id}'s database: "
            f"run `gateway db upgrade --config {config}` first"
        )
    columns = [
        Column("responder", "Responder", keep=True),
        Column("version", "Version"),
        Column("bytes", "Bytes"),
        Column("updated_at", "Updated", time=True),
        Column("transfer", "Transfer under way", fold=True),
    ]
    render(rows, columns, output, title="Responders' filters")


def _sync_every_filter(cfg: NodeConfig) -> None:
    """Sync each active responder's filter, one line per chunk and per responder."""
    from nodes.filter_police import FilterModeError, sync_filter
    from nodes.matching import RESPONDER_ROLES, responders_of
    from nodes.runtime import open_node

    ctx = open_node(cfg)
    failed = []
    try:
        directory = ctx.client.directory()
        for node_id in [n for role in RESPONDER_ROLES for n in responders_of(directory, role)]:
            try:
                outcome = sync_filter(
                    ctx,
                    node_id,
                    lambda who, done, total: err_console.print(
                        f"syncing {who}'s filter: {done}/{total} chunks", markup=False
                    ),
                )
            except FilterModeError as exc:
                err_console.print(f"{node_id}: {exc.reason}", markup=False)
                failed.append(node_id)
                continue
            err_console.print(
                f"{node_id}: filter version {outcome.version}, {outcome.tags} tags "
                f"({outcome.chunks} chunks pulled)",
                markup=False,
            )
    finally:
        ctx.client.close()
    if failed:
        fail(f"the filters of {', '.join(failed)} could not be synced (reasons above)")


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
    mode: str = typer.Option(
        "filter",
        "--mode",
        help="filter (default: the responder learns only the padded batch size) or bucket "
        "(the responder learns each identifier's bucket and the batch size).",
    ),
    output: Output = OUTPUT,
) -> None:
    """Ask responders whether they hold the identifiers; list matches and absent ones.

    A match shows its handle: the responder's own id for the matched record, to name that
    record in a follow-up with the bank or carrier without repeating the identifier. An
    identifier that no responder holds is listed as absent.

    Filter mode (the default): each responder's signed filter is first brought up to
    date (progress shown), then the identifiers travel blinded, padded with dummies to a
    size class (64, 128, ... up to filter_max_batch), and only the tags the filter
    matched are named in a second round for their labels. A responder learns the padded
    size and which of its records matched, nothing about the others (SECURITY.md).

    Leakage of --mode bucket: each identifier travels with the 16-bit bucket of an
    unkeyed hash, so a responder holding R records learns that the suspect, if a
    customer, is one of about R / 65,536 of them (15 at a million), and it learns how
    many identifiers the case asks about.
    """
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
    if mode not in ("filter", "bucket"):
        fail(f"--mode must be filter or bucket, not {mode!r}")
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
        if mode == "bucket":
            outcomes = query_responders(
                ctx, identifiers, recipients, case_ref=case, legal_basis=basis, purpose=purpose
            )
        else:
            outcomes = _filter_query(ctx, identifiers, recipients, case, basis, purpose)
    except MatchError as exc:
        fail(exc.reason)
    finally:
        ctx.client.close()

    rows, absent = result_rows(outcomes, shown, len(identifiers))
    render(
        rows,
        QUERY_COLUMNS,
        output,
        title=f"case {case}: {len(identifiers)} identifiers, {len(recipients)} responders",
    )
    failed = [o for o in outcomes if not o.ok]
    matched = sum(len(o.matches) for o in outcomes)
    summary = (
        f"{matched} matches, {absent} identifiers absent from every responder that answered"
        f" ({len(outcomes) - len(failed)} of {len(outcomes)} answered)"
    )
    err_console.print(summary, markup=False, highlight=False, soft_wrap=True)
    for outcome in failed:
        wrong = "WRONG KEY: " if outcome.key_mismatch else ""
        err_console.print(f"{outcome.node_id}: {wrong}{outcome.error}", markup=False)
    if failed:
        fail("; ".join(unanswered(o) for o in failed))


def _filter_query(
    ctx: NodeContext,
    identifiers: list[Identifier],
    recipients: list[str],
    case: str,
    basis: str,
    purpose: str,
) -> list[ResponderOutcome]:
    """Sync each responder's filter (one progress line per chunk), then query in filter mode."""
    from nodes.filter_police import SyncOutcome, sync_and_query

    def progress(node_id: str, done: int, total: int) -> None:
        err_console.print(f"syncing {node_id}'s filter: {done}/{total} chunks", markup=False)

    def synced(outcome: SyncOutcome) -> None:
        how = "full re-sync, " if outcome.resynced else ""
        err_console.print(
            f"{outcome.responder}: filter version {outcome.version}, {outcome.tags} tags "
            f"({how}{outcome.chunks} chunks pulled)",
            markup=False,
        )

    return sync_and_query(
        ctx,
        identifiers,
        recipients,
        case_ref=case,
        legal_basis=basis,
        purpose=purpose,
        synced=synced,
        progress=progress,
    )


QUERY_COLUMNS = (
    Column("identifier", keep=True),
    Column("result", rank=3),
    Column("responder", rank=2),
    Column("handle", keep=True),
    Column("label", rank=1, fold=True),
)


def result_rows(
    outcomes: list[ResponderOutcome], shown: list[str], count: int
) -> tuple[list[dict[str, object]], int]:
    """One row per match, then a row per identifier no responder holds: 'absent' if some
    responder answered, 'no answer' if none did (`absent_positions`); and how many
    identifiers are absent."""
    from nodes.matching import absent_positions

    rows: list[dict[str, object]] = []
    for outcome in outcomes:
        for match in outcome.matches:
            fields = dict(match.fields)
            handle = fields.pop("handle", "")
            label = ", ".join(f"{k}={v}" for k, v in sorted(fields.items()))
            rows.append(
                {
                    "identifier": shown[match.position],
                    "result": "match",
                    "responder": outcome.node_id,
                    "handle": handle,
                    "label": label,
                }
            )
    absent = absent_positions(outcomes, count)
    answered = any(outcome.ok for outcome in outcomes)  # nobody answered: nothing matched
    for position in absent if answered else range(count):
        result = "absent" if answered else "no answer"
        rows.append({"identifier": shown[position], "result": result})
    return rows, len(absent)


def unanswered(outcome: ResponderOutcome) -> str:
    """Why a responder gave no usable answer, with a bare gRPC status in plain words."""
    prefix = f"no answer: {outcome.node_id}: "
    if outcome.error.startswith(prefix):
        reason = outcome.error.removeprefix(prefix)
        if reason.isupper():
            reason = reason.replace("_", " ").lower()
        return f"{outcome.node_id} did not answer: {reason}"
    if outcome.key_mismatch:
        return f"{outcome.node_id}: wrong key: {outcome.error}"
    return f"{outcome.node_id}: {outcome.error}"
