"""`gateway demo`: the local demonstration scenario."""

from __future__ import annotations

from pathlib import Path

import typer


def demo(
    folder: Path | None = typer.Option(
        None, help="Keep the consortium in this folder instead of a temporary one."
    ),
    keep: bool = typer.Option(False, help="Do not delete the temporary folder afterwards."),
    records: int = typer.Option(20_000, help="Records per responder."),
    keep_running: bool = typer.Option(
        False, "--keep-running", help="Keep broker, nodes and consoles up until Ctrl-C."
    ),
) -> None:
    """Start broker and nodes as processes on loopback, run the scenario, stop them all.

    Each node serves its staff console; the URLs and a login per role are printed.
    """
    from gateway.cli.serve_cmd import wait_for_signal
    from gateway.demo import run_demo

    raise typer.Exit(run_demo(folder, keep, records, wait_for_signal if keep_running else None))
