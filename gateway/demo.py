"""`gateway demo`: the seeds' scenario on a whole consortium running as separate processes.

1. A consortium CA, keys and signed directory for a broker, a police node, two banks, a
   carrier and a regulator; synthetic but valid data loaded into each responder's own
   database (tens of thousands of records) and its match index built.
2. Broker and nodes start as separate processes on loopback, over mTLS; each node
   serves its staff console, and a console login per role is printed.
3. The police query a suspect list against every bank and carrier, blinded (RFC 9497):
   which bank holds each account, which carrier each number.
4. An officer of the police node drafts a suspension of a matched number; a different
   officer, an approver, approves it (both log in with a password and a TOTP code), and
   only then is it signed, naming both officers, and sent; the carrier executes it and
   its signed receipt comes back.
5. Fund control on a matched account (`gateway.demo_fund`), each step drafted and
   approved the same way: inquiry, stop-payment with the holder's name and the transfer
   the inquiry showed, freeze, renewal, and return of the amount to the victim's
   account at the other bank.
6. A bank teller's alert about another matched account (`gateway.demo_alert`): sealed
   to the police node of the branch's region, opened on the police desk, a stop-payment
   drafted from it in one step, approved by a second officer and executed.
7. Account opening at Bank A (`gateway.demo_watchlist`): the police list an applicant's
   ID number on their watchlist; the bank checks two applicants, blinded through the
   broker, and refuses the listed one.
8. The regulator verifies the whole audit log through the broker.

Every process started is stopped at the end, whatever happens.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyotp
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.orm import Session

from gateway.audit.checkpoint import open_checkpoint
from gateway.audit.verify import entries_below, verify_log
from gateway.db import make_engine
from gateway.demo_data import Suspect, generate, load_responder, suspects
from gateway.demo_fund import Sender, run_fund_control
from gateway.demo_watchlist import refuse_listed_applicant
from gateway.identifiers import IdentifierKind, normalise
from gateway.localnet import Consortium, Processes, processes
from gateway.matching.padding import padded_size
from gateway.pki.keys import read_hex
from nodes.actions.police import ActionRequestRow, ActionSpec
from nodes.broker_client import Submitted
from nodes.filter_police import FilterModeError, filter_query_responders, sync_filter
from nodes.matching import refresh_index
from nodes.runtime import NodeContext, open_node
from nodes.staff.accounts import StaffUser, add_user, authenticate
from nodes.staff.drafts import approve_draft, create_draft, get_draft

console = Console(width=120) if not Console().is_terminal else Console()
CASE = "C-2026-0815"
BASIS = "Anti-Telecom and Online Fraud Law, art. 31"


def progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def prepare(consortium: Consortium, records: int) -> list[Suspect]:
    """Generate and load each responder's data, and build its match index."""
    data = generate(records)
    with progress() as bar:
        for seed, (node_id, rows) in enumerate(data.items(), 1):
            task = bar.add_task(f"loading {node_id}", total=len(rows))
            load_responder(consortium, node_id, rows, seed)
            bar.update(task, completed=len(rows))
            config = consortium.node_config(node_id)
            key = read_hex(consortium.pki.bundle(node_id).oprf_key, 32)
            index = bar.add_task(f"indexing {node_id}", total=None)

            def advance(done: int, total: int, task: object = index) -> None:
                bar.update(task, completed=done, total=total)  # type: ignore[arg-type]

            refresh_index(make_engine(config.database), config, key, progress=advance)
    return suspects(data)


def start(consortium: Consortium, procs: Processes) -> None:
    with console.status("starting broker and nodes as separate processes") as status:
        procs.start_broker()
        for node_id in consortium.node_ports:
            status.update(f"starting {node_id}")
            procs.start_node(node_id)
    table = Table(title="Consortium on loopback (mTLS)")
    for column in ("node", "role", "endpoint", "pid"):
        table.add_column(column)
    broker_pid = str(procs.procs["broker"].pid)
    table.add_row("broker", "broker", f"127.0.0.1:{consortium.broker_port}", broker_pid)
    for node_id, port in consortium.node_ports.items():
        pid = str(procs.procs[node_id].pid)
        table.add_row(node_id, consortium.roles[node_id], f"127.0.0.1:{port}", pid)
    console.print(table)


