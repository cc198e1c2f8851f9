"""Helpers shared by the CLI commands: consoles, errors, config loading."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console

from gateway.config import ConfigError, NodeConfig, load_config

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def node_config(path: Path) -> NodeConfig:
    try:
        return load_config(NodeConfig, path)
    except ConfigError as exc:
        fail(str(exc))
