"""`gateway node ...` and `gateway ping`: run a node and talk through the broker."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import grpc
import typer
from rich.table import Table

from gateway.cli.common import console, fail, node_config, setup_logging
from gateway.cli.serve_cmd import wait_for_signal
from gateway.config import ConfigError

app = typer.Typer(no_args_is_help=True, help="Run and configure an agency node.")


@app.command("serve")
def serve(
    config: Path = typer.Option(..., help="The node's TOML file."),
    dev: bool = typer.Option(
        False, "--dev", help="Development: serve even where the root keys can be read."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
    log_format: str = typer.Option(
        "text", "--log-format", help="text, or json: one JSON object per line."
    ),
    ops_listen: str = typer.Option(
        "", "--ops-listen", help="host:port for HTTP /healthz, /readyz, /metrics (overrides TOML)."
    ),
) -> None:
    """Serve the node's gRPC endpoint over mTLS until interrupted.

    Refuses to start if this process can read the consortium's root keys or another
    member's keys near its bundle (SECURITY.md, key custody), unless `--dev`.
    """
    from gateway import telemetry
    from gateway.pki.custody import CustodyError, refuse_foreign_keys
    from nodes.runtime import serve_node

    setup_logging(verbose, log_format)
    cfg = node_config(config)
    if not dev:
        try:
            refuse_foreign_keys(cfg.pki_bundle)
        except CustodyError as exc:
            fail(f"node {cfg.node_id} {exc}")
    if ops_listen:
        cfg = replace(cfg, ops_listen=ops_listen)
    telemetry.setup(f"gateway-node-{cfg.node_id}", prometheus=bool(cfg.ops_listen))
    try:
        running = serve_node(cfg)
    except (ConfigError, OSError, RuntimeError, grpc.RpcError) as exc:
        fail(f"node {cfg.node_id} cannot start: {exc}")
    host = cfg.listen.rsplit(":", 1)[0]
    console.print(f"node {cfg.node_id} ({cfg.role}) serving on {host}:{running.port}")
    web = None
    if cfg.console_listen:
        from gateway.console.server import ConsoleServer

        try:
            web = ConsoleServer(running.ctx, cfg.console_listen)
        except (OSError, ValueError) as exc:
            running.stop()
            fail(f"node {cfg.node_id} cannot serve its console on {cfg.console_listen}: {exc}")
        console.print(f"node {cfg.node_id} console on {web.url}")
    wait_for_signal()
    if web is not None:
        web.stop()
    running.stop()


@app.command("check")
def check(config: Path = typer.Option(..., help="The node's TOML file.")) -> None:
    """Check the node before it serves: PKI, broker, directory, database, tables, index.

    Prints one line per check and exits 1 if any fails; `node serve` runs the same checks
    and refuses to start on a failure (an unreachable broker is only a warning there).
    """
    from gateway.config import NodeConfig, load_config
    from nodes.preflight import run_checks

    try:
        cfg = load_config(NodeConfig, config)
    except ConfigError as exc:
        console.print(f"FAIL configuration: {exc}", markup=False, highlight=False, soft_wrap=True)
        fail(f"configuration: {exc}")
    console.print(f"OK   configuration: {config}", markup=False, highlight=False, soft_wrap=True)
    results = run_checks(cfg)
    for result in results:
        console.print(result.line(), markup=False, highlight=False, soft_wrap=True)
    failures = [r for r in results if r.failed]
    if failures:
        fail(
            f"{len(failures)} of {len(results)} checks failed; first: {failures[0].name}: "
            f"{failures[0].detail}"
        )
    console.print(f"node {cfg.node_id} ({cfg.role}): all checks passed")


@app.command("init")
def init(
    node: str = typer.Option(..., help="Node id as issued by `gateway pki issue`."),
    role: str = typer.Option(..., help="police, bank, carrier or regulator."),
    out: Path = typer.Option(..., help="Where to write the TOML file."),
    pki_dir: Path = typer.Option(Path("var/pki"), "--pki"),
    bundle_dir: Path | None = typer.Option(
        None, "--bundle", help="Where the node's `gateway pki export` lives (else in --pki)."
    ),
    listen: str = typer.Option("127.0.0.1:0"),
    broker: str = typer.Option("127.0.0.1:7100", help="The broker's host:port."),
    database: str = typer.Option("", help="SQLite path or SQLAlchemy URL."),
) -> None:
    """Write a commented configuration file for a node."""
    from gateway.node_config_template import render

    if out.exists():
        fail(f"{out} exists; refusing to overwrite it")
    out.parent.mkdir(parents=True, exist_ok=True)
    bundle = bundle_dir or (pki_dir / "nodes" / node).resolve()
    db = database or str((out.parent / f"{node}.db").resolve())
    out.write_text(
        render(node=node, role=role, listen=listen, broker=broker, bundle=bundle, database=db)
    )
    console.print(f"wrote {out}")


def ping(
    config: Path = typer.Option(..., help="The sending node's TOML file."),
    to: list[str] = typer.Option(..., "--to", help="Recipient node id (repeatable)."),
) -> None:
    """Send a signed PING through the broker and show who answered."""
    from gateway.envelope.build import Draft
    from nodes.runtime import open_node

    cfg = node_config(config)
    ctx = open_node(cfg)
    try:
        result = ctx.client.submit(
            Draft(
                sender=cfg.node_id,
                recipients=to,
                kind="PING",
                payload=b"{}",
                purpose="connectivity",
            )
        )
    finally:
        ctx.client.close()
    table = Table(title=f"PING {result.message_id} (audit entry {result.leaf_index})")
    table.add_column("from")
    table.add_column("answer")
    for header, payload in result.answers:
        table.add_row(header.sender, json.dumps(json.loads(payload)))
    for name in result.undelivered:
        table.add_row(name, "[red]no answer[/]")
    console.print(table)
    if result.undelivered:
        fail(
            "; ".join(
                f"{n} did not answer: {why(result.refusals.get(n, ''))}" for n in result.undelivered
            )
        )


def why(reason: str) -> str:
    """A recipient's refusal as the broker passed it on; a bare gRPC status in lower case."""
    if not reason:
        return "no answer"
    return reason.replace("_", " ").lower() if reason.isupper() else reason
