"""`gateway freeze`: police requests to stop payments, freeze accounts, suspend numbers.

Four-eyes: an officer drafts a request (`draft`, `extend`, `release`, and for fund
control `renew`, `return`, `inquire`), a different
member of staff with the approver role approves it (`approve`), and only then is it
signed, naming both, and sent. The broker acknowledges it only after storing it
durably, with an audit receipt; the bank's or carrier's signed receipt arrives later
through the broker's outbox and shows in `status` and `list`.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table
from sqlalchemy.engine import Engine

from gateway.cli.common import console, err_console, fail, node_config
from gateway.cli.output import OUTPUT, Column, Output, render, short_utc
from gateway.cli.staff_login import AS, PASSWORD_FILE, TOTP, login, node_engine
from gateway.identifiers import InvalidIdentifier

if TYPE_CHECKING:
    from nodes.actions.ledger import StatedTransaction
    from nodes.actions.police import ActionSpec
    from nodes.runtime import NodeContext

app = typer.Typer(no_args_is_help=True, help="Stop-payments, freezes and number suspensions.")

CONFIG = typer.Option(..., help="The police node's TOML file.")
CASE = typer.Option(..., "--case", help="Case reference.")
BASIS = typer.Option(..., "--basis", help="Legal basis (statute and article).")


def minor_units(amount: str | None, option: str = "--amount") -> int:
    if amount is None:
        return 0
    try:
        value = Decimal(amount)
    except InvalidOperation:
        fail(f"{option}: not a number")
    if not value.is_finite() or value <= 0 or value.as_tuple().exponent < -2:  # type: ignore[operator]
        fail(f"{option}: must be positive with at most two decimals")
    return int(value * 100)


def instant_ms(text: str, option: str) -> int:
    """An ISO 8601 time with its UTC offset, in Unix milliseconds, or `fail`."""
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option}: not an ISO 8601 time; write e.g. 2026-06-01T10:15+08:00")
    if moment.tzinfo is None:
        fail(f"{option}: give the UTC offset, e.g. 2026-06-01T10:15+08:00")
    return int(moment.timestamp() * 1000)


def stated_transaction(
    at: str | None, amount: str | None, counterparty: str | None
) -> StatedTransaction | None:
    """The transaction a stop-payment names, from --txn-time, --txn-amount, --txn-from."""
    from nodes.actions.ledger import StatedTransaction

    if at is None and amount is None:
        if counterparty:
            fail("--txn-from: give --txn-time and --txn-amount with it")
        return None
    if at is None or amount is None:
        fail("give both --txn-time and --txn-amount (the transaction to stop)")
    return StatedTransaction(
        instant_ms(at, "--txn-time"), minor_units(amount, "--txn-amount"), counterparty or ""
    )


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
    if spec.get("account_name"):
        parts.append("holder and transaction stated (sealed)")
    if spec.get("victim"):
        parts.append("to the victim's account (sealed)")
    if spec.get("window"):
        parts.append("over a time window (sealed)")
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
HOLDER = typer.Option("", "--holder", help="Account holder's name as on record.")
TXN_TIME = typer.Option(
    None, "--txn-time", help="Time of the transaction to stop, ISO 8601 with offset."
)
TXN_AMOUNT = typer.Option(None, "--txn-amount", help="Amount of the transaction to stop, in yuan.")
TXN_FROM = typer.Option(
    None, "--txn-from", help="Counterparty (victim's) account of that transaction."
)


@app.command("request", help="Same as `draft` (requests are drafted, then approved).")
@app.command("draft")
def draft(
    ctx: typer.Context,
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
    holder: str = HOLDER,
    txn_time: str | None = TXN_TIME,
    txn_amount: str | None = TXN_AMOUNT,
    txn_from: str | None = TXN_FROM,
) -> None:
    """Draft a stop-payment, freeze or number suspension; another person approves it.

    A stop-payment states the holder's name and the transaction (time and amount, and
    the counterparty where known): the bank stops only if they match its records.
    """
    from nodes.actions.police import ActionSpec

    if ctx.info_name == "request":
        err_console.print(
            "note: `gateway freeze request` now drafts; an approver sends the draft with "
            "`gateway freeze approve`",
            soft_wrap=True,
            markup=False,
        )
    action = action.upper()
    if action not in ("STOP_PAYMENT", "FREEZE", "SUSPEND_NUMBER"):
        fail(f"--action: {ACTION_HELP.rstrip('.')}, not {action}")
    if action in ("STOP_PAYMENT", "FREEZE") and not (amount or whole_balance):
        fail("give --amount or --whole-balance")
    transaction = stated_transaction(txn_time, txn_amount, txn_from)
    if action == "STOP_PAYMENT" and not (holder.strip() and transaction):
        fail(
            "a stop-payment states the holder and the transaction: give --holder, "
            "--txn-time and --txn-amount"
        )
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
        account_name=holder.strip(),
        transaction=transaction,
    )
    draft_as(config, user, password_file, totp, spec)


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


def fund_spec(build: Callable[[NodeContext], ActionSpec], config: Path) -> ActionSpec:
    """A fund-control spec built against this node's journal, or `fail` with why not."""
    from nodes.actions.fund import FundControlError
    from nodes.runtime import open_node

    ctx = open_node(node_config(config))
    ctx.client.close()
    try:
        return build(ctx)
    except (FundControlError, InvalidIdentifier, ValueError) as exc:
        fail(str(exc))


