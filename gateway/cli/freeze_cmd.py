"""`gateway freeze`: police requests to stop payments, freeze accounts, suspend numbers.

Four-eyes: an officer drafts a request (`draft`, `extend`, `release`), a different
member of staff with the approver role approves it (`approve`), and only then is it
signed, naming both, and sent. The broker acknowledges it only after storing it
durably, with an audit receipt; the bank's or carrier's signed receipt arrives later
through the broker's outbox and shows in `status` and `list`.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table
from sqlalchemy.engine import Engine

from gateway.cli.common import console, err_console, fail, node_config
from gateway.cli.output import OUTPUT, Column, Output, render, short_utc
from gateway.cli.staff_login import AS, PASSWORD_FILE, TOTP, login, node_engine

if TYPE_CHECKING:
    from nodes.actions.police import ActionSpec

app = typer.Typer(no_args_is_help=True, help="Stop-payments, freezes and number suspensions.")

CONFIG = typer.Option(..., help="The police node's TOML file.")
CASE = typer.Option(..., "--case", help="Case reference.")
BASIS = typer.Option(..., "--basis", help="Legal basis (statute and article).")


def minor_units(amount: str | None) -> int:
    if amount is None:
        return 0
    try:
        value = Decimal(amount)
    except InvalidOperation:
        fail("--amount: not a number")
    if value <= 0 or value.as_tuple().exponent < -2:  # type: ignore[operator]
        fail("--amount: must be positive with at most two decimals")
    return int(value * 100)


def when(ms: int) -> str:
    return f"{short_utc(ms)} UTC" if ms else ""


def resolve(engine: Engine, prefix: str) -> str:
    """The full id of this node's one request whose id starts with `prefix`, or `fail`."""
    from nodes.actions.police import ActionRequestRow

    return _unique(engine, ActionRequestRow, "request_id", prefix, "request", "list")


def resolve_draft(engine: Engine, prefix: str) -> str:
    """The full id of the one draft whose id starts with `prefix`, or `fail`."""
    from nodes.staff.drafts import ActionDraftRow

    return _unique(engine, ActionDraftRow, "draft_id", prefix, "draft", "drafts")


def _unique(engine: Engine, table: type, key: str, prefix: str, what: str, listing: str) -> str:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    column = getattr(table, key)
    with Session(engine) as session:
        if session.get(table, prefix) is not None:
            return prefix
        found = list(
            session.scalars(
                select(column).where(column.startswith(prefix, autoescape=True)).limit(50)
            )
        )
    if not prefix or not found:
        fail(
            f"no {what} {prefix or '(empty id)'} in this node's journal "
            f"(see gateway freeze {listing})"
        )
    if len(found) > 1:
        more = "50 or more" if len(found) == 50 else str(len(found))
        fail(f"{what} id prefix {prefix} matches {more} {what}s; give more characters")
    return str(found[0])


def described(spec: dict[str, object]) -> str:
    """A draft's action in one line, its identifier shown only by kind."""
    parts = [f"{spec['action']} to {spec['recipient']}", f"case {spec['case_ref']}"]
    if spec.get("identifier"):
        parts.append(f"{spec['identifier_kind']} (sealed to the recipient)")
    if spec.get("whole_balance"):
        parts.append("whole balance")
    elif spec.get("amount_minor"):
        parts.append(f"{int(str(spec['amount_minor'])) / 100:.2f} {spec.get('currency', 'CNY')}")
    if spec.get("duration_hours"):
        parts.append(f"{spec['duration_hours']} h")
    if spec.get("target_request_id"):
        parts.append(f"of request {spec['target_request_id']}")
    parts.append(f"basis: {spec['legal_basis']}")
    return ", ".join(parts)


