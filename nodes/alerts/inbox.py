"""The police side of alerts: take them in once, list them, open a tip-off, draft on one.

An alert is stored in the transaction that journals its message id (`nodes.runtime`),
so a redelivery after a broker restart stores nothing twice. Its reporter stays sealed
in the database: `open_reporter` opens it only for a member of staff with the
`tipoff_reader` role, and writes the opening (or the refusal) to the hash-chained staff
trail before it reveals anything, so every opening is on record for compliance. Other
officers see "reporter: sealed".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
from sqlalchemy import BigInteger, LargeBinary, String, Text, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from gateway.db import NodeBase
from gateway.envelope.build import now_ms
from gateway.envelope.sealing import SealError, unseal
from gateway.kinds import Kind
from gateway.regions import UnknownRegion, responsible
from nodes.actions.ledger import StatedTransaction
from nodes.actions.police import ActionSpec
from nodes.alerts.report import AlertError, AlertReport, Reporter, reporter_binding
from nodes.roles.base import Inbound, RoleRefusal
from nodes.staff import trail
from nodes.staff.accounts import StaffUser
from nodes.staff.drafts import DraftRefused, create_draft

if TYPE_CHECKING:
    from nodes.runtime import NodeContext

TIPOFF_READER = "tipoff_reader"
"""The staff role that may open a tip-off's reporter (`nodes.staff.accounts.ROLES`)."""

STOP_PAYMENT_HOURS = 48
"""A stop-payment drafted from an alert asks for the longest the rules allow."""


class ReceivedAlertRow(NodeBase):
    __tablename__ = "alerts_received"

    alert_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    sender: Mapped[str] = mapped_column(String(128), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    region: Mapped[str] = mapped_column(String(6))
    identifier_kind: Mapped[str] = mapped_column(String(16))
    identifier: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(32))
    seen: Mapped[str] = mapped_column(Text)
    seen_at_ms: Mapped[int] = mapped_column(BigInteger)
    branch: Mapped[str] = mapped_column(String(128))
    holder_name: Mapped[str] = mapped_column(String(64), default="")
    txn_at_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    txn_amount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    received_at_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    reporter_sealed: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    """The reporter as the bank sealed it: opened only by `open_reporter`."""
    draft_id: Mapped[str] = mapped_column(String(32), default="")
    """The action draft made from this alert, "" until one is."""


@dataclass(frozen=True)
class ReceivedAlert:
    """An alert as the police desk and CLI show it; the reporter is never in here."""

    alert_id: str
    sender: str
    kind: str
    region: str
    identifier_kind: str
    identifier: str
    category: str
    seen: str
    seen_at_ms: int
    branch: str
    holder_name: str
    txn_at_ms: int
    txn_amount_minor: int
    received_at_ms: int
    has_reporter: bool
    draft_id: str

    def __repr__(self) -> str:  # the identifier stays out of logs
        return f"ReceivedAlert({self.kind} {self.alert_id} from {self.sender})"


class AlertRefused(Exception):
    """An officer's request about an alert is refused; the message is safe to show."""


def _view(row: ReceivedAlertRow) -> ReceivedAlert:
    return ReceivedAlert(
        row.alert_id,
        row.sender,
        row.kind,
        row.region,
        row.identifier_kind,
        row.identifier,
        row.category,
        row.seen,
        row.seen_at_ms,
        row.branch,
        row.holder_name,
        row.txn_at_ms,
        row.txn_amount_minor,
        row.received_at_ms,
        bool(row.reporter_sealed),
        row.draft_id,
    )