@app.command("renew")
def renew(
    request_id: str = typer.Argument(..., help="The freeze to renew (or a unique prefix)."),
    config: Path = CONFIG,
    hours: int = typer.Option(..., help="Hours to add from its current expiry (at most 4320)."),
    case: str = typer.Option("", "--case", help="Case reference (default: the freeze's)."),
    basis: str = BASIS,
    user: str = AS,
    password_file: Path | None = PASSWORD_FILE,
    totp: str | None = TOTP,
) -> None:
    """Draft the renewal of a freeze in force (续冻); an expired freeze needs a new one."""
    from nodes.actions.fund import renewal_spec

    request_id = resolve(node_engine(config), request_id)
    spec = fund_spec(lambda ctx: renewal_spec(ctx, request_id, hours, basis, case), config)
    draft_as(config, user, password_file, totp, spec)


@app.command("return")
def return_funds(
    request_id: str = typer.Argument(..., help="The freeze holding the funds (or a prefix)."),
    config: Path = CONFIG,
    amount: str = typer.Option(..., help="Amount to return, in yuan, e.g. 5000.00."),
    to_bank: str = typer.Option(..., "--to-bank", help="The victim's bank (member id)."),
    to_account: str = typer.Option(..., "--to-account", help="The victim's account number."),
    to_name: str = typer.Option(..., "--to-name", help="The victim's name as on the account."),
    case: str = typer.Option("", "--case", help="Case reference (default: the freeze's)."),
    basis: str = BASIS,
    user: str = AS,
    password_file: Path | None = PASSWORD_FILE,
    totp: str | None = TOTP,
) -> None:
    """Draft the return of frozen funds to a victim's account (返还), due in working days."""
    from gateway.identifiers import IdentifierKind, normalise
    from nodes.actions.fund import return_spec
    from nodes.actions.orders import Victim

    minor = minor_units(amount)
    try:
        account = normalise(IdentifierKind.BANK_ACCOUNT, to_account).value
    except InvalidIdentifier as exc:
        fail(f"--to-account: {exc}")
    if not to_name.strip():
        fail("--to-name: give the victim's name as on the account")
    victim = Victim(to_bank, account, to_name.strip())
    request_id = resolve(node_engine(config), request_id)
    spec = fund_spec(lambda ctx: return_spec(ctx, request_id, minor, victim, basis, case), config)
    draft_as(config, user, password_file, totp, spec)


