"""`gateway audit`: the compliance officer's commands over the broker's audit log.

Each command reads either a copy of the broker's database (`--database`, with the PKI
folder's signed directory for the broker's key) or, as the regulator node, the live log
through the broker (`--config regulator.toml`), which policy allows only to the
regulator and which checks each checkpoint against those the node saw before.

`verify --trusted-checkpoint FILE` also holds the log to checkpoints saved earlier
(`checkpoint --save FILE`, or a witness's), so a copy rolled back or forked since fails.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from gateway.audit.checkpoint import Checkpoint, open_checkpoint
from gateway.audit.merkle import MerkleTree, leaf_hash
from gateway.audit.note import Ed25519Verifier, NoteVerifier
from gateway.audit.search import EXPORT_COLUMNS, export_row, iso_utc_ms, search_row
from gateway.audit.source import (
    EntryFilter,
    count_entries,
    stored_checkpoints,
    stored_entries,
)
from gateway.audit.tlog_proof import TlogProof, format_tlog_proof
from gateway.audit.verify import (
    StoredCheckpoint,
    StoredEntry,
    TrustedCheckpoint,
    VerifyReport,
    entries_below,
    verify_log,
)
from gateway.cli.common import console, fail, node_config
from gateway.cli.errors import describe_rpc
from gateway.cli.output import OUTPUT, Column, Output, render
from gateway.db import DatabaseError, open_read_only
from gateway.pki.directory import DirectoryError
from gateway.pki.store import PkiError, PkiFolder

app = typer.Typer(no_args_is_help=True, help="Verify, search, export and prove the audit log.")

DATABASE = typer.Option(None, help="The broker's database (path or SQLAlchemy URL).")
PKI = typer.Option(Path("var/pki"), "--pki", help="PKI folder with the signed directory.")
CONFIG = typer.Option(None, help="Regulator node TOML: read the live log through the broker.")
BROKER = typer.Option("broker", help="The broker's node id.")
TRUSTED = typer.Option(
    None,
    "--trusted-checkpoint",
    help="A checkpoint saved earlier (repeatable): the log must still contain it.",
)


@contextmanager
def remote_errors() -> Iterator[None]:
    """Broker refusals and log-integrity failures as one clear line, not a traceback."""
    from nodes.broker_client import LogIntegrityError

    try:
        yield
    except grpc.RpcError as exc:
        fail(describe_rpc(exc))
    except LogIntegrityError as exc:
        fail(f"log integrity: {exc}")


class LogSource:
    """Entries and checkpoints from a database copy or from the broker, one interface.

    The live log grows while it is read (each read is itself audited), so live
    verification covers the log as of the broker's latest checkpoint, fetched first:
    entries appended since are left to the next run.
    """

    def __init__(
        self, database: str | None, pki_dir: Path, config: Path | None, broker_id: str
    ) -> None:
        self.client = None
        self.live_size: int | None = None
        if config is not None:
            from nodes.runtime import open_node

            self.client = open_node(node_config(config)).client
            self.origin = self.client.log_origin
            with remote_errors():
                self.verifiers: list[NoteVerifier] = [self.client.broker_note_verifier()]
            self.engine = None
            return
        if database is None:
            fail("give --database (a copy of the broker's database) or --config (regulator)")
        try:
            pki = PkiFolder(pki_dir)
            directory = pki.directory()
        except (PkiError, DirectoryError, OSError) as exc:
            fail(f"cannot read the signed directory in {pki_dir}: {exc}")
        broker = directory.get(broker_id)
        if broker is None:
            fail(f"the directory lists no broker {broker_id!r}")
        self.origin = f"{directory.consortium}/gateway-audit"
        self.verifiers = [Ed25519Verifier(self.origin, broker.sign_key)]
        try:
            self.engine = open_read_only(database, ("audit_entries", "checkpoints"))
        except DatabaseError as exc:
            fail(str(exc))

    def total(self) -> int | None:
        return count_entries(self.engine) if self.engine is not None else self.live_size

    def entries(self) -> Iterator[StoredEntry]:
        if self.engine is not None:
            return stored_entries(self.engine)
        assert self.client is not None
        if self.live_size is None:
            return self.client.read_audit()
        return entries_below(self.client.read_audit(), self.live_size)

    def checkpoints(self) -> list[StoredCheckpoint]:
        if self.engine is not None:
            return stored_checkpoints(self.engine)
        assert self.client is not None
        self.live_size = self.latest()[1].size
        return self.client.seen_checkpoints()

    def latest(self) -> tuple[str, Checkpoint]:
        """The latest checkpoint the broker signed (live: checked against those seen)."""
        if self.client is not None:
            note: str = self.client.latest_checkpoint()
        else:
            stored = stored_checkpoints(self.engine) if self.engine is not None else []
            if not stored:
                fail("the database holds no checkpoint")
            note = stored[-1].note
        try:
            return note, self.open(note)
        except ValueError as exc:
            fail(f"the latest checkpoint does not verify: {exc}")

    def open(self, note: str | bytes) -> Checkpoint:
        """Check a note's signature (the broker's key) and origin; raises ValueError."""
        checkpoint, _ = open_checkpoint(note, self.verifiers, origin=self.origin)
        return checkpoint

    def trusted(self, files: list[Path]) -> list[TrustedCheckpoint]:
        """Checkpoints saved earlier; a file that is not one the broker signed is a user error."""
        found = []
        for path in files:
            try:
                found.append(TrustedCheckpoint(str(path), self.open(path.read_bytes())))
            except OSError as exc:
                fail(f"--trusted-checkpoint {path}: cannot read it: {exc.strerror or exc}")
            except ValueError as exc:
                fail(f"--trusted-checkpoint {path}: not a checkpoint signed by the broker: {exc}")
        return found

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def print_report(report: VerifyReport) -> None:
    rate = report.entries / report.seconds if report.seconds else 0.0
    trusted = f", {report.trusted} trusted" if report.trusted else ""
    console.print(
        f"{report.entries} entries, {report.checkpoints} checkpoints{trusted} checked in "
        f"{report.seconds:.2f} s ({rate:,.0f} entries/s); root {report.root_hash.hex()}"
    )
    if report.ok:
        console.print("[bold green]log verified[/]: every entry is covered by a signed checkpoint")
        return
    summary = []
    if report.first_bad_entry is not None:
        summary.append(f"first bad entry {report.first_bad_entry}")
    if report.first_uncovered is not None:
        summary.append(f"first entry not covered by a valid checkpoint {report.first_uncovered}")
    console.print(f"[bold red]log does not verify[/]: {'; '.join(summary) or 'see below'}")
    for problem in report.problems[:20]:
        console.print(f"  - {problem}")
    if len(report.problems) > 20:
        console.print(f"  ... and {len(report.problems) - 20} more")


@app.command("verify")
def verify(
    database: str | None = DATABASE,
    pki_dir: Path = PKI,
    config: Path | None = CONFIG,
    broker: str = BROKER,
    trusted_checkpoint: list[Path] | None = TRUSTED,
) -> None:
    """Recompute the whole tree, check every checkpoint; report the first bad entry.

    Fails when an entry is not covered by a valid signed checkpoint, and when a
    `--trusted-checkpoint` is no longer in the log (rollback) or has another root (fork).
    """
    source = LogSource(database, pki_dir, config, broker)
    try:
        trusted = source.trusted(trusted_checkpoint or [])
        with remote_errors():
            checkpoints = source.checkpoints()
            report = _verify_with_progress(source, checkpoints, trusted)
    finally:
        source.close()
    print_report(report)
    if not report.ok:
        raise typer.Exit(1)


def _verify_with_progress(
    source: LogSource, checkpoints: list[StoredCheckpoint], trusted: list[TrustedCheckpoint]
) -> VerifyReport:
    with Progress(
        *Progress.get_default_columns()[:1],
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("verifying", total=source.total())
        return verify_log(
            source.entries(),
            checkpoints,
            source.verifiers,
            source.origin,
            trusted=trusted,
            progress=lambda n: bar.update(task, completed=n),
        )


@app.command("checkpoint")
def checkpoint(
    save: Path | None = typer.Option(
        None, "--save", help="Write it to this file (for `verify --trusted-checkpoint`)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace the --save file if it exists."),
    database: str | None = DATABASE,
    pki_dir: Path = PKI,
    config: Path | None = CONFIG,
    broker: str = BROKER,
) -> None:
    """Print, or save, the broker's latest signed checkpoint (its signature checked).

    An existing file is not replaced without --force: it may be the only record of a
    larger log than the one shown now.
    """
    source = LogSource(database, pki_dir, config, broker)
    try:
        with remote_errors():
            note, latest = source.latest()
    finally:
        source.close()
    if save is None:
        sys.stdout.write(note)
        return
    try:
        with save.open("w" if force else "x") as out:
            out.write(note)
    except FileExistsError:
        fail(f"{save} exists: give --force to replace it")
    except OSError as exc:
        fail(f"cannot write {save}: {exc.strerror or exc}")
    console.print(f"checkpoint of size {latest.size} saved to {save}")


def parse_time(value: str | None, option: str) -> int:
    if not value:
        return 0
    try:
        return int(datetime.fromisoformat(value).timestamp() * 1000)
    except ValueError:
        fail(f"{option}: not an ISO 8601 date or time")


def matching(source: LogSource, criteria: EntryFilter) -> Iterator[tuple[int, dict[str, Any]]]:
    with remote_errors():
        for stored in source.entries():
            entry = json.loads(stored.leaf)
            if criteria.matches(entry):
                yield stored.position, entry


def criteria_from(
    case: str, node: str, kind: str, decision: str, since: str | None, until: str | None
) -> EntryFilter:
    return EntryFilter(
        case_ref=case,
        node=node,
        kind=kind,
        decision=decision,
        since_ms=parse_time(since, "--since"),
        until_ms=parse_time(until, "--until"),
    )


CASE = typer.Option("", help="Case reference.")
NODE = typer.Option("", help="Node id as sender, recipient or peer.")
KIND = typer.Option("", help="Message kind, e.g. FREEZE.")
DECISION = typer.Option("", help="ALLOW or DENY.")
SINCE = typer.Option(None, help="From this time (ISO 8601), inclusive.")
UNTIL = typer.Option(None, help="Until this time (ISO 8601), exclusive.")


SEARCH_COLUMNS = (
    Column("index", "#", keep=True),
    Column("at", "time (UTC)", time=True, rank=5),
    Column("type", rank=1),
    Column("kind", rank=6),
    Column("sender", rank=3),
    Column("to", rank=4),
    Column("case_ref", "case", rank=2),
    Column("decision", rank=8),
    Column("reason", "why", rank=7, fold=True),
)


@app.command("search")
def search(
    case: str = CASE,
    node: str = NODE,
    kind: str = KIND,
    decision: str = DECISION,
    since: str | None = SINCE,
    until: str | None = UNTIL,
    database: str | None = DATABASE,
    pki_dir: Path = PKI,
    config: Path | None = CONFIG,
    broker: str = BROKER,
    limit: int = typer.Option(200, help="Show at most this many entries."),
    output: Output = OUTPUT,
) -> None:
    """Entries by case, node, kind, decision and time range; a DENY shows its reason."""
    criteria = criteria_from(case, node, kind, decision, since, until)
    source = LogSource(database, pki_dir, config, broker)
    rows: list[dict[str, object]] = []
    try:
        for index, entry in matching(source, criteria):
            if len(rows) == limit:
                break
            rows.append(search_row(index, entry))
    finally:
        source.close()
    render(rows, SEARCH_COLUMNS, output, title="audit entries")
    if output is Output.table:
        console.print(f"{len(rows)} entries shown")


@app.command("export")
def export(
    out: Path | None = typer.Option(None, help="Output file; standard output if absent."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl or csv."),
    case: str = CASE,
    node: str = NODE,
    kind: str = KIND,
    decision: str = DECISION,
    since: str | None = SINCE,
    until: str | None = UNTIL,
    database: str | None = DATABASE,
    pki_dir: Path = PKI,
    config: Path | None = CONFIG,
    broker: str = BROKER,
) -> None:
    """Export matching entries as JSON Lines (exact entries) or CSV (main columns).

    CSV gives the time as ISO 8601 UTC (`at`); JSON Lines keeps each entry exactly as
    logged (with `at_ms`), so that its hash can be checked against the log.
    """
    if fmt not in ("jsonl", "csv"):
        fail("--format must be jsonl or csv")
    criteria = criteria_from(case, node, kind, decision, since, until)
    source = LogSource(database, pki_dir, config, broker)
    stream = out.open("w", newline="") if out else sys.stdout
    written = 0
    try:
        writer = None
        if fmt == "csv":
            writer = csv.DictWriter(stream, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
            writer.writeheader()
        for index, entry in matching(source, criteria):
            if writer is None:
                stream.write(json.dumps({"index": index, **entry}, sort_keys=True) + "\n")
            else:
                writer.writerow(export_row(index, entry, iso_utc_ms(int(entry.get("at_ms", 0)))))
            written += 1
    finally:
        source.close()
        if out:
            stream.close()
    if out:
        console.print(f"{written} entries written to {out}")


@app.command("prove")
def prove(
    entry: int = typer.Argument(..., help="Entry index."),
    database: str | None = typer.Option(None, help="The broker's database (path or URL)."),
    config: Path | None = CONFIG,
    pki_dir: Path = PKI,
    broker: str = BROKER,
) -> None:
    """Print a C2SP tlog-proof of one entry under the latest signed checkpoint.

    From a copy of the broker's database (`--database`) or, as the regulator, from the
    live log (`--config regulator.toml`), like the other audit commands.
    """
    if (database is None) == (config is None):
        fail("give --database (a copy of the broker's database) or --config (regulator)")
    if config is not None:
        source = LogSource(None, pki_dir, config, broker)
        try:
            with remote_errors():
                checkpoints = source.checkpoints()
                entries = list(source.entries())
        finally:
            source.close()
    else:
        assert database is not None
        try:
            engine = open_read_only(database, ("audit_entries", "checkpoints"))
        except DatabaseError as exc:
            fail(str(exc))
        checkpoints = stored_checkpoints(engine)
        entries = list(stored_entries(engine))
    usable = [c for c in checkpoints if c.size > entry]
    if entry < 0 or not usable:
        fail(f"no signed checkpoint covers entry {entry}")
    checkpoint = usable[-1]
    tree = MerkleTree()
    tree.extend(leaf_hash(e.leaf) for e in entries if e.position < checkpoint.size)
    if tree.size < checkpoint.size:
        fail(f"the log holds {tree.size} entries, fewer than checkpoint {checkpoint.size}")
    proof = TlogProof(
        index=entry,
        hashes=tuple(tree.inclusion_proof(entry, checkpoint.size)),
        checkpoint=checkpoint.note.encode(),
    )
    sys.stdout.write(format_tlog_proof(proof))


@app.command("witness")
def witness(
    config: Path = typer.Option(..., help="This node's TOML file."),
    submit: bool = typer.Option(
        False, "--submit", help="Hand the cosignature to the broker, which serves it from then on."
    ),
    every: float | None = typer.Option(
        None,
        "--every",
        help="Keep witnessing: submit a cosignature every S seconds (implies --submit).",
    ),
) -> None:
    """Cosign the broker's latest checkpoint after checking it against those seen before.

    Without --submit the cosigned checkpoint is printed; with it (or --every) the broker
    stores the cosignature and serves it with that checkpoint.
    """
    from nodes.runtime import open_node
    from nodes.witness import cosign_latest, submit_latest

    if every is not None and not every > 0:
        fail("--every must be a positive number of seconds")
    ctx = open_node(node_config(config))
    try:
        if every is None:
            with remote_errors():
                if submit:
                    size = submit_latest(ctx.client)
                else:
                    sys.stdout.write(cosign_latest(ctx.client))
            if submit:
                print(f"cosigned checkpoint of size {size}")
            return
        _witness_every(ctx.client, every)
    finally:
        ctx.client.close()


_RETRIED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def _witness_every(client: Any, every: float) -> None:
    """Submit a cosignature every `every` seconds until interrupted.

    An unreachable broker is retried next round; a refusal or a log that does not
    extend what this node saw stops the loop with one `error:` line.
    """
    import time

    from nodes.witness import submit_latest

    try:
        while True:
            with remote_errors():
                try:
                    size = submit_latest(client)
                except grpc.RpcError as exc:
                    if exc.code() not in _RETRIED:
                        raise
                    print(
                        f"warning: {describe_rpc(exc)}; retrying in {every:g} s",
                        file=sys.stderr,
                        flush=True,
                    )
                else:
                    print(f"cosigned checkpoint of size {size}", flush=True)
            time.sleep(every)
    except KeyboardInterrupt:
        return
