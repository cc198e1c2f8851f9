"""`gateway freeze`: police requests to stop payments, freeze accounts, suspend numbers.

Each request is acknowledged by the broker only after it is stored durably, with an
audit receipt; the bank's or carrier's signed receipt arrives later through the
broker's outbox and shows in `status` and `list`.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table
from sqlalchemy.engine import Engine

from gateway.cli.common import console, fail, node_config
from gateway.cli.output import OUTPUT, Column, Output, render, short_utc
from gateway.identifiers import InvalidIdentifier

if TYPE_CHECKING:
    from nodes.actions.ledger import StatedTransaction
    from nodes.runtime import NodeContext

app = typer.Typer(no_args_is_help=True, help="Stop-payments, freezes and number suspensions.")

CONFIG = typer.Option(..., help="The police node's TOML file.")
CASE = typer.Option(..., "--case", help="Case reference.")
BASIS = typer.Option(..., "--basis", help="Legal basis (statute and article).")
OFFICER = typer.Option(..., "--officer", help="Issuing officer id.")
APPROVER = typer.Option(..., "--approver", help="Approving officer id.")


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
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from nodes.actions.police import ActionRequestRow

    column = ActionRequestRow.request_id
    with Session(engine) as session:
        if session.get(ActionRequestRow, prefix) is not None:
            return prefix
        found = list(
            session.scalars(
                select(column).where(column.startswith(prefix, autoescape=True)).limit(50)
            )
        )
    if not prefix or not found:
        fail(
            f"no request {prefix or '(empty id)'} in this node's journal (see gateway freeze list)"
        )
    if len(found) > 1:
        more = "50 or more" if len(found) == 50 else str(len(found))
        fail(f"request id prefix {prefix} matches {more} requests; give more characters")
    return found[0]


def submit(config: Path, spec: object) -> None:
    from nodes.actions.police import ActionSpec, issue_action
    from nodes.runtime import open_node

    assert isinstance(spec, ActionSpec)
    ctx = open_node(node_config(config))
    try:
        result = issue_action(ctx, spec)
    except (InvalidIdentifier, ValueError) as exc:
        fail(str(exc))
    finally:
        ctx.client.close()
    console.print(
        f"[bold green]{spec.action}[/] request [bold]{result.message_id}[/] stored by the broker "
        f"(audit entry {result.leaf_index}); the receipt follows when {spec.recipient} answers"
    )


@app.command("request")
def request(
    value: str = typer.Argument(..., help="The account, card or phone number."),
    config: Path = CONFIG,
    kind: str = typer.Option("bank_account", help="bank_account, bank_card or phone."),
    to: str = typer.Option(..., "--to", "--bank", "--carrier", help="Recipient node id."),
    action: str = typer.Option(
        "STOP_PAYMENT", help="STOP_PAYMENT, FREEZE or SUSPEND_NUMBER (upper case)."
    ),
    amount: str | None = typer.Option(None, help="Amount in yuan, e.g. 5000.00."),
    whole_balance: bool = typer.Option(False, "--whole-balance", help="Hold the whole balance."),
    hours: int = typer.Option(24, help="Duration in hours."),
    case: str = CASE,
    basis: str = BASIS,
    officer: str = OFFICER,
    approver: str = APPROVER,
    holder: str = typer.Option("", "--holder", help="Account holder's name as on record."),
    txn_time: str | None = typer.Option(
        None, "--txn-time", help="Time of the transaction to stop, ISO 8601 with offset."
    ),
    txn_amount: str | None = typer.Option(
        None, "--txn-amount", help="Amount of the transaction to stop, in yuan."
    ),
    txn_from: str | None = typer.Option(
        None, "--txn-from", help="Counterparty (victim's) account of that transaction."
    ),
) -> None:
    """Ask a bank to stop a payment or freeze, or a carrier to suspend a number.

    A stop-payment states the holder's name and the transaction (time and amount, and
    the counterparty where known): the bank stops only if they match its records.
    """
    from nodes.actions.police import ActionSpec

    action = action.upper()
    if action in ("STOP_PAYMENT", "FREEZE") and not (amount or whole_balance):
        fail("give --amount or --whole-balance")
    transaction = stated_transaction(txn_time, txn_amount, txn_from)
    if action == "STOP_PAYMENT" and not (holder.strip() and transaction):
        fail(
            "a stop-payment states the holder and the transaction: give --holder, "
            "--txn-time and --txn-amount"
        )
    submit(
        config,
        ActionSpec(
            recipient=to,
            action=action,
            case_ref=case,
            legal_basis=basis,
            issuing_officer=officer,
            approving_officer=approver,
            identifier_kind=kind,
            identifier=value,
            amount_minor=minor_units(amount),
            whole_balance=whole_balance,
            duration_hours=hours,
            account_name=holder.strip(),
            transaction=transaction,
        ),
    )


def follow_up(
    config: Path,
    action: str,
    request_id: str,
    hours: int,
    case: str,
    basis: str,
    officer: str,
    approver: str,
) -> None:
    from sqlalchemy.orm import Session

    from nodes.actions.police import ActionRequestRow, ActionSpec
    from nodes.runtime import open_node

    ctx = open_node(node_config(config))
    ctx.client.close()
    request_id = resolve(ctx.engine, request_id)
    with Session(ctx.engine) as session:
        original = session.get(ActionRequestRow, request_id)
    assert original is not None
    if action == "RELEASE" and original.action == "SUSPEND_NUMBER":
        action = "RESTORE_NUMBER"
    submit(
        config,
        ActionSpec(
            recipient=original.recipient,
            action=action,
            case_ref=case or original.case_ref,
            legal_basis=basis,
            issuing_officer=officer,
            approving_officer=approver,
            duration_hours=hours,
            target_request_id=request_id,
        ),
    )


@app.command("extend")
def extend(
    request_id: str = typer.Argument(
        ..., help="The request whose hold to extend (or a unique prefix)."
    ),
    config: Path = CONFIG,
    hours: int = typer.Option(..., help="Hours to add."),
    case: str = typer.Option("", "--case", help="Case reference (default: the request's)."),
    basis: str = BASIS,
    officer: str = OFFICER,
    approver: str = APPROVER,
) -> None:
    """Extend a stop-payment or freeze."""
    follow_up(config, "EXTEND", request_id, hours, case, basis, officer, approver)


@app.command("release")
def release(
    request_id: str = typer.Argument(
        ..., help="The request whose hold to release (or a unique prefix)."
    ),
    config: Path = CONFIG,
    case: str = typer.Option("", "--case", help="Case reference (default: the request's)."),
    basis: str = BASIS,
    officer: str = OFFICER,
    approver: str = APPROVER,
) -> None:
    """Release a hold, or restore a suspended number."""
    follow_up(config, "RELEASE", request_id, 0, case, basis, officer, approver)


def officers_and_id(config: Path, request_id: str) -> tuple[NodeContext, str]:
    from nodes.runtime import open_node

    ctx = open_node(node_config(config))
    return ctx, resolve(ctx.engine, request_id)


@app.command("renew")
def renew(
    request_id: str = typer.Argument(..., help="The freeze to renew (or a unique prefix)."),
    config: Path = CONFIG,
    hours: int = typer.Option(..., help="Hours to add from its current expiry (at most 4320)."),
    case: str = typer.Option("", "--case", help="Case reference (default: the freeze's)."),
    basis: str = BASIS,
    officer: str = OFFICER,
    approver: str = APPROVER,
) -> None:
    """Renew a freeze in force (续冻); an expired freeze needs a new freeze instead."""
    from nodes.actions.fund import FundControlError, Officers, renew_freeze

    ctx, request_id = officers_and_id(config, request_id)
    try:
        result = renew_freeze(ctx, request_id, hours, basis, Officers(officer, approver), case)
    except FundControlError as exc:
        fail(str(exc))
    finally:
        ctx.client.close()
    console.print(
        f"[bold green]EXTEND[/] request [bold]{result.message_id}[/] stored by the broker "
        f"(audit entry {result.leaf_index}); the receipt follows when the bank answers"
    )


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
    officer: str = OFFICER,
    approver: str = APPROVER,
) -> None:
    """Order frozen funds returned to a victim's account (返还), due in working days."""
    from gateway.identifiers import IdentifierKind, normalise
    from nodes.actions.fund import FundControlError, Officers
    from nodes.actions.fund import return_funds as order_return
    from nodes.actions.orders import Victim

    minor = minor_units(amount)
    try:
        account = normalise(IdentifierKind.BANK_ACCOUNT, to_account).value
    except InvalidIdentifier as exc:
        fail(f"--to-account: {exc}")
    if not to_name.strip():
        fail("--to-name: give the victim's name as on the account")
    ctx, request_id = officers_and_id(config, request_id)
    try:
        result = order_return(
            ctx,
            request_id,
            minor,
            Victim(to_bank, account, to_name.strip()),
            basis,
            Officers(officer, approver),
            case,
        )
    except (FundControlError, InvalidIdentifier) as exc:
        fail(str(exc))
    finally:
        ctx.client.close()
    console.print(
        f"[bold green]RETURN_FUNDS[/] request [bold]{result.message_id}[/] stored by the "
        f"broker (audit entry {result.leaf_index}); the bank's receipt follows"
    )


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
    officer: str = OFFICER,
    approver: str = APPROVER,
) -> None:
    """Ask a bank about an account (holder, transactions) or a carrier about a number."""
    from nodes.actions.fund import FundControlError, Officers
    from nodes.actions.fund import inquire as send_inquiry
    from nodes.runtime import open_node

    window = (instant_ms(since, "--from"), instant_ms(until, "--until"))
    if window[1] <= window[0]:
        fail("--until: must come after --from")
    ctx = open_node(node_config(config))
    try:
        result = send_inquiry(
            ctx, to, kind, value, window, case, basis, Officers(officer, approver)
        )
    except (FundControlError, InvalidIdentifier, ValueError) as exc:
        fail(str(exc))
    finally:
        ctx.client.close()
    console.print(
        f"[bold green]INQUIRY[/] request [bold]{result.message_id}[/] stored by the broker "
        f"(audit entry {result.leaf_index}); show the answer with `gateway freeze answer`"
    )


@app.command("answer")
def answer(
    request_id: str = typer.Argument(..., help="The inquiry (or a unique prefix)."),
    config: Path = CONFIG,
    output: Output = OUTPUT,
) -> None:
    """The answer to an inquiry, as the bank or carrier sealed it to this node."""
    from nodes.actions.fund import FundControlError, inquiry_answer

    ctx, request_id = officers_and_id(config, request_id)
    ctx.client.close()
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
        more = (
            " (more in the window: ask with a shorter one)"
            if found.get("more_transactions")
            else ""
        )
        render(posted, TRANSACTION_COLUMNS, output, title=f"transactions{more}")


ANSWER_COLUMNS = (Column("field", keep=True), Column("value", keep=True, fold=True))
TRANSACTION_COLUMNS = (
    Column("at", time=True, keep=True),
    Column("amount", keep=True),
    Column("counterparty", rank=2),
    Column("txn_id", rank=1),
)


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