@app.command("inquire")
def inquire(
    value: str = typer.Argument(..., help="The account, card or phone number."),
    config: Path = CONFIG,
    kind: str = typer.Option("bank_account", help="bank_account, bank_card or phone."),
    to: str = typer.Option(..., "--to", "--bank", "--carrier", help="Recipient node id."),
    since: str = typer.Option(..., "--from", help="Window start, ISO 8601 with offset."),
    until: str = typer.Option(..., "--until", help="Window end, ISO 8601 with offset."),
    case: str = CASE,
    basis: str = BASIS,
    user: str = AS,
    password_file: Path | None = PASSWORD_FILE,
    totp: str | None = TOTP,
) -> None:
    """Draft an inquiry (查询): an account's holder and transactions, or a number's
    subscriber; the answer comes back sealed to this node (`gateway freeze answer`)."""
    from nodes.actions.fund import inquiry_spec

    window = (instant_ms(since, "--from"), instant_ms(until, "--until"))
    if window[1] <= window[0]:
        fail("--until: must come after --from")
    spec = fund_spec(lambda _: inquiry_spec(to, kind, value, window, case, basis), config)
    draft_as(config, user, password_file, totp, spec)


@app.command("answer")
def answer(
    request_id: str = typer.Argument(..., help="The inquiry (or a unique prefix)."),
    config: Path = CONFIG,
    output: Output = OUTPUT,
) -> None:
    """The answer to an inquiry, as the bank or carrier sealed it to this node."""
    from nodes.actions.fund import FundControlError, inquiry_answer
    from nodes.runtime import open_node

    ctx = open_node(node_config(config))
    ctx.client.close()
    request_id = resolve(ctx.engine, request_id)
    try:
        found = inquiry_answer(ctx, request_id)
    except FundControlError as exc:
        fail(str(exc))
    if found is None:
        fail(f"inquiry {request_id} has no answer (yet); see gateway freeze status {request_id}")
    if output == Output.json:  # one document: the answer as the bank sealed it
        import json

        typer.echo(json.dumps(found, ensure_ascii=False, indent=2, sort_keys=True))
        return
    fields = found.get("fields", {})
    assert isinstance(fields, dict)
    rows = [{"field": k, "value": str(v)} for k, v in fields.items()]
    render(rows, ANSWER_COLUMNS, output, title=f"inquiry {request_id}: holder")
    transactions = found.get("transactions")
    if isinstance(transactions, list):
        posted = [
            {
                "at": int(t.get("at_ms", 0)),
                "amount": f"{int(t.get('amount_minor', 0)) / 100:.2f}",
                "counterparty": str(t.get("counterparty_account", "")),
                "txn_id": str(t.get("txn_id", "")),
            }
            for t in transactions
            if isinstance(t, dict)
        ]
        more = found.get("more_transactions")
        note = " (more in the window: ask with a shorter one)" if more else ""
        render(posted, TRANSACTION_COLUMNS, output, title=f"transactions{note}")


ANSWER_COLUMNS = (Column("field", keep=True), Column("value", keep=True, fold=True))
TRANSACTION_COLUMNS = (
    Column("at", time=True, keep=True),
    Column("amount", keep=True),
    Column("counterparty", rank=2),
    Column("txn_id", rank=1),
)


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
    Column("warning", rank=9, fold=True),
    Column("reason", rank=5, fold=True),
)


@app.command("list")
def list_requests(
    config: Path = CONFIG,
    case: str | None = typer.Option(None, "--case", help="Only this case."),
    output: Output = OUTPUT,
) -> None:
    """This node's requests and what their receipts say (ids in full: status takes them)."""
    from gateway.envelope.build import now_ms
    from nodes.actions.fund import warning
    from nodes.actions.police import requests_for_case
    from nodes.runtime import open_node

    ctx = open_node(node_config(config))
    ctx.client.close()
    now = now_ms()
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
            "warning": warning(r, ctx.config, now),
            "reason": r.reason,
        }
        for r in requests_for_case(ctx, case)
    ]
    render(
        rows, LIST_COLUMNS, output, title=f"action requests{f' for case {case}' if case else ''}"
    )
