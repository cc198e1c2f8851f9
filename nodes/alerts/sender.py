"""The bank's or carrier's side of an alert: seal, sign, store, submit, resend.

Crash safety follows action drafts (`nodes.staff.drafts`): the signed envelope is stored
before it is submitted, and a stored alert not yet acknowledged is submitted again as
the very same envelope, which the broker answers with its first outcome. So an alert is
delivered exactly once (the police node journals it by message id) and never lost. An
alert naming a region no police node covers is refused before anything is stored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import grpc
from sqlalchemy import BigInteger, LargeBinary, String, Text, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from gateway.db import NodeBase
from gateway.envelope.build import Draft, new_message_id, now_ms
from gateway.envelope.sealing import seal
from gateway.regions import UnknownRegion, responsible
from gateway.v1 import gateway_pb2 as pb
from nodes.alerts.report import (
    KIND_OF_ROLE,
    PURPOSE,
    AlertError,
    AlertReport,
    Reporter,
    reporter_binding,
)
from nodes.broker_client import DEFINITIVE

if TYPE_CHECKING:
    from nodes.runtime import NodeContext

ALERT_LIFETIME_MS = 24 * 3600 * 1000
"""How long the broker keeps trying to deliver an alert, as for action requests."""


class SentAlertRow(NodeBase):
    __tablename__ = "alerts_sent"

    alert_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(128))
    region: Mapped[str] = mapped_column(String(6))
    category: Mapped[str] = mapped_column(String(32))
    branch: Mapped[str] = mapped_column(String(128))
    raised_by: Mapped[str] = mapped_column(String(64))
    raised_at_ms: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16), index=True)
    """signed (stored, not yet acknowledged), sent (the broker holds it), refused."""
    leaf_index: Mapped[int] = mapped_column(BigInteger, default=-1)
    reason: Mapped[str] = mapped_column(Text, default="")
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    """The signed alert, payload sealed to the police: resent as is, never re-signed."""


@dataclass(frozen=True)
class SentAlert:
    """An alert as the sender's CLI and console list it (no identifier)."""

    alert_id: str
    kind: str
    recipient: str
    region: str
    category: str
    branch: str
    raised_by: str
    raised_at_ms: int
    state: str
    leaf_index: int
    reason: str


class AlertNotSent(Exception):
    """Stored but not acknowledged yet (broker unreachable): it is resent as is."""


def _view(row: SentAlertRow) -> SentAlert:
    return SentAlert(
        row.alert_id,
        row.kind,
        row.recipient,
        row.region,
        row.category,
        row.branch,
        row.raised_by,
        row.raised_at_ms,
        row.state,
        row.leaf_index,
        row.reason,
    )


def raise_alert(
    ctx: NodeContext,
    report: AlertReport,
    *,
    raised_by: str,
    reporter: Reporter | None = None,
) -> SentAlert:
    """Check, seal to the region's police node, store, then submit. AlertError if the
    alert is refused as given (nothing stored); AlertNotSent if it is stored but the
    broker did not acknowledge it yet (`resend_pending` sends it)."""
    role = ctx.config.role
    if KIND_OF_ROLE.get(role) != report.kind:
        expected = KIND_OF_ROLE.get(role)
        raise AlertError(
            f"a {role} node raises {expected} alerts" if expected else f"a {role} node raises none"
        )
    checked = report.checked(ctx.config.default_region)
    directory = ctx.client.directory()
    try:
        recipient_id = responsible(checked.region, directory.jurisdictions())
    except UnknownRegion as exc:
        raise AlertError(f"{exc}; check the region code or ask the consortium") from None
    police = directory.get(recipient_id)
    assert police is not None
    alert_id = new_message_id()
    sealed_reporter = b""
    if reporter is not None:
        sealed_reporter = seal(
            reporter.check().to_json(), reporter_binding(alert_id), police.seal_key
        )
    body = replace(checked, reporter_sealed=sealed_reporter)
    draft = Draft(
        sender=ctx.node_id,
        recipients=[recipient_id],
        kind=str(report.kind),
        payload=body.to_json(),
        purpose=PURPOSE,
        seal_to=police.seal_key,
        lifetime_ms=ALERT_LIFETIME_MS,
        message_id=alert_id,
    )
    envelope = draft.sign(ctx.keys.signing)
    with Session(ctx.engine) as session, session.begin():
        session.add(
            SentAlertRow(
                alert_id=alert_id,
                kind=str(report.kind),
                recipient=recipient_id,
                region=checked.region,
                category=checked.category,
                branch=checked.branch,
                raised_by=raised_by,
                raised_at_ms=now_ms(),
                state="signed",
                leaf_index=-1,
                reason="",
                envelope=envelope.SerializeToString(),
            )
        )
    return _submit(ctx, alert_id)


def _submit(ctx: NodeContext, alert_id: str) -> SentAlert:
    """Submit the stored envelope and record the broker's answer."""
    with Session(ctx.engine) as session:
        row = session.get(SentAlertRow, alert_id)
        assert row is not None
        envelope = pb.Envelope.FromString(row.envelope)
        draft = Draft(
            sender=ctx.node_id,
            recipients=[row.recipient],
            kind=row.kind,
            payload=b"",
            message_id=alert_id,
        )
    try:
        result = ctx.client.submit_signed(draft, envelope)
    except grpc.RpcError as exc:
        code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
        details = (exc.details() if hasattr(exc, "details") else "") or str(code)
        if code not in DEFINITIVE:
            raise AlertNotSent(
                f"alert {alert_id} stored, not acknowledged yet ({code.name.lower()}); "
                "it is resent as is"
            ) from None
        _close(ctx, alert_id, state="refused", reason=f"broker refused: {details}"[:500])
        raise AlertError(f"the broker refused the alert: {details}") from None
    return _close(ctx, alert_id, state="sent", leaf_index=result.leaf_index)


def _close(
    ctx: NodeContext, alert_id: str, *, state: str, leaf_index: int = -1, reason: str = ""
) -> SentAlert:
    with Session(ctx.engine) as session, session.begin():
        session.execute(
            update(SentAlertRow)
            .where(SentAlertRow.alert_id == alert_id, SentAlertRow.state == "signed")
            .values(state=state, leaf_index=leaf_index, reason=reason)
        )
        row = session.get(SentAlertRow, alert_id)
        assert row is not None
        return _view(row)


def resend_pending(ctx: NodeContext) -> list[SentAlert]:
    """Submit again every stored alert the broker has not acknowledged, oldest first."""
    done = []
    for alert_id in _pending_ids(ctx):
        try:
            done.append(_submit(ctx, alert_id))
        except (AlertNotSent, AlertError):
            with Session(ctx.engine) as session:
                row = session.get(SentAlertRow, alert_id)
                assert row is not None
                done.append(_view(row))
    return done


def _pending_ids(ctx: NodeContext) -> list[str]:
    with Session(ctx.engine) as session:
        query = (
            select(SentAlertRow.alert_id)
            .where(SentAlertRow.state == "signed")
            .order_by(SentAlertRow.raised_at_ms)
        )
        return list(session.scalars(query))


def sent_alerts(ctx: NodeContext, limit: int = 200) -> list[SentAlert]:
    """This node's alerts, newest first."""
    with Session(ctx.engine) as session:
        query = select(SentAlertRow).order_by(SentAlertRow.raised_at_ms.desc()).limit(limit)
        return [_view(row) for row in session.scalars(query)]
