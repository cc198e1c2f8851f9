"""A bank or carrier executing action requests and answering with signed, sealed receipts.

Runs inside the delivery's transaction (see `Inbound.session`): the adapter's changes,
the hold record and the journal row commit together, so a redelivered request returns
the first receipt and has no second effect. Business rejections (unknown account,
already frozen, ...) are receipts too, so they reach the police and the audit log.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import grpc
from sqlalchemy.orm import Session, sessionmaker

from gateway.envelope.build import Draft, now_ms
from gateway.periodic import Periodic
from gateway.telemetry import span
from gateway.v1 import gateway_pb2 as pb
from nodes.actions.accounts import SqlAccountAdapter, account_table, bank_columns
from nodes.actions.holds import stop_payments_on
from nodes.actions.inquiry import answer_inquiry
from nodes.actions.ledger import ledger_for
from nodes.actions.numbers import NumberColumns, SqlNumberAdapter, number_table
from nodes.actions.orders import HoldAdapter, Order, OrderError, Outcome, read_order
from nodes.actions.outcomes import ActionOutcomeRow
from nodes.node_policy import record_denial
from nodes.roles.base import Inbound, RoleRefusal

if TYPE_CHECKING:
    from gateway.config import NodeConfig
    from nodes.runtime import NodeContext

log = logging.getLogger(__name__)


def adapter_for(config: NodeConfig) -> HoldAdapter:
    """The configured adapter: built-in tables, or the agency's own mapped table."""
    if config.role == "bank":
        columns = bank_columns(config.adapter_table, config.adapter_columns)
        table = account_table(config.adapter_table, columns)
        return SqlAccountAdapter(table, columns, config.node_id, ledger_for(config))
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
            **({"answer": outcome.answer} if outcome.answer is not None else {}),
        },
        sort_keys=True,
    ).encode()


def account_policy(inbound: Inbound, order: Order) -> Outcome | None:
    """The bank's policy again, now that it knows the account: a refusal, or None.

    The broker cannot count stop-payments per account (the account is sealed from it),
    so the bank decides a stop-payment a second time with `account_stop_payments`.
    """
    if order.action != "STOP_PAYMENT" or inbound.session is None:
        return None
    if inbound.decide_again is None:
        return Outcome.rejected("node policy: cannot be decided outside the node runtime")
    count = stop_payments_on(inbound.session, order.identifier)
    decision = inbound.decide_again({"account_stop_payments": count})
    if decision.allowed:
        return None
    record_denial(inbound.session, inbound.header, decision.policy_set_hash, decision.reason)
    if "bank-forbids-third-stop-payment" in decision.policy_ids:
        return Outcome.rejected(
            "policy: the account was stopped twice already; a third stop-payment is "
            "refused (freeze the account instead)"
        )
    return Outcome.rejected(f"node policy: {decision.reason}")


def execute(inbound: Inbound, order: Order, ctx: NodeContext) -> Outcome:
    assert inbound.session is not None
    with span("action.execute", {"gateway.kind": order.action}) as current:
        if order.action == "INQUIRY":
            outcome = answer_inquiry(inbound.session, order, ctx.config, inbound.sender_role)
        else:
            outcome = adapter_for(ctx.config).execute(inbound.session, order, now_ms())
        current.set_attribute("gateway.outcome", outcome.outcome)
    return outcome


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
        outcome = account_policy(inbound, order) or execute(inbound, order, ctx)
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
        self._rounds = Periodic("hold-sweeper", interval_s, self._sweep_and_say, log)

    def sweep(self, now: int | None = None) -> int:
        session: Session
        with self.sessions() as session, session.begin():
            return self.adapter.release_expired(session, now if now is not None else now_ms())

    def start(self) -> None:
        self._rounds.start()

    def stop(self) -> None:
        self._rounds.stop()

    def _sweep_and_say(self) -> None:
        released = self.sweep()
        if released:
            log.info("released %d expired holds", released)