def query(police: NodeContext, consortium: Consortium, wanted: list[Suspect]) -> dict[int, str]:
    """Filter-mode query of every suspect at every responder; returns position -> holder.

    Each responder's signed filter is synced first (a snapshot the first time); the
    query then sends only blinded elements padded to a size class, and fetches the
    labels of the matched tags alone.
    """
    responders = [n for n, r in consortium.roles.items() if r in ("bank", "carrier")]
    identifiers = [normalise(s.kind, s.value) for s in wanted]
    for node_id in responders:
        started = time.perf_counter()
        try:
            synced = sync_filter(police, node_id)
        except FilterModeError as exc:
            console.print(f"[red]{node_id}: filter sync failed: {exc.reason}[/]")
            continue
        console.print(
            f"{node_id}: filter version {synced.version} of {synced.tags} tags synced "
            f"({synced.chunks} chunks, {(time.perf_counter() - started) * 1000:.0f} ms)"
        )
    started = time.perf_counter()
    outcomes = filter_query_responders(
        police, identifiers, responders, case_ref=CASE, legal_basis=BASIS
    )
    seconds = time.perf_counter() - started
    found: dict[int, str] = {}
    labels: dict[int, dict[str, str]] = {}
    for outcome in outcomes:
        if not outcome.ok:
            console.print(f"[red]{outcome.node_id}: {outcome.error}[/]")
        for match in outcome.matches:
            found[match.position] = outcome.node_id
            labels[match.position] = match.fields
    table = Table(
        title=f"Filter-mode query of {len(wanted)} suspects (padded to "
        f"{padded_size(len(wanted), limit=police.config.filter_max_batch)}) at "
        f"{len(responders)} responders ({seconds * 1000:.0f} ms)"
    )
    for column in ("suspect", "kind", "held by", "label (decrypted by police only)"):
        table.add_column(column)
    for position, suspect in enumerate(wanted):
        holder = found.get(position, "")
        label = labels.get(position, {})
        table.add_row(
            suspect.value,
            suspect.kind.value,
            holder or "[dim]nobody[/]",
            " ".join(f"{k}={label[k]}" for k in ("record_id", "status") if k in label),
        )
    console.print(table)
    return found


