"""What a policy decision is about: who sends what kind of message to whom, and in what context.

These types are plain, frozen values so that the broker and the nodes describe a message
the same way, and so that an audit entry can record exactly what was decided.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

ContextValue = str | int | bool
"""A context value: Cedar ``String``, ``Long`` or ``Bool``."""

MEMBER_ROLES: Final = frozenset({"police", "bank", "carrier", "regulator"})
"""Roles of consortium members, the nodes that send and receive messages."""

BROKER_ROLE: Final = "broker"
"""Role of the broker node, the resource of ``AUDIT_READ``."""

KNOWN_ROLES: Final = MEMBER_ROLES | {BROKER_ROLE}
"""Every role a policy may name; any other role literal in a policy file is a typo."""

MESSAGE_KINDS: Final = (
    "PING",
    "PONG",
    "MATCH_QUERY",
    "MATCH_RESPONSE",
    "PSI_REQUEST",
    "PSI_RESPONSE",
    "STOP_PAYMENT",
    "FREEZE",
    "EXTEND",
    "RELEASE",
    "RETURN_FUNDS",
    "INQUIRY",
    "SUSPEND_NUMBER",
    "RESTORE_NUMBER",
    "ACTION_RECEIPT",
    "FLAGGED_NUMBERS",
    "SUSPICIOUS_ACCOUNT",
    "SUSPICIOUS_NUMBER",
    "AUDIT_READ",
    "AUDIT_READ_OWN",
    "WITNESS_COSIGN",
    "WATCHLIST_CHECK",
    "WATCHLIST_ANSWER",
    "FILTER_QUERY",
    "FILTER_ANSWER",
    "LABEL_REQUEST",
    "LABEL_ANSWER",
    "FILTER_SYNC",
    "FILTER_CHUNK",
)
"""Every message kind; each is a Cedar action ``Gateway::Action::"<KIND>"``."""

CONTEXT_FIELDS: Final[Mapping[str, type]] = {
    "purpose": str,
    "legal_basis": str,
    "case_ref": str,
    "batch_size": int,
    "amount_minor": int,
    "whole_balance": bool,
    "duration_hours": int,
    "reply_to": str,
    "payload_bytes": int,
    "sender_kind_last_hour": int,
    "sender_actions_last_hour": int,
    "sender_bytes_last_hour": int,
    "account_stop_payments": int,
    "issuing_officer": str,
    "approving_officer": str,
}
"""The context record of the schema: every request carries exactly these fields."""


@dataclass(frozen=True)
class Party:
    """A node as the policies see it: its id, role and agency."""

    node_id: str
    role: str
    agency: str


BROKER: Final = Party(node_id="broker", role=BROKER_ROLE, agency="consortium")
"""A broker node as examples and tests describe it. The broker's id and agency come from
the signed directory, so engines do not pin it unless given it in ``static_parties``."""


@dataclass(frozen=True)
class PolicyRequest:
    """One message to decide: ``sender`` sends a message of ``kind`` to ``recipient``.

    ``context`` must hold exactly the fields of :data:`CONTEXT_FIELDS`; build it with
    :func:`make_context`. A missing, extra or mistyped field makes the decision a deny.
    """

    sender: Party
    recipient: Party
    kind: str
    context: Mapping[str, ContextValue]

    @property
    def summary(self) -> str:
        """The request in plain words, e.g. ``MATCH_QUERY from police-1 to bank-a``."""
        return f"{self.kind} from {self.sender.node_id} to {self.recipient.node_id}"


def make_context(
    *,
    sender_kind_last_hour: int,
    sender_actions_last_hour: int,
    sender_bytes_last_hour: int,
    payload_bytes: int = 0,
    purpose: str = "",
    legal_basis: str = "",
    case_ref: str = "",
    batch_size: int = 0,
    amount_minor: int = 0,
    whole_balance: bool = False,
    duration_hours: int = 0,
    reply_to: str = "",
    account_stop_payments: int = 0,
    issuing_officer: str = "",
    approving_officer: str = "",
) -> dict[str, ContextValue]:
    """A complete context record; absent header fields take their proto3 zero value.

    The ``sender_*_last_hour`` counts have no default: they must come from the broker's
    quota counters (`gateway.broker.quotas`), or a forgotten count would silently pass
    every quota. ``account_stop_payments`` is known only to the bank holding the account
    (it is sealed from the broker), which decides again with it before a stop-payment.
    """
    return {
        "purpose": purpose,
        "legal_basis": legal_basis,
        "case_ref": case_ref,
        "batch_size": batch_size,
        "amount_minor": amount_minor,
        "whole_balance": whole_balance,
        "duration_hours": duration_hours,
        "reply_to": reply_to,
        "payload_bytes": payload_bytes,
        "sender_kind_last_hour": sender_kind_last_hour,
        "sender_actions_last_hour": sender_actions_last_hour,
        "sender_bytes_last_hour": sender_bytes_last_hour,
        "account_stop_payments": account_stop_payments,
        "issuing_officer": issuing_officer,
        "approving_officer": approving_officer,
    }
