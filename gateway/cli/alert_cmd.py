"""`gateway alert`: a bank's or carrier's alert to the police, and the police's inbox.

A bank raises SUSPICIOUS_ACCOUNT (an account or card), a carrier SUSPICIOUS_NUMBER (a
phone number), naming the region (GB/T 2260 code) where it was seen; the alert goes,
sealed, to the police node whose jurisdiction covers that region. On the police node,
`list` and `show` read the inbox, `reporter` opens a tip-off's sealed reporter (the
`tipoff_reader` role only; every opening is on the staff trail), and `draft-stop`
drafts a stop-payment from an account alert, to be approved as usual
(`gateway freeze approve`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from gateway.cli.common import console, err_console, fail, node_config
from gateway.cli.freeze_cmd import instant_ms, minor_units
from gateway.cli.output import OUTPUT, Column, Output, render
from gateway.cli.staff_login import AS, PASSWORD_FILE, TOTP, login, node_engine

if TYPE_CHECKING:
    from nodes.runtime import NodeContext

app = typer.Typer(no_args_is_help=True, help="Bank and carrier alerts to the police.")

CONFIG = typer.Option(..., help="The node's TOML file.")

SENT_COLUMNS = (
    Column("alert_id", "alert", keep=True),
    Column("raised_at_ms", "raised", time=True, rank=5),
    Column("kind", rank=4),
    Column("recipient", "to", rank=6),
    Column("region", rank=3),
    Column("category", rank=2),
    Column("state", keep=True),
    Column("reason", fold=True, rank=1),
)

INBOX_COLUMNS = (
    Column("alert_id", "alert", keep=True),
    Column("received_at_ms", "received", time=True, rank=5),
    Column("sender", "from", rank=6),
    Column("kind", rank=4),
    Column("region", rank=3),
    Column("category", rank=2),
    Column("branch", rank=1, fold=True),
    Column("reporter", rank=7),
    Column("draft_id", "draft", rank=8),
)


def _open(config: Path) -> NodeContext:
    from nodes.runtime import open_node

    return open_node(node_config(config))


@app.command("raise")
def raise_(
    config: Path = CONFIG,
    region: str = typer.Option(
        "", help="GB/T 2260 code of where it was seen, e.g. 310101 (default: alert_region)."
    ),
    kind: str = typer.Option(
        ..., "--kind", help="bank_account or bank_card (a bank), phone (a carrier)."
    ),
    identifier: str = typer.Option(..., help="The account, card or number."),
    category: str = typer.Option(
        ...,
        help="What was seen. Bank: unusual_withdrawal, victim_transfer, mule_pattern, "
        "rented_or_sold, other. Carrier: fraud_calls, mass_messaging, sim_box, "
        "rented_or_sold, other.",
    ),
    seen: str = typer.Option(..., help="What was seen, in words (at most 1000 characters)."),
    branch: str = typer.Option(..., help="The reporting branch or unit."),
    raised_by: str = typer.Option(..., help="Who raises it (staff id or system)."),
    seen_at: str | None = typer.Option(
        None, help="When it was seen, ISO 8601 with offset (default: now)."
    ),
    holder: str = typer.Option("", help="Bank: the account holder's name (for a stop-payment)."),
    txn_time: str | None = typer.Option(None, help="Bank: the suspicious transaction's time."),
    txn_amount: str | None = typer.Option(None, help="Bank: its amount in yuan, e.g. 5000.00."),
    reporter_role: str = typer.Option(
        "", help="A tip-off's reporter: teller or public (sealed separately)."
    ),
    reporter_name: str = typer.Option("", help="The reporter's name."),
    reporter_contact: str = typer.Option("", help="How the police may reach the reporter."),
    reporter_staff_id: str = typer.Option("", help="A teller's staff id."),
) -> None:
    """Raise an alert to the police node of the region; delivered once, sealed."""
    from gateway.envelope.build import now_ms
    from nodes.alerts.report import KIND_OF_ROLE, AlertError, AlertReport, Reporter
    from nodes.alerts.sender import AlertNotSent, raise_alert, resend_pending

    if (txn_time is None) != (txn_amount is None):
        fail("give both --txn-time and --txn-amount (the suspicious transaction), or neither")
    reporter = None
    if reporter_role or reporter_name:
        reporter = Reporter(reporter_role, reporter_name, reporter_contact, reporter_staff_id)
    ctx = _open(config)
    try:
        alert_kind = KIND_OF_ROLE.get(ctx.config.role)
        if alert_kind is None:
            fail(f"a {ctx.config.role} node raises no alerts; run this on a bank or carrier node")
        if not (region or ctx.config.alert_region):
            fail("--region: give the region code, or set alert_region in the node's TOML")
        report = AlertReport(
            kind=str(alert_kind),
            region=region or ctx.config.alert_region,
            identifier_kind=kind,
            identifier=identifier,
            category=category,
            seen=seen,
            seen_at_ms=instant_ms(seen_at, "--seen-at") if seen_at else now_ms(),
            branch=branch,
            holder_name=holder,
            txn_at_ms=instant_ms(txn_time, "--txn-time") if txn_time else 0,
            txn_amount_minor=minor_units(txn_amount, "--txn-amount") if txn_amount else 0,
        )
        resend_pending(ctx)  # older alerts first, if the broker missed them
        try:
            sent = raise_alert(ctx, report, raised_by=raised_by, reporter=reporter)
        except AlertError as exc:
            fail(str(exc))
        except AlertNotSent as exc:
            fail(f"{exc}: run `gateway alert resend --config {config}` when the broker is back")
    finally:
        ctx.client.close()
    console.print(
        f"[bold green]{sent.kind}[/] alert [bold]{sent.alert_id}[/] to {sent.recipient} "
        f"(region {sent.region}), stored by the broker (audit entry {sent.leaf_index})",
        soft_wrap=True,
    )


@app.command("resend")
def resend(config: Path = CONFIG) -> None:
    """Submit again every stored alert the broker has not acknowledged (the same envelope)."""
    from nodes.alerts.sender import resend_pending

    ctx = _open(config)
    try:
        done = resend_pending(ctx)
    finally:
        ctx.client.close()
    waiting = [a for a in done if a.state == "signed"]
    console.print(f"{len(done) - len(waiting)} alert(s) acknowledged, {len(waiting)} waiting")
    if waiting:
        fail("the broker is unreachable; run this again when it is back")


@app.command("sent")
def sent(config: Path = CONFIG, output: Output = OUTPUT) -> None:
    """The alerts this bank or carrier raised, newest first (no identifiers)."""
    from dataclasses import asdict

    from nodes.alerts.sender import sent_alerts

    ctx = _open(config)
    ctx.client.close()
    render([asdict(a) for a in sent_alerts(ctx)], SENT_COLUMNS, output, title="alerts raised")


@app.command("list")
def list_(config: Path = CONFIG, output: Output = OUTPUT) -> None:
    """The police node's incoming alerts, newest first; reporters show as sealed."""
    from nodes.alerts.inbox import list_alerts

    ctx = _open(config)
    ctx.client.close()
    rows: list[dict[str, object]] = [
        {
            "alert_id": a.alert_id,
            "received_at_ms": a.received_at_ms,
            "sender": a.sender,
            "kind": a.kind,
            "region": a.region,
            "category": a.category,
            "branch": a.branch,
            "reporter": "sealed" if a.has_reporter else "none",
            "draft_id": a.draft_id,
        }
        for a in list_alerts(ctx)
    ]
    render(rows, INBOX_COLUMNS, output, title="incoming alerts")


