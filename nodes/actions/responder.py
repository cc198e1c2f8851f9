"""A bank or carrier executing action requests and answering with signed, sealed receipts.

Runs inside the delivery's transaction (see `Inbound.session`): the adapter's changes,
the hold record and the journal row commit together, so a redelivered request returns
the first receipt and has no second effect. Business rejections (unknown account,
already frozen, ...) are receipts too, so they reach the police and the audit log.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import TYPE_CHECKING

import grpc
from sqlalchemy.orm import Session, sessionmaker

from gateway.envelope.build import Draft, now_ms
from gateway.telemetry import span
from gateway.v1 import gateway_pb2 as pb
from nodes.actions.accounts import AccountColumns, SqlAccountAdapter, account_table
from nodes.actions.numbers import NumberColumns, SqlNumberAdapter, number_table
from nodes.actions.orders import HoldAdapter, OrderError, Outcome, read_order
from nodes.actions.outcomes import ActionOutcomeRow
from nodes.roles.base import Inbound, RoleRefusal

if TYPE_CHECKING:
    from gateway.config import NodeConfig
    from nodes.runtime import NodeContext

log = logging.getLogger(__name__)


def adapter_for(config: NodeConfig) -> HoldAdapter:
    """The configured adapter: built-in tables, or the agency's own mapped table."""
    if config.role == "bank":
        columns = AccountColumns.from_config(config.adapter_columns)
        return SqlAccountAdapter(account_table(config.adapter_table, columns), columns)
    if config.role == "carrier":
        number_columns = NumberColumns.from_config(config.adapter_columns)
        return SqlNumberAdapter(number_table(config.adapter_table, number_columns), number_columns)
    raise ValueError(f"a {config.role} node executes no actions")


def receipt_payload(request_id: str, action: str, outcome: Outcome) -> bytes:
    """The receipt sealed to the police: what was done, never the identifier."""
    return json.dumps(
        {
            "request_id": request_id,
            "action": action,
            "outcome": outcome.outcome,
            "reason": outcome.reason,
            "executed_amount_minor": outcome.executed_amount_minor,
            "effective_at_ms": outcome.effective_at_ms,
            "hold_expires_at_ms": outcome.hold_expires_at_ms,
        },
        sort_keys=True,
    ).encode()


def execute_action(inbound: Inbound, ctx: NodeContext) -> Draft:
    """Execute one request through the adapter; answer with an ACTION_RECEIPT."""
    if inbound.session is None:
        raise RoleRefusal(grpc.StatusCode.INTERNAL, "action delivered outside a transaction")
    header = inbound.header
    try:
        order = read_order(header, inbound.payload, ctx.config.role, ctx.config.default_region)
    except OrderError as exc:
        outcome = Outcome.rejected(str(exc))
    else:
        with span("action.execute", {"gateway.kind": header.kind}) as current:
            outcome = adapter_for(ctx.config).execute(inbound.session, order, now_ms())
            current.set_attribute("gateway.outcome", outcome.outcome)
    inbound.session.add(
        ActionOutcomeRow(
            request_id=header.message_id,
            outcome=outcome.outcome,
            reason=outcome.reason[:500],
            decided_at_ms=now_ms(),
        )
    )
    log.info("action %s request=%s outcome=%s", header.kind, header.message_id, outcome.outcome)
    return ctx.answer(
        inbound,
        "ACTION_RECEIPT",
        receipt_payload(header.message_id, header.kind, outcome),
        outcome=outcome.outcome,
        terms=pb.ActionTerms(
            action=header.kind,
            target_request_id=header.terms.target_request_id,
            executed_amount_minor=outcome.executed_amount_minor,
            effective_at_ms=outcome.effective_at_ms,
            hold_expires_at_ms=outcome.hold_expires_at_ms,
            currency=header.terms.currency,
        ),
    )


class HoldSweeper:
    """Releases holds and suspensions whose time is up, every `interval_s` seconds."""

    def __init__(self, ctx: NodeContext, interval_s: float = 5.0) -> None:
        self.adapter = adapter_for(ctx.config)
        self.sessions = sessionmaker(ctx.engine)
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hold-sweeper", daemon=True)

    def sweep(self, now: int | None = None) -> int:
        session: Session
        with self.sessions() as session, session.begin():
            return self.adapter.release_expired(session, now if now is not None else now_ms())

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                released = self.sweep()
            except Exception:  # keep sweeping; the error is in the log
                log.exception("hold sweep failed")
                continue
            if released:
                log.info("released %d expired holds", released)
