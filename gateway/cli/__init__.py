"""The `gateway` command: PKI, serving, data, queries, freezes, staff, audit and the demo."""

from __future__ import annotations

import os

import typer

from gateway.cli import (
    alert_cmd,
    audit_cmd,
    db_cmd,
    demo_cmd,
    freeze_cmd,
    ingest_cmd,
    match_cmd,
    node_cmd,
    pki_cmd,
    policy_cmd,
    psi_cmd,
    serve_cmd,
    users_cmd,
    watchlist_cmd,
)
from gateway.cli.errors import guard_commands, state

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
app.add_typer(pki_cmd.app, name="pki")
app.add_typer(policy_cmd.app, name="policy")
app.add_typer(serve_cmd.broker_app, name="broker")
app.add_typer(node_cmd.app, name="node")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(freeze_cmd.app, name="freeze")
app.add_typer(db_cmd.app, name="db")
app.add_typer(users_cmd.app, name="users")
app.add_typer(alert_cmd.app, name="alert")
app.command("ping")(node_cmd.ping)
app.command("demo")(demo_cmd.demo)
app.command("query")(match_cmd.query)
app.command("psi")(psi_cmd.psi)
app.add_typer(psi_cmd.offers_app, name="psi-offers")
app.add_typer(watchlist_cmd.app, name="watchlist")
app.command("check")(watchlist_cmd.check)
node_cmd.app.command("ingest")(ingest_cmd.ingest)
node_cmd.app.command("reindex")(match_cmd.reindex)
node_cmd.app.command("filters")(match_cmd.filters)


@app.callback()
def main(
    verbose: bool = typer.Option(
        False, "--verbose", help="On an internal error, print its traceback too."
    ),
) -> None:
    """Privacy-preserving gateway: PKI, serving, data, queries, freezes, audit and the demo."""
    os.umask(0o077)  # keys, databases and exports are the owner's alone (SECURITY.md)
    state.verbose = verbose


guard_commands(app)