def draft_as(
    config: Path, user_id: str, password_file: Path | None, totp: str | None, spec: ActionSpec
) -> None:
    """Log in and store `spec` as a draft; an approver sends it with `freeze approve`."""
    from nodes.staff.drafts import DraftRefused, create_draft, get_draft

    cfg = node_config(config)
    engine = node_engine(config)
    officer = login(engine, user_id, password_file, totp)
    try:
        draft_id = create_draft(engine, officer, spec, default_region=cfg.default_region)
    except DraftRefused as exc:
        fail(str(exc))
    stored = get_draft(engine, draft_id)
    assert stored is not None
    console.print(f"[bold green]drafted[/] {draft_id}: {described(stored.spec)}", soft_wrap=True)
    console.print(
        f"an approver other than {user_id} sends it with: gateway freeze approve {draft_id} "
        f"--config {config} --as USER",
        soft_wrap=True,
        markup=False,
    )


ACTION_HELP = "STOP_PAYMENT, FREEZE or SUSPEND_NUMBER (upper case)."


@app.command("draft")
def draft(
    value: str = typer.Argument(..., help="The account, card or phone number."),
    config: Path = CONFIG,
    kind: str = typer.Option("bank_account", help="bank_account, bank_card or phone."),
    to: str = typer.Option(..., "--to", "--bank", "--carrier", help="Recipient node id."),
    action: str = typer.Option("STOP_PAYMENT", help=ACTION_HELP),
    amount: str | None = typer.Option(None, help="Amount in yuan, e.g. 5000.00."),
    whole_balance: bool = typer.Option(False, "--whole-balance", help="Hold the whole balance."),
    hours: int = typer.Option(24, help="Duration in hours."),
    case: str = CASE,
    basis: str = BASIS,
    user: str = AS,
    password_file: Path | None = PASSWORD_FILE,
    totp: str | None = TOTP,
) -> None:
    """Draft a stop-payment, freeze or number suspension; another person approves it."""
    from nodes.actions.police import ActionSpec

    action = action.upper()
    if action not in ("STOP_PAYMENT", "FREEZE", "SUSPEND_NUMBER"):
        fail(f"--action: {ACTION_HELP.rstrip('.')}, not {action}")
    if action in ("STOP_PAYMENT", "FREEZE") and not (amount or whole_balance):
        fail("give --amount or --whole-balance")
    spec = ActionSpec(
        recipient=to,
        action=action,
        case_ref=case,
        legal_basis=basis,
        issuing_officer="",
        approving_officer="",
        identifier_kind=kind,
        identifier=value,
        amount_minor=minor_units(amount),
        whole_balance=whole_balance,
        duration_hours=hours,
    )
    draft_as(config, user, password_file, totp, spec)


@app.command("request", help="Same as `draft` (requests are drafted, then approved).")
def request(
    value: str = typer.Argument(..., help="The account, card or phone number."),
    config: Path = CONFIG,
    kind: str = typer.Option("bank_account", help="bank_account, bank_card or phone."),
    to: str = typer.Option(..., "--to", "--bank", "--carrier", help="Recipient node id."),
    action: str = typer.Option("STOP_PAYMENT", help=ACTION_HELP),
    amount: str | None = typer.Option(None, help="Amount in yuan, e.g. 5000.00."),
    whole_balance: bool = typer.Option(False, "--whole-balance", help="Hold the whole balance."),
    hours: int = typer.Option(24, help="Duration in hours."),
    case: str = CASE,
    basis: str = BASIS,
    user: str = AS,
    password_file: Path | None = PASSWORD_FILE,
    totp: str | None = TOTP,
) -> None:
    err_console.print(
        "note: `gateway freeze request` now drafts; an approver sends the draft with "
        "`gateway freeze approve`",
        soft_wrap=True,
        markup=False,
    )
    draft(
        value,
        config,
        kind,
        to,
        action,
        amount,
        whole_balance,
        hours,
        case,
        basis,
        user,
        password_file,
        totp,
    )