def _resolve(ctx: NodeContext, alert_id: str) -> str:
    from nodes.alerts.inbox import list_alerts

    matches = [
        a.alert_id for a in list_alerts(ctx, limit=100_000) if a.alert_id.startswith(alert_id)
    ]
    if len(matches) != 1:
        fail(f"{alert_id!r} names {len(matches)} alerts; give more of its id (gateway alert list)")
    return matches[0]


@app.command("show")
def show(
    alert_id: str = typer.Argument(..., help="The alert (or a unique prefix of its id)."),
    config: Path = CONFIG,
) -> None:
    """One incoming alert in full, the reporter still sealed."""
    from nodes.alerts.inbox import get_alert

    ctx = _open(config)
    ctx.client.close()
    alert = get_alert(ctx, _resolve(ctx, alert_id))
    assert alert is not None
    lines = [
        ("alert", alert.alert_id),
        ("from", f"{alert.sender}, {alert.branch}"),
        ("kind", alert.kind),
        ("region", alert.region),
        (alert.identifier_kind, alert.identifier),
        ("holder", alert.holder_name or "-"),
        ("category", alert.category),
        ("seen", alert.seen),
        ("transaction", f"{alert.txn_amount_minor / 100:.2f} yuan" if alert.txn_at_ms else "-"),
        ("reporter", "sealed" if alert.has_reporter else "none"),
        ("draft", alert.draft_id or "-"),
    ]
    for name, value in lines:
        console.print(f"{name:>12}: {value}", soft_wrap=True, markup=False)


@app.command("reporter")
def reporter(
    alert_id: str = typer.Argument(..., help="The alert (or a unique prefix of its id)."),
    config: Path = CONFIG,
    user: str = AS,
    password_file: Path | None = PASSWORD_FILE,
    totp: str | None = TOTP,
) -> None:
    """Open a tip-off's sealed reporter (tipoff_reader role; recorded in the staff trail)."""
    from nodes.alerts.inbox import AlertRefused, open_reporter

    engine = node_engine(config)
    staff = login(engine, user, password_file, totp)
    ctx = _open(config)
    ctx.client.close()
    try:
        found = open_reporter(ctx, staff, _resolve(ctx, alert_id))
    except AlertRefused as exc:
        fail(str(exc))
    for name in ("role", "name", "contact", "staff_id"):
        console.print(f"{name:>9}: {getattr(found, name) or '-'}", soft_wrap=True, markup=False)
    err_console.print("this opening is recorded in the node's staff trail")


@app.command("draft-stop")
def draft_stop(
    alert_id: str = typer.Argument(..., help="The account alert (or a unique prefix)."),
    config: Path = CONFIG,
    case: str = typer.Option(..., "--case", help="Case reference the stop-payment is for."),
    basis: str = typer.Option(..., "--basis", help="Legal basis (statute and article)."),
    user: str = AS,
    password_file: Path | None = PASSWORD_FILE,
    totp: str | None = TOTP,
) -> None:
    """Draft a stop-payment on the reported account at the reporting bank, prefilled."""
    from nodes.alerts.inbox import AlertRefused, draft_stop_payment

    engine = node_engine(config)
    officer = login(engine, user, password_file, totp)
    ctx = _open(config)
    ctx.client.close()
    try:
        draft_id = draft_stop_payment(
            ctx, officer, _resolve(ctx, alert_id), case_ref=case, legal_basis=basis
        )
    except AlertRefused as exc:
        fail(str(exc))
    console.print(
        f"drafted {draft_id}: STOP_PAYMENT from alert {alert_id}; "
        f"another officer approves it with `gateway freeze approve {draft_id}`",
        soft_wrap=True,
    )
