"""Message kinds, and how the broker routes each one.

Queries and PSI are interactive: the broker delivers them at once and returns the
answers to the sender in the same call. Action requests (stop-payment, freeze, ...) and
their receipts are durable: the broker stores them in its outbox before it acknowledges,
and delivers them with retries until the recipient answers.
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    PING = "PING"
    PONG = "PONG"
    MATCH_QUERY = "MATCH_QUERY"
    MATCH_RESPONSE = "MATCH_RESPONSE"
    PSI_REQUEST = "PSI_REQUEST"
    PSI_RESPONSE = "PSI_RESPONSE"
    STOP_PAYMENT = "STOP_PAYMENT"
    FREEZE = "FREEZE"
    EXTEND = "EXTEND"
    RELEASE = "RELEASE"
    RETURN_FUNDS = "RETURN_FUNDS"
    INQUIRY = "INQUIRY"
    SUSPEND_NUMBER = "SUSPEND_NUMBER"
    RESTORE_NUMBER = "RESTORE_NUMBER"
    ACTION_RECEIPT = "ACTION_RECEIPT"
    FLAGGED_NUMBERS = "FLAGGED_NUMBERS"
    SUSPICIOUS_ACCOUNT = "SUSPICIOUS_ACCOUNT"
    SUSPICIOUS_NUMBER = "SUSPICIOUS_NUMBER"
    AUDIT_READ = "AUDIT_READ"
    AUDIT_READ_OWN = "AUDIT_READ_OWN"
    WITNESS_COSIGN = "WITNESS_COSIGN"
    # Watchlist checks (issue 14): a bank or carrier asks the police node, blinded.
    WATCHLIST_CHECK = "WATCHLIST_CHECK"
    WATCHLIST_ANSWER = "WATCHLIST_ANSWER"
    # Filter mode (tip-off-proof matching): gateway/matching/filter_query.py, filter_sync.py.
    FILTER_QUERY = "FILTER_QUERY"
    FILTER_ANSWER = "FILTER_ANSWER"
    LABEL_REQUEST = "LABEL_REQUEST"
    LABEL_ANSWER = "LABEL_ANSWER"
    FILTER_SYNC = "FILTER_SYNC"
    FILTER_CHUNK = "FILTER_CHUNK"


FILTER_REQUESTS = frozenset({Kind.FILTER_QUERY, Kind.LABEL_REQUEST, Kind.FILTER_SYNC})
"""Filter mode's requests: interactive, sealed, each answered by its own kind."""

FILTER_ANSWERS = frozenset({Kind.FILTER_ANSWER, Kind.LABEL_ANSWER, Kind.FILTER_CHUNK})

INTERACTIVE = (
    frozenset({Kind.PING, Kind.MATCH_QUERY, Kind.PSI_REQUEST, Kind.WATCHLIST_CHECK})
    | FILTER_REQUESTS
)
"""Delivered at once; the recipients' answers come back in the Submit reply."""

ANSWERS = (
    frozenset({Kind.PONG, Kind.MATCH_RESPONSE, Kind.PSI_RESPONSE, Kind.WATCHLIST_ANSWER})
    | FILTER_ANSWERS
)
"""Only ever travel as a recipient's direct answer to an interactive message."""

CALLS = frozenset({Kind.AUDIT_READ, Kind.AUDIT_READ_OWN, Kind.WITNESS_COSIGN})
"""Policy actions of the broker's audit calls (reads, cosignatures): never sent as messages."""

ANSWER_TO = {
    Kind.PING: Kind.PONG,
    Kind.MATCH_QUERY: Kind.MATCH_RESPONSE,
    Kind.PSI_REQUEST: Kind.PSI_RESPONSE,
    Kind.WATCHLIST_CHECK: Kind.WATCHLIST_ANSWER,
    Kind.FILTER_QUERY: Kind.FILTER_ANSWER,
    Kind.LABEL_REQUEST: Kind.LABEL_ANSWER,
    Kind.FILTER_SYNC: Kind.FILTER_CHUNK,
}
"""The one kind that may answer each interactive kind."""

ACTIONS = frozenset(
    {
        Kind.STOP_PAYMENT,
        Kind.FREEZE,
        Kind.EXTEND,
        Kind.RELEASE,
        Kind.RETURN_FUNDS,
        Kind.INQUIRY,
        Kind.SUSPEND_NUMBER,
        Kind.RESTORE_NUMBER,
    }
)
"""Durable: stored in the outbox before acknowledgement, delivered until answered.

An INQUIRY changes nothing at the bank or carrier, but is durable like the others: its
answer is a receipt sealed to the police, and the request is on record as an action."""

ALERTS = frozenset({Kind.SUSPICIOUS_ACCOUNT, Kind.SUSPICIOUS_NUMBER})
"""A bank's or carrier's own report to the police node of a region (`nodes/alerts`):
durable and sealed like an action request, but no action and never answered by a receipt."""

DURABLE = ACTIONS | {Kind.ACTION_RECEIPT, Kind.FLAGGED_NUMBERS} | ALERTS

SEALED = frozenset(
    {Kind.MATCH_QUERY, Kind.MATCH_RESPONSE, Kind.PSI_REQUEST, Kind.PSI_RESPONSE}
    | ACTIONS
    | {Kind.ACTION_RECEIPT, Kind.FLAGGED_NUMBERS}
    | ALERTS
    | {Kind.WATCHLIST_CHECK, Kind.WATCHLIST_ANSWER}
    | FILTER_REQUESTS
    | FILTER_ANSWERS
)
"""Kinds whose payload may carry an identifier in a recoverable form: sealed to the recipient."""


def parse_kind(text: str) -> Kind | None:
    try:
        return Kind(text)
    except ValueError:
        return None