def wait_for(check: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


DEMO_ACTIONS: tuple[tuple[IdentifierKind, str, str, dict[str, Any]], ...] = (
    (IdentifierKind.PHONE, "SUSPEND_NUMBER", "phone", {"duration_hours": 72}),
)
"""What the demo asks of the first matched number (accounts: `gateway.demo_fund`)."""
FUND_STEPS = 6
"""Inquiry, stop-payment, its release, freeze, renewal, return."""


OFFICER = "wang.wei"
APPROVER = "chen.jing"


def staff(police: NodeContext) -> tuple[StaffUser, StaffUser]:
    """An officer and an approver on the police node, logged in with password and code."""
    logged_in = []
    for user_id, role in ((OFFICER, "officer"), (APPROVER, "approver")):
        made = add_user(police.engine, user_id, role)
        code = pyotp.TOTP(made.totp_secret).now()
        logged_in.append(authenticate(police.engine, user_id, made.password, code))
    console.print(
        f"staff: [bold]{OFFICER}[/] (officer) and [bold]{APPROVER}[/] (approver) logged in "
        "with password and TOTP code"
    )
    return logged_in[0], logged_in[1]


def four_eyes(police: NodeContext, officer: StaffUser, approver: StaffUser) -> Sender:
    """Send a spec as the demo's staff do: drafted by one, approved by the other."""

    def send(spec: ActionSpec) -> Submitted:
        draft_id = create_draft(police.engine, officer, spec)
        draft = get_draft(police.engine, draft_id)
        assert draft is not None
        return approve_draft(police, approver, draft_id, expected_sha256=draft.spec_sha256)

    return send


def fund_control(
    police: NodeContext, send: Sender, wanted: list[Suspect], found: dict[int, str]
) -> int:
    """The fund-control steps on the first matched account; how many were executed."""
    index = next(
        (i for i, s in enumerate(wanted) if s.kind == IdentifierKind.BANK_ACCOUNT and i in found),
        None,
    )
    if index is None:
        return 0
    bank = found[index]
    victim_bank = "bank-b" if bank != "bank-b" else "bank-a"
    account = wanted[index].value
    steps = run_fund_control(police, send, console, account, bank, victim_bank, CASE, BASIS)
    return sum(s.state == "executed" for s in steps)


def teller_alert(
    consortium: Consortium,
    police: NodeContext,
    officer: StaffUser,
    approver: StaffUser,
    wanted: list[Suspect],
    found: dict[int, str],
) -> bool:
    """A teller's alert on the last matched account (the first is the fund-control one)."""
    from gateway.demo_alert import run_teller_alert

    matched = [
        i for i, s in enumerate(wanted) if s.kind == IdentifierKind.BANK_ACCOUNT and i in found
    ]
    if len(matched) < 2:
        return False
    index = matched[-1]
    made = add_user(police.engine, "reader-police-1", "tipoff_reader")
    reader = authenticate(
        police.engine, "reader-police-1", made.password, pyotp.TOTP(made.totp_secret).now()
    )
    staff = (officer, approver, reader)
    account = normalise(IdentifierKind.BANK_ACCOUNT, wanted[index].value).value
    return run_teller_alert(consortium, police, console, account, found[index], staff)


def act(
    police: NodeContext,
    officer: StaffUser,
    approver: StaffUser,
    wanted: list[Suspect],
    found: dict[int, str],
) -> int:
    """A suspension of a matched number, drafted by one officer and approved by another."""
    specs = []
    for kind, action, identifier_kind, terms in DEMO_ACTIONS:
        index = next((i for i, s in enumerate(wanted) if s.kind == kind and i in found), None)
        if index is None:
            continue
        specs.append(
            ActionSpec(
                recipient=found[index],
                action=action,
                case_ref=CASE,
                legal_basis=BASIS,
                issuing_officer="",
                approving_officer="",
                identifier_kind=identifier_kind,
                identifier=wanted[index].value,
                **terms,
            )
        )
    ids = []
    for spec in specs:
        draft_id = create_draft(police.engine, officer, spec)
        draft = get_draft(police.engine, draft_id)
        assert draft is not None
        result = approve_draft(police, approver, draft_id, expected_sha256=draft.spec_sha256)
        console.print(
            f"{spec.action} drafted by {officer.user_id} ({draft_id[:12]}), approved by "
            f"{approver.user_id}: request {result.message_id[:12]}"
        )
        ids.append(result.message_id)

    def receipts() -> list[ActionRequestRow]:
        with Session(police.engine) as session:
            return [r for i in ids if (r := session.get(ActionRequestRow, i)) is not None]

    with console.status("waiting for the signed receipts"):
        wait_for(lambda: all(r.state != "requested" for r in receipts()))
    table = Table(title="Actions and their signed receipts")
    for column in ("request", "to", "action", "outcome", "amount held", "until (UTC)"):
        table.add_column(column)
    executed = 0
    for r in receipts():
        executed += r.state == "executed"
        until = (
            time.strftime("%Y-%m-%d %H:%M", time.gmtime(r.hold_expires_at_ms / 1000))
            if r.hold_expires_at_ms
            else ""
        )
        amount = f"{r.executed_amount_minor / 100:,.2f} CNY" if r.executed_amount_minor else ""
        table.add_row(r.request_id[:12], r.recipient, r.action, r.state, amount, until)
    console.print(table)
    return executed


def verify_as_regulator(consortium: Consortium) -> bool:
    regulator = open_node(consortium.node_config("regulator-1"))
    client = regulator.client
    try:
        verifiers = [client.broker_note_verifier()]
        latest, _ = open_checkpoint(client.latest_checkpoint(), verifiers, origin=client.log_origin)
        report = verify_log(
            entries_below(client.read_audit(), latest.size),
            client.seen_checkpoints(),
            verifiers,
            client.log_origin,
        )
    finally:
        client.close()
    status = "[bold green]verified[/]" if report.ok else "[bold red]DOES NOT VERIFY[/]"
    console.print(
        f"Regulator: audit log of {report.entries} entries {status} "
        f"against {report.checkpoints} signed checkpoint(s) in {report.seconds:.2f} s"
    )
    return report.ok


DEMO_STAFF = {
    "police": ("officer", "approver", "auditor", "admin"),
    "bank": ("officer", "admin"),
    "carrier": ("officer", "admin"),
    "regulator": ("auditor", "admin"),
}
"""The console accounts the demo makes at each node, by node role."""


def demo_logins(consortium: Consortium) -> None:
    """Make the demo's console accounts and print each console's URL and logins."""
    console.print("[bold]Staff consoles[/] (log in with user, password and the TOTP code)")
    for node_id, port in consortium.console_ports.items():
        engine = make_engine(consortium.node_config(node_id).database)
        console.print(f"  {node_id}: http://127.0.0.1:{port}", soft_wrap=True)
        for role in DEMO_STAFF.get(consortium.roles[node_id], ()):
            user_id = f"{role}-{node_id}"
            made = add_user(engine, user_id, role, display_name=user_id, by="demo")
            console.print(
                f"    {role:<9} user {user_id:<20} password {made.password}  "
                f"TOTP secret {made.totp_secret}",
                soft_wrap=True,
                markup=False,
                highlight=False,
            )
        engine.dispose()
    console.print(
        "  A current TOTP code: python -c \"import pyotp; print(pyotp.TOTP('SECRET').now())\"",
        soft_wrap=True,
        markup=False,
    )


def run_demo(
    folder: Path | None = None,
    keep: bool = False,
    records: int = 20_000,
    keep_running: Callable[[], None] | None = None,
) -> int:
    """Run the scenario; returns a process exit code (0 when every step worked).

    With `keep_running`, the consortium stays up (consoles included) until it returns.
    """
    root = folder or Path(tempfile.mkdtemp(prefix="gateway-demo-"))
    try:
        with console.status("creating the consortium: CA, node keys, signed directory"):
            consortium = Consortium.create(root, consoles=True)
        console.print(f"consortium [bold]{consortium.name}[/] in {root}")
        wanted = prepare(consortium, records)
        with processes(consortium) as procs:
            start(consortium, procs)
            demo_logins(consortium)
            police = open_node(consortium.node_config("police-1"))
            try:
                found = query(police, consortium, wanted)
                officer, approver = staff(police)
                executed = act(police, officer, approver, wanted, found)
                send = four_eyes(police, officer, approver)
                funds = fund_control(police, send, wanted, found)
                alerted = teller_alert(consortium, police, officer, approver, wanted, found)
            finally:
                police.client.close()
            refused = refuse_listed_applicant(consortium, console)
            verified = verify_as_regulator(consortium)
            if keep_running is not None:
                console.print("[bold]consortium and consoles running; Ctrl-C stops them[/]")
                keep_running()
        expected = {i: s.held_by for i, s in enumerate(wanted) if s.held_by}
        ok = (
            found == expected
            and executed == 1
            and funds == FUND_STEPS
            and alerted
            and refused
            and verified
        )
        summary = Table(title="Summary", show_header=False)
        summary.add_row(
            "suspects matched", f"{len(found)} of {len(wanted)} (expected {len(expected)})"
        )
        summary.add_row("number suspended", f"{executed} of 1, receipt received")
        summary.add_row(
            "fund-control steps executed", f"{funds} of {FUND_STEPS}, receipts received"
        )
        summary.add_row("teller's alert", "stop-payment executed" if alerted else "NOT executed")
        summary.add_row("listed applicant refused", "yes, the other opened" if refused else "NO")
        summary.add_row("audit log", "verified" if verified else "NOT verified")
        console.print(summary)
        console.print("[bold green]demo complete[/]" if ok else "[bold red]demo failed[/]")
        return 0 if ok else 1
    finally:
        if not keep and folder is None:
            shutil.rmtree(root, ignore_errors=True)
