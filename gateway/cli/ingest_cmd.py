"""`gateway node ingest`: load a bank's or carrier's records from CSV, and index them.

The rows go into the node's records (what matches answer from) and, when the node acts
on the built-in tables (`adapter_table` empty), into `accounts` or `numbers` too, so that
what police can match, the node can also freeze or suspend. A file with rejected rows
loads its valid rows and exits 1; `--strict` loads nothing then; `--dry-run` only reads.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from gateway.cli.common import console, fail
from gateway.cli.match_cmd import _index, _responder_config
from gateway.ingest_csv import DEFAULT_ENCODING, RejectedRow

__all__ = ["ingest"]


def _report(rejected: list[RejectedRow]) -> None:
    if not rejected:
        return
    table = Table(title=f"{len(rejected)} rows rejected (not loaded)")
    table.add_column("line", justify="right")
    table.add_column("reason")
    for row in sorted(rejected, key=lambda r: r.line):
        table.add_row(str(row.line), row.reason)
    console.print(table)


def ingest(
    file: Path = typer.Argument(..., help="CSV with columns kind,value and attribute columns."),
    config: Path = typer.Option(..., help="The bank's or carrier's TOML file."),
    delete: bool = typer.Option(False, "--delete", help="Remove the file's identifiers instead."),
    strict: bool = typer.Option(False, "--strict", help="Load nothing if any row is rejected."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Read and check the file; write nothing."
    ),
    encoding: str = typer.Option(
        DEFAULT_ENCODING, "--encoding", help="The file's text encoding, e.g. gbk or gb18030."
    ),
) -> None:
    """Load records from a CSV file and bring the match index up to date."""
    from gateway import migrate
    from gateway.db import make_engine
    from gateway.ingest_csv import IngestError, check_encoding, read_records
    from nodes.actions.builtin import builtin_rows, load_builtin
    from nodes.actions.orders import IDENTIFIER_KINDS
    from nodes.records import delete_records, sync_attribute, upsert_records

    cfg = _responder_config(config)
    try:
        check_encoding(encoding)
        result = read_records(file, default_region=cfg.default_region, encoding=encoding)
    except (IngestError, OSError) as exc:
        fail(f"{file}: {exc}")
    builtin = not cfg.adapter_table and not delete
    rows, bad = builtin_rows(cfg.role, result.records) if builtin else ({}, [])
    rejected = [*result.rejected, *bad]
    _report(rejected)
    bad_lines = {row.line for row in bad}
    good = [r for r in result.records if r.line not in bad_lines]
    if strict and rejected:
        fail(f"{len(rejected)} of {result.rows_read} rows rejected; nothing loaded (--strict)")
    if dry_run:
        what = (
            f"dry run: {len(good)} rows would be loaded, {len(rejected)} rejected; nothing written"
        )
        if rejected:
            fail(what)
        console.print(what)
        return
    engine = make_engine(cfg.database)
    migrate.upgrade(engine, "node")
    if delete:
        removed = delete_records(engine, [r.identifier for r in good])
        console.print(f"{removed} records removed ({len(good)} rows read)")
    else:
        loaded = upsert_records(engine, ((r.identifier, r.attributes) for r in good))
        console.print(
            f"records: {loaded.added} added, {loaded.changed} changed, "
            f"{loaded.unchanged} unchanged, {len(rejected)} rejected"
        )
    if builtin:
        done = load_builtin(engine, cfg.role, rows)
        kinds = [kind.value for kind in IDENTIFIER_KINDS[cfg.role]]
        with engine.begin() as conn:  # a re-export must not undo what an action did
            for value, status in done.held.items():
                sync_attribute(conn, kinds, value, "status", status)
        console.print(
            f"{done.table} table (actions): {done.added} added, {done.updated} updated, "
            f"{len(done.held)} kept {'/'.join(sorted(set(done.held.values()))) or 'held'}"
        )
    _index(cfg)
    if rejected:
        fail(
            f"{len(rejected)} of {result.rows_read} rows rejected (listed above); the other "
            "rows were loaded: fix those rows and load the file again (--strict loads "
            "nothing when a row is bad)"
        )
