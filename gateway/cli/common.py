"""Helpers shared by the CLI commands: consoles, errors, config loading."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.text import Text

from gateway import logs
from gateway.config import ConfigError, NodeConfig, load_config

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """One `error:` line, never wrapped, with the message shown as it is (no markup)."""
    line = Text("error:", style="bold red")
    line.append(f" {message}")
    err_console.print(line, soft_wrap=True)
    raise typer.Exit(code)


def setup_logging(verbose: bool = False, log_format: str = "text") -> None:
    """Logs to stderr as text or JSON lines (`gateway.logs`); `fail`s on another format."""
    if log_format not in ("text", "json"):
        fail(f"--log-format must be text or json, not {log_format!r}")
    logs.setup_logging(verbose, "json" if log_format == "json" else "text")


def node_config(path: Path) -> NodeConfig:
    """The node's configuration; its broker's address is remembered for error lines."""
    from gateway.cli.errors import remember_broker

    try:
        cfg = load_config(NodeConfig, path)
    except ConfigError as exc:
        fail(str(exc))
    remember_broker(cfg.broker_endpoint)
    return cfg
