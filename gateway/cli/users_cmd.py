"""`gateway users`: staff accounts of a node (officers, approvers, auditors, admins).

Run on the node's host by whoever administers it; each change is in the node's staff
trail. A new or reset account's password and TOTP secret are printed once, here only.
"""

from __future__ import annotations

from pathlib import Path

import typer

from gateway.cli.common import console, fail
from gateway.cli.output import OUTPUT, Column, Output, render
from gateway.cli.staff_login import PASSWORD_FILE, node_engine, read_password

app = typer.Typer(no_args_is_help=True, help="Staff accounts: add, disable, reset, list.")

CONFIG = typer.Option(..., help="The node's TOML file.")
USER = typer.Argument(..., help="The staff user id (a-z, 0-9, '.', '_', '-').")


def _show(user_id: str, password: str, totp_secret: str, totp_uri: str) -> None:
    console.print(f"password for [bold]{user_id}[/]: {password}", soft_wrap=True, markup=True)
    if totp_secret:
        console.print(f"TOTP secret: {totp_secret}", soft_wrap=True)
        console.print(f"TOTP URI (scan as a QR code): {totp_uri}", soft_wrap=True, markup=False)
    console.print("shown once: hand them to the user now; only a hash of the password is kept")


@app.command("add")
def add(
    user_id: str = USER,
    config: Path = CONFIG,
    role: str = typer.Option(..., help="officer, approver, auditor or admin."),
    name: str = typer.Option("", "--name", help="Display name."),
    language: str = typer.Option("zh_CN", help="Console language, e.g. zh_CN or en."),
    no_totp: bool = typer.Option(False, "--no-totp", help="No second factor (not recommended)."),
    password_file: Path | None = PASSWORD_FILE,
) -> None:
    """Add a staff account; prints its password (generated unless given) and TOTP secret."""
    from nodes.staff.accounts import AccountError, add_user

    password = read_password(password_file) if password_file is not None else None
    engine = node_engine(config)
    try:
        made = add_user(
            engine,
            user_id,
            role,
            display_name=name,
            language=language,
            password=password,
            totp=not no_totp,
        )
    except AccountError as exc:
        fail(str(exc))
    console.print(f"[bold green]added[/] {user_id} ({role})")
    _show(
        user_id,
        made.password if password is None else "(as given)",
        made.totp_secret,
        made.totp_uri,
    )


@app.command("disable")
def disable(user_id: str = USER, config: Path = CONFIG) -> None:
    """Refuse every later login of the user; the account and its history stay."""
    from nodes.staff.accounts import AccountError, disable_user

    try:
        disable_user(node_engine(config), user_id)
    except AccountError as exc:
        fail(str(exc))
    console.print(f"disabled {user_id}")


@app.command("reset")
def reset(
    user_id: str = USER, config: Path = CONFIG, password_file: Path | None = PASSWORD_FILE
) -> None:
    """A new password and TOTP secret; enables the account and clears its lockout."""
    from nodes.staff.accounts import AccountError, reset_user

    password = read_password(password_file) if password_file is not None else None
    try:
        made = reset_user(node_engine(config), user_id, password)
    except AccountError as exc:
        fail(str(exc))
    console.print(f"[bold green]reset[/] {user_id}")
    _show(
        user_id,
        made.password if password is None else "(as given)",
        made.totp_secret,
        made.totp_uri,
    )


USER_COLUMNS = (
    Column("user_id", "user", keep=True),
    Column("role", rank=5),
    Column("display_name", "name", rank=2, fold=True),
    Column("language", rank=1),
    Column("totp", rank=3),
    Column("status", rank=4),
    Column("created_at", "created", time=True, rank=0),
)


@app.command("list")
def list_accounts(config: Path = CONFIG, output: Output = OUTPUT) -> None:
    """Every account, with whether it is disabled or locked."""
    from gateway.envelope.build import now_ms
    from nodes.staff.accounts import list_users

    now = now_ms()
    rows: list[dict[str, object]] = [
        {
            "user_id": a.user_id,
            "role": a.role,
            "display_name": a.display_name,
            "language": a.language,
            "totp": "yes" if a.totp else "no",
            "status": "disabled"
            if a.disabled
            else ("locked" if a.locked_until_ms > now else "active"),
            "created_at": a.created_at_ms,
        }
        for a in list_users(node_engine(config))
    ]
    render(rows, USER_COLUMNS, output, title="staff accounts")


TRAIL_COLUMNS = (
    Column("id", keep=True),
    Column("at", time=True, rank=4),
    Column("user_id", "user", rank=5),
    Column("event", rank=6),
    Column("outcome", rank=7),
    Column("detail", rank=3, fold=True),
)


@app.command("trail")
def trail(
    config: Path = CONFIG,
    user: str | None = typer.Option(None, "--user", help="Only this user's events."),
    limit: int = typer.Option(50, min=1, help="How many of the latest events."),
    output: Output = OUTPUT,
) -> None:
    """The node's staff trail, newest first, after checking its hash chain."""
    from nodes.staff.trail import recent, verify_trail

    engine = node_engine(config)
    rows: list[dict[str, object]] = [
        {
            "id": e.id,
            "at": e.at_ms,
            "user_id": e.user_id,
            "event": e.event,
            "outcome": e.outcome,
            "detail": e.detail,
        }
        for e in recent(engine, limit, user)
    ]
    render(rows, TRAIL_COLUMNS, output, title="staff trail")
    problems = verify_trail(engine)
    if problems:
        fail(f"the staff trail is broken: {'; '.join(problems[:5])}")
