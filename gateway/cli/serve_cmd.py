"""`gateway broker serve`: run the broker until interrupted."""

from __future__ import annotations

import signal
import threading
from dataclasses import replace
from pathlib import Path

import typer

from gateway.cli.common import console, fail, setup_logging
from gateway.config import BrokerConfig, ConfigError, load_config
from gateway.pki.custody import CustodyError, refuse_foreign_keys
from gateway.policy import PolicyLoadError

broker_app = typer.Typer(no_args_is_help=True, help="Run the broker.")

BROKER_DRAIN_S = 5.0
"""On SIGTERM the broker stops taking calls at once (clients fail over to another broker)
and lets the calls in flight finish for up to this long: one cut off mid-way reaches its
caller as CANCELLED, which is not failed over, where a drained one simply completes."""


def wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


@broker_app.command("serve")
def serve(
    config: Path | None = typer.Option(None, help="Broker TOML file; flags below if absent."),
    pki_dir: Path = typer.Option(
        Path("var/pki"), "--pki", help="The administrator's PKI folder (development only)."
    ),
    bundle: Path | None = typer.Option(
        None, "--bundle", help="The broker's bundle from `gateway pki export` (with the directory)."
    ),
    node: str = typer.Option("broker", help="The broker's node id in the directory."),
    listen: str = typer.Option("127.0.0.1:7100", help="host:port to listen on."),
    database: str = typer.Option("var/broker.db", help="SQLite path or SQLAlchemy URL."),
    dev: bool = typer.Option(
        False, "--dev", help="Development: serve even where the root keys can be read."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
    log_format: str = typer.Option(
        "text", "--log-format", help="text, or json: one JSON object per line."
    ),
    ops_listen: str = typer.Option(
        "", "--ops-listen", help="host:port for HTTP /healthz, /readyz, /metrics (off if empty)."
    ),
) -> None:
    """Serve the broker over mTLS with its outbox worker."""
    from gateway import telemetry
    from gateway.broker.server import serve_broker

    setup_logging(verbose, log_format)
    try:
        cfg = (
            load_config(BrokerConfig, config)
            if config
            else BrokerConfig(
                node_id=node,
                listen=listen,
                database=database,
                pki_bundle=bundle or pki_dir / "nodes" / node,
                directory_folder=bundle or pki_dir,
            )
        )
        if not dev:
            refuse_foreign_keys(cfg.pki_bundle, cfg.directory_folder)
        if ops_listen:
            cfg = replace(cfg, ops_listen=ops_listen)
        telemetry.setup(f"gateway-broker-{cfg.node_id}", prometheus=bool(cfg.ops_listen))
        running = serve_broker(cfg)
    except (ConfigError, CustodyError, OSError, RuntimeError, PolicyLoadError) as exc:
        fail(str(exc))
    host = cfg.listen.rsplit(":", 1)[0]
    console.print(f"broker {cfg.node_id} serving on {host}:{running.port}")
    wait_for_signal()
    running.stop(grace=BROKER_DRAIN_S)
