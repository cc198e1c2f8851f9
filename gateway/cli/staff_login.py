"""Logging a member of staff in on the command line: `--as USER`, a password and a code.

The password comes from `--password-file` or a hidden prompt, the TOTP code from
`--totp` or a prompt; never from a plain option, which would land in the shell's
history. Every login, accepted or refused, is in the node's staff trail.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from sqlalchemy import Engine

from gateway.cli.common import fail

if TYPE_CHECKING:
    from nodes.staff.accounts import StaffUser

AS = typer.Option(..., "--as", help="Your staff user id on this node.")
PASSWORD_FILE = typer.Option(
    None, "--password-file", help="Read your password from this file (else a hidden prompt)."
)
TOTP = typer.Option(None, "--totp", help="Your current TOTP code (else a prompt).")


def node_engine(config_path: Path) -> Engine:
    """The node's database, migrated to the code's schema; no broker connection."""
    import nodes.schema  # noqa: F401  (registers the node's tables)
    from gateway import migrate
    from gateway.cli.common import node_config
    from gateway.db import make_engine

    engine = make_engine(node_config(config_path).database)
    migrate.upgrade(engine, "node")
    return engine


def ask(question: str, *, hidden: bool) -> str:
    """A prompt's answer; no input at all (end of file) is one `error:` line."""
    try:
        return str(typer.prompt(question, hide_input=hidden, default="", show_default=False))
    except typer.Abort:
        fail(f"no {question} given: type it when asked, or see --help for the options")


def read_password(password_file: Path | None) -> str:
    if password_file is None:
        return ask("password", hidden=True)
    try:
        lines = password_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"--password-file: cannot read {password_file} ({type(exc).__name__})")
    if not lines or not lines[0]:
        fail(f"--password-file: {password_file} is empty; put the password on its first line")
    return lines[0]


def login(engine: Engine, user_id: str, password_file: Path | None, totp: str | None) -> StaffUser:
    """The logged-in user, or one `error:` line saying why not."""
    from nodes.staff.accounts import LoginRefused, authenticate

    password = read_password(password_file)
    code = totp if totp is not None else ask("TOTP code", hidden=False)
    try:
        return authenticate(engine, user_id, password, code)
    except LoginRefused as refused:
        fail(f"login refused: {refused.reason}")