def follow_up(
    config: Path,
    action: str,
    request_id: str,
    hours: int,
    case: str,
    basis: str,
    login_as: tuple[str, Path | None, str | None],
) -> None:
    from sqlalchemy.orm import Session

    from nodes.actions.police import ActionRequestRow, ActionSpec

    engine = node_engine(config)
    request_id = resolve(engine, request_id)
    with Session(engine) as session:
        original = session.get(ActionRequestRow, request_id)
    assert original is not None
    if action == "RELEASE" and original.action == "SUSPEND_NUMBER":
        action = "RESTORE_NUMBER"
    spec = ActionSpec(
        recipient=original.recipient,
        action=action,
        case_ref=case or original.case_ref,
        legal_basis=basis,
        issuing_officer="",
        approving_officer="",
        duration_hours=hours,
        target_request_id=request_id,
    )
    draft_as(config, *login_as, spec)


@app.command("extend")
def extend(
    request_id: str = typer.Argument(
        ..., help="The request whose hold to extend (or a unique prefix)."
    ),
    config: Path = CONFIG,
    hours: int = typer.Option(..., help="Hours to add."),
    case: str = typer.Option("", "--case", help="Case reference (default: the request's)."),
    basis: str = BASIS,
    user: str = AS,
    password_file: Path | None = PASSWORD_FILE,
    totp: str | None = TOTP,
) -> None:
    """Draft the extension of a stop-payment or freeze."""
    follow_up(config, "EXTEND", request_id, hours, case, basis, (user, password_file, totp))


@app.command("release")
def release(
    request_id: str = typer.Argument(
        ..., help="The request whose hold to release (or a unique prefix)."
    ),
    config: Path = CONFIG,
    case: str = typer.Option("", "--case", help="Case reference (default: the request's)."),
    basis: str = BASIS,
    user: str = AS,
    password_file: Path | None = PASSWORD_FILE,
    totp: str | None = TOTP,
) -> None:
    """Draft the release of a hold, or the restoration of a suspended number."""
    follow_up(config, "RELEASE", request_id, 0, case, basis, (user, password_file, totp))


@app.command("approve")
def approve(
    draft_id: str = typer.Argument(..., help="The draft (or a unique prefix of its id)."),
    config: Path = CONFIG,
    user: str = AS,
    password_file: Path | None = PASSWORD_FILE,
    totp: str | None = TOTP,
    sha256: str | None = typer.Option(
        None, "--sha256", help="Approve only if the draft still has this SHA-256 (hex)."
    ),
) -> None:
    """Approve another officer's draft: sign it, naming you both, and send it."""
    from nodes.runtime import open_node
    from nodes.staff.drafts import DraftRefused, approve_draft, get_draft

    engine = node_engine(config)
    draft_id = resolve_draft(engine, draft_id)
    approver = login(engine, user, password_file, totp)
    shown = get_draft(engine, draft_id)
    assert shown is not None
    console.print(
        f"draft {draft_id} by {shown.created_by}: {described(shown.spec)}", soft_wrap=True
    )
    ctx = open_node(node_config(config))
    try:
        result = approve_draft(ctx, approver, draft_id, expected_sha256=sha256 or shown.spec_sha256)
    except DraftRefused as exc:
        fail(str(exc))
    finally:
        ctx.client.close()
    console.print(
        f"[bold green]{shown.spec['action']}[/] request [bold]{result.message_id}[/] stored by "
        f"the broker (audit entry {result.leaf_index}); the receipt follows when "
        f"{shown.spec['recipient']} answers"
    )


@app.command("reject")
def reject(
    draft_id: str = typer.Argument(..., help="The draft (or a unique prefix of its id)."),
    config: Path = CONFIG,
    reason: str = typer.Option(..., "--reason", help="Why the draft is not sent."),
    user: str = AS,
    password_file: Path | None = PASSWORD_FILE,
    totp: str | None = TOTP,
) -> None:
    """Reject another officer's draft; it is never sent."""
    from nodes.staff.drafts import DraftRefused, reject_draft

    engine = node_engine(config)
    draft_id = resolve_draft(engine, draft_id)
    approver = login(engine, user, password_file, totp)
    try:
        reject_draft(engine, approver, draft_id, reason)
    except DraftRefused as exc:
        fail(str(exc))
    console.print(f"rejected draft {draft_id}")