def take_alert(inbound: Inbound, ctx: NodeContext) -> None:
    """A SUSPICIOUS_ACCOUNT or SUSPICIOUS_NUMBER reached us: check it and keep it once."""
    if inbound.session is None:
        raise RoleRefusal(grpc.StatusCode.INTERNAL, "alert delivered outside a transaction")
    header = inbound.header
    try:
        report = AlertReport.from_json(
            header.kind, inbound.payload, default_region=ctx.config.default_region
        )
    except AlertError as exc:
        raise RoleRefusal(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
    try:
        covering = responsible(report.region, ctx.client.directory().jurisdictions())
    except UnknownRegion:
        covering = ""
    if covering != ctx.node_id:
        raise RoleRefusal(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"alert: region {report.region} is not in this police node's jurisdiction",
        )
    inbound.session.add(
        ReceivedAlertRow(
            alert_id=header.message_id,
            sender=header.sender,
            kind=header.kind,
            region=report.region,
            identifier_kind=report.identifier_kind,
            identifier=report.identifier,
            category=report.category,
            seen=report.seen,
            seen_at_ms=report.seen_at_ms,
            branch=report.branch,
            holder_name=report.holder_name,
            txn_at_ms=report.txn_at_ms,
            txn_amount_minor=report.txn_amount_minor,
            received_at_ms=now_ms(),
            reporter_sealed=report.reporter_sealed,
            draft_id="",
        )
    )


def list_alerts(ctx: NodeContext, limit: int = 200) -> list[ReceivedAlert]:
    """Alerts received, newest first."""
    with Session(ctx.engine) as session:
        query = (
            select(ReceivedAlertRow).order_by(ReceivedAlertRow.received_at_ms.desc()).limit(limit)
        )
        return [_view(row) for row in session.scalars(query)]


def get_alert(ctx: NodeContext, alert_id: str) -> ReceivedAlert | None:
    with Session(ctx.engine) as session:
        row = session.get(ReceivedAlertRow, alert_id)
        return _view(row) if row is not None else None


def open_reporter(ctx: NodeContext, user: StaffUser, alert_id: str) -> Reporter:
    """The alert's reporter, for a `tipoff_reader` only; the staff trail records every
    attempt (opened, refused, none) before anything is revealed."""
    with Session(ctx.engine) as session:
        row = session.get(ReceivedAlertRow, alert_id)
        sealed = row.reporter_sealed if row is not None else None
    if user.role != TIPOFF_READER:
        trail.record(ctx.engine, user.user_id, "open_reporter", "refused", f"alert {alert_id}")
        raise AlertRefused(f"only the {TIPOFF_READER} role opens a tip-off's reporter")
    if sealed is None:
        raise AlertRefused(f"no alert {alert_id}")
    if not sealed:
        raise AlertRefused(f"alert {alert_id} names no reporter")
    trail.record(ctx.engine, user.user_id, "open_reporter", "ok", f"alert {alert_id}")
    try:
        plain = unseal(sealed, reporter_binding(alert_id), ctx.keys.sealing)
        return Reporter.from_json(plain)
    except (SealError, AlertError):
        trail.record(ctx.engine, user.user_id, "open_reporter", "failed", f"alert {alert_id}")
        raise AlertRefused(f"alert {alert_id}: the sealed reporter does not open") from None


def stop_payment_spec(alert: ReceivedAlert, case_ref: str, legal_basis: str) -> ActionSpec:
    """A stop-payment at the reporting bank on the reported account, prefilled from the
    alert: the holder and the transaction it names, its amount, 48 hours."""
    if alert.kind != Kind.SUSPICIOUS_ACCOUNT:
        raise AlertRefused("only an account alert leads to a stop-payment")
    transaction = None
    if alert.txn_at_ms:
        transaction = StatedTransaction(alert.txn_at_ms, alert.txn_amount_minor)
    return ActionSpec(
        recipient=alert.sender,
        action="STOP_PAYMENT",
        case_ref=case_ref,
        legal_basis=legal_basis,
        issuing_officer="",
        approving_officer="",
        identifier_kind=alert.identifier_kind,
        identifier=alert.identifier,
        amount_minor=alert.txn_amount_minor,
        whole_balance=alert.txn_amount_minor == 0,
        duration_hours=STOP_PAYMENT_HOURS,
        account_name=alert.holder_name,
        transaction=transaction,
    )


def draft_stop_payment(
    ctx: NodeContext, officer: StaffUser, alert_id: str, *, case_ref: str, legal_basis: str
) -> str:
    """Draft a stop-payment from the alert in one step; the four-eyes approval still
    applies (`nodes.staff.drafts`). The draft's id; the alert remembers it."""
    alert = get_alert(ctx, alert_id)
    if alert is None:
        raise AlertRefused(f"no alert {alert_id}")
    spec = stop_payment_spec(alert, case_ref, legal_basis)
    try:
        draft_id = create_draft(ctx.engine, officer, spec, default_region=ctx.config.default_region)
    except DraftRefused as exc:
        raise AlertRefused(str(exc)) from None
    with Session(ctx.engine) as session, session.begin():
        session.execute(
            update(ReceivedAlertRow)
            .where(ReceivedAlertRow.alert_id == alert_id)
            .values(draft_id=draft_id)
        )
    return draft_id