DRAFT_COLUMNS = (
    Column("draft_id", "draft", keep=True),
    Column("state", rank=8),
    Column("created_by", "by", rank=7),
    Column("action", rank=6),
    Column("recipient", "to", rank=4),
    Column("case_ref", "case", rank=5),
    Column("decided_by", "decided by", rank=3),
    Column("created_at", "drafted", time=True, rank=1),
    Column("request_id", "request", rank=2),
    Column("reason", rank=0, fold=True),
)


@app.command("drafts")
def drafts(
    config: Path = CONFIG,
    state: str | None = typer.Option(
        None, "--state", help="Only drafts in this state: drafted, approved, rejected, failed."
    ),
    output: Output = OUTPUT,
) -> None:
    """Drafts on this node, newest first (ids in full: approve and reject take them)."""
    from nodes.staff.drafts import STATES, list_drafts

    if state is not None and state not in STATES:
        fail(f"--state: one of {', '.join(STATES)}")
    rows: list[dict[str, object]] = [
        {
            "draft_id": d.draft_id,
            "state": d.state,
            "created_by": d.created_by,
            "action": d.spec.get("action", ""),
            "recipient": d.spec.get("recipient", ""),
            "case_ref": d.spec.get("case_ref", ""),
            "decided_by": d.decided_by,
            "created_at": d.created_at_ms,
            "request_id": d.request_id,
            "reason": d.reason,
        }
        for d in list_drafts(node_engine(config), state)
    ]
    render(rows, DRAFT_COLUMNS, output, title=f"drafts{f' ({state})' if state else ''}")


@app.command("status")
def status(
    request_id: str = typer.Argument(..., help="The request id, or a unique prefix of it."),
    config: Path = CONFIG,
) -> None:
    """A request's lifecycle as the broker recorded it, and the receipt we hold."""
    from sqlalchemy.orm import Session

    from nodes.actions.police import ActionRequestRow
    from nodes.runtime import open_node

    ctx = open_node(node_config(config))
    request_id = resolve(ctx.engine, request_id)
    try:
        reply = ctx.client.status(request_id)
    finally:
        ctx.client.close()
    with Session(ctx.engine) as session:
        mine = session.get(ActionRequestRow, request_id)
    table = Table(title=f"request {request_id}: {reply.state}")
    table.add_column("time")
    table.add_column("event")
    table.add_column("detail")
    for event in reply.events:
        table.add_row(when(event.at_ms), event.state, event.detail[:60])
    console.print(table)
    if mine is not None and mine.receipt_id:
        console.print(
            f"receipt {mine.receipt_id}: {mine.state} {mine.executed_amount_minor / 100:.2f}, "
            f"until {when(mine.hold_expires_at_ms) or '-'} {mine.reason}"
        )


LIST_COLUMNS = (
    Column("request_id", "request", keep=True),
    Column("recipient", "to", rank=4),
    Column("action", rank=6),
    Column("case_ref", "case", rank=3),
    Column("state", rank=8),
    Column("amount", rank=7),
    Column("requested_at", "requested", time=True, rank=1),
    Column("hold_expires_at", "until", time=True, rank=2),
    Column("reason", rank=5, fold=True),
)


@app.command("list")
def list_requests(
    config: Path = CONFIG,
    case: str | None = typer.Option(None, "--case", help="Only this case."),
    output: Output = OUTPUT,
) -> None:
    """This node's requests and what their receipts say (ids in full: status takes them)."""
    from nodes.actions.police import requests_for_case
    from nodes.runtime import open_node

    ctx = open_node(node_config(config))
    ctx.client.close()
    rows = [
        {
            "request_id": r.request_id,
            "recipient": r.recipient,
            "action": r.action,
            "case_ref": r.case_ref,
            "state": r.state,
            "amount": f"{r.executed_amount_minor / 100:.2f}" if r.executed_amount_minor else "",
            "requested_at": r.requested_at_ms,
            "hold_expires_at": r.hold_expires_at_ms,
            "reason": r.reason,
        }
        for r in requests_for_case(ctx, case)
    ]
    render(
        rows, LIST_COLUMNS, output, title=f"action requests{f' for case {case}' if case else ''}"
    )
