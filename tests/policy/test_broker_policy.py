"""The shipped broker policy, as a decision table over the seed consortium.

Each row says who sends what to whom in which context, whether it passes, and which
policies decide it: the permit that allows it, the forbids that deny it, or none for a
default deny (no permit matched).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gateway.policy import ContextValue, Party, PolicyEngine, PolicyRequest
from tests.policy.conftest import (
    BANK_A,
    BANK_B,
    BROKER_NODE,
    CARRIER,
    POLICE,
    REGULATOR,
    alert,
    bare,
    case,
)


@dataclass(frozen=True)
class Row:
    name: str
    sender: Party
    recipient: Party
    kind: str
    context: dict[str, ContextValue]
    allowed: bool
    policy_ids: tuple[str, ...] = ()


# fmt: off
ALLOWED = [
    Row("police match query to bank", POLICE, BANK_A, "MATCH_QUERY", case(batch_size=100), True, ("police-match-query",)),
    Row("police match query to carrier", POLICE, CARRIER, "MATCH_QUERY", case(batch_size=1), True, ("police-match-query",)),
    Row("police query at the batch cap", POLICE, BANK_B, "MATCH_QUERY", case(batch_size=10000), True, ("police-match-query",)),
    Row("police query at the hourly quota", POLICE, BANK_A, "MATCH_QUERY", case(batch_size=5, sender_kind_last_hour=200), True, ("police-match-query",)),
    Row("police PSI with bank", POLICE, BANK_A, "PSI_REQUEST", case(batch_size=5000), True, ("police-psi-request",)),
    Row("police PSI with carrier", POLICE, CARRIER, "PSI_REQUEST", case(batch_size=5000), True, ("police-psi-request",)),
    Row("bank PSI with carrier", BANK_A, CARRIER, "PSI_REQUEST", case(batch_size=800), True, ("bank-carrier-psi-request",)),
    Row("carrier PSI with bank", CARRIER, BANK_B, "PSI_REQUEST", case(batch_size=800), True, ("bank-carrier-psi-request",)),
    Row("bank answers police match query", BANK_A, POLICE, "MATCH_RESPONSE", bare(reply_to="m-1"), True, ("member-match-response",)),
    Row("carrier answers police match query", CARRIER, POLICE, "MATCH_RESPONSE", bare(reply_to="m-1"), True, ("member-match-response",)),
    Row("bank answers police PSI", BANK_A, POLICE, "PSI_RESPONSE", bare(reply_to="m-1"), True, ("member-psi-response-to-police",)),
    Row("carrier answers bank PSI", CARRIER, BANK_A, "PSI_RESPONSE", case(reply_to="m-1"), True, ("bank-carrier-psi-response",)),
    Row("bank receipt to police", BANK_A, POLICE, "ACTION_RECEIPT", bare(reply_to="m-1"), True, ("member-action-receipt",)),
    Row("carrier receipt to police", CARRIER, POLICE, "ACTION_RECEIPT", bare(reply_to="m-1"), True, ("member-action-receipt",)),
    Row("carrier flags numbers to police", CARRIER, POLICE, "FLAGGED_NUMBERS", case(), True, ("carrier-flagged-numbers",)),
    Row("police freeze with legal basis", POLICE, BANK_A, "FREEZE", case(amount_minor=500_000, duration_hours=720), True, ("police-freeze",)),
    Row("police freeze whole balance 180 days", POLICE, BANK_A, "FREEZE", case(whole_balance=True, duration_hours=4320), True, ("police-freeze",)),
    Row("police stop-payment 48 h", POLICE, BANK_A, "STOP_PAYMENT", case(amount_minor=1, duration_hours=48), True, ("police-stop-payment",)),
    Row("police stop-payment whole balance 1 h", POLICE, BANK_B, "STOP_PAYMENT", case(whole_balance=True, duration_hours=1), True, ("police-stop-payment",)),
    Row("police extend 180 days", POLICE, BANK_A, "EXTEND", case(duration_hours=4320), True, ("police-extend",)),
    Row("police release", POLICE, BANK_A, "RELEASE", case(), True, ("police-release",)),
    # alerts (bank- and carrier-initiated)
    Row("bank reports a suspicious account", BANK_A, POLICE, "SUSPICIOUS_ACCOUNT", alert(), True, ("bank-suspicious-account",)),
    Row("carrier reports a suspicious number", CARRIER, POLICE, "SUSPICIOUS_NUMBER", alert(), True, ("carrier-suspicious-number",)),
    Row("bank's 60th alert this hour", BANK_B, POLICE, "SUSPICIOUS_ACCOUNT", alert(sender_kind_last_hour=60, payload_bytes=8192), True, ("bank-suspicious-account",)),
    Row("police inquiry of a year", POLICE, BANK_A, "INQUIRY", case(duration_hours=8784), True, ("police-inquiry",)),
    Row("police inquiry to a carrier", POLICE, CARRIER, "INQUIRY", case(duration_hours=24), True, ("police-inquiry",)),
    Row("police inquiry over a year", POLICE, BANK_A, "INQUIRY", case(duration_hours=8785), False, ()),
    Row("bank inquiry", BANK_A, CARRIER, "INQUIRY", case(duration_hours=24), False, ("forbid-actions-from-non-police",)),
    Row("police return of funds", POLICE, BANK_A, "RETURN_FUNDS", case(amount_minor=1), True, ("police-return-funds",)),
    Row("police return of the whole balance", POLICE, BANK_A, "RETURN_FUNDS", case(whole_balance=True), False, ()),
    Row("police return of nothing", POLICE, BANK_A, "RETURN_FUNDS", case(amount_minor=0), False, ()),
    Row("police return to a carrier", POLICE, CARRIER, "RETURN_FUNDS", case(amount_minor=1), False, ("forbid-bank-actions-to-non-banks",)),
    Row("police action at the hourly quota", POLICE, BANK_A, "RELEASE", case(sender_kind_last_hour=100), True, ("police-release",)),
    Row("police suspend number 30 days", POLICE, CARRIER, "SUSPEND_NUMBER", case(duration_hours=720), True, ("police-suspend-number",)),
    Row("police restore number", POLICE, CARRIER, "RESTORE_NUMBER", case(), True, ("police-restore-number",)),
    Row("regulator reads the audit log", REGULATOR, BROKER_NODE, "AUDIT_READ", bare(), True, ("regulator-audit-read",)),
    Row("bank reads its own audit entries", BANK_A, BROKER_NODE, "AUDIT_READ_OWN", bare(), True, ("member-audit-read-own",)),
    Row("police read their own audit entries", POLICE, BROKER_NODE, "AUDIT_READ_OWN", bare(), True, ("member-audit-read-own",)),
    Row("carrier reads its own audit entries", CARRIER, BROKER_NODE, "AUDIT_READ_OWN", bare(), True, ("member-audit-read-own",)),
    Row("regulator cosigns a checkpoint", REGULATOR, BROKER_NODE, "WITNESS_COSIGN", bare(), True, ("members-witness-cosign",)),
    Row("bank cosigns a checkpoint", BANK_A, BROKER_NODE, "WITNESS_COSIGN", bare(), True, ("members-witness-cosign",)),
    Row("police pings bank", POLICE, BANK_A, "PING", bare(), True, ("members-ping",)),
    Row("police ping at the hourly quota", POLICE, BANK_A, "PING", bare(sender_kind_last_hour=36000), True, ("members-ping",)),
    Row("bank pings carrier", BANK_A, CARRIER, "PING", bare(), True, ("members-ping",)),
    Row("regulator pings police", REGULATOR, POLICE, "PING", bare(), True, ("members-ping",)),
    Row("bank answers a ping", BANK_A, POLICE, "PONG", bare(), True, ("members-pong",)),
    Row("carrier answers the regulator's ping", CARRIER, REGULATOR, "PONG", bare(), True, ("members-pong",)),
    Row("police action at the all-actions quota", POLICE, BANK_A, "STOP_PAYMENT", case(amount_minor=1, duration_hours=1, sender_actions_last_hour=200), True, ("police-stop-payment",)),
    Row("police ping at the bytes quota", POLICE, BANK_A, "PING", bare(sender_bytes_last_hour=256 * 2**20), True, ("members-ping",)),
    Row("police ping of 256 bytes", POLICE, BANK_A, "PING", bare(payload_bytes=256), True, ("members-ping",)),
    Row("bank answers a PSI chunk over the bytes quota", BANK_A, POLICE, "PSI_RESPONSE", bare(reply_to="m-1", sender_bytes_last_hour=2**40), True, ("member-psi-response-to-police",)),
    # watchlist checks (issue 14)
    Row("bank checks the watchlist", BANK_A, POLICE, "WATCHLIST_CHECK", bare(batch_size=1), True, ("member-watchlist-check",)),
    Row("carrier checks a batch at the cap", CARRIER, POLICE, "WATCHLIST_CHECK", bare(batch_size=256), True, ("member-watchlist-check",)),
    Row("bank checks at the hourly quota", BANK_A, POLICE, "WATCHLIST_CHECK", bare(batch_size=1, sender_kind_last_hour=360000), True, ("member-watchlist-check",)),
    Row("police answer a check", POLICE, BANK_A, "WATCHLIST_ANSWER", bare(reply_to="m-1", batch_size=1), True, ("police-watchlist-answer",)),
    # filter mode
    Row("police filter query at the smallest class", POLICE, BANK_A, "FILTER_QUERY", case(batch_size=64), True, ("police-filter-query",)),
    Row("police filter query at the largest class", POLICE, CARRIER, "FILTER_QUERY", case(batch_size=8192), True, ("police-filter-query",)),
    Row("police label request naming no tag", POLICE, BANK_A, "LABEL_REQUEST", case(batch_size=0), True, ("police-label-request",)),
    Row("police label request naming tags", POLICE, CARRIER, "LABEL_REQUEST", case(batch_size=3), True, ("police-label-request",)),
    Row("police filter sync without a case", POLICE, BANK_A, "FILTER_SYNC", bare(), True, ("police-filter-sync",)),
    Row("bank answers a filter query", BANK_A, POLICE, "FILTER_ANSWER", bare(reply_to="m-1", batch_size=64), True, ("member-filter-answers",)),
    Row("carrier answers a label request", CARRIER, POLICE, "LABEL_ANSWER", bare(reply_to="m-1", batch_size=2), True, ("member-filter-answers",)),
    Row("bank sends a 3 MiB filter chunk", BANK_A, POLICE, "FILTER_CHUNK", bare(reply_to="m-1", payload_bytes=3 * 2**20 + 4096), True, ("member-filter-answers",)),
]

DENIED = [
    # freezes and stop-payments
    Row("police stop-payment without an issuing officer", POLICE, BANK_A, "STOP_PAYMENT", case(amount_minor=1, duration_hours=1, issuing_officer=""), False, ("forbid-actions-without-two-officers",)),
    Row("police freeze without an approving officer", POLICE, BANK_A, "FREEZE", case(amount_minor=1, duration_hours=1, approving_officer=""), False, ("forbid-actions-without-two-officers",)),
    Row("police release approved by its own issuer", POLICE, BANK_A, "RELEASE", case(issuing_officer="wang", approving_officer="wang"), False, ("forbid-actions-without-two-officers",)),
    Row("police suspension approved by its own issuer", POLICE, CARRIER, "SUSPEND_NUMBER", case(duration_hours=24, issuing_officer="wang", approving_officer="wang"), False, ("forbid-actions-without-two-officers",)),
    Row("police restore without officers", POLICE, CARRIER, "RESTORE_NUMBER", case(issuing_officer="", approving_officer=""), False, ("forbid-actions-without-two-officers",)),
    Row("police freeze without legal basis", POLICE, BANK_A, "FREEZE", case(amount_minor=500_000, duration_hours=720, legal_basis=""), False, ("forbid-case-work-without-case",)),
    Row("police freeze without case reference", POLICE, BANK_A, "FREEZE", case(amount_minor=500_000, duration_hours=720, case_ref=""), False, ("forbid-case-work-without-case",)),
    Row("police freeze over 180 days", POLICE, BANK_A, "FREEZE", case(amount_minor=500_000, duration_hours=4321), False),
    Row("police freeze of nothing", POLICE, BANK_A, "FREEZE", case(duration_hours=24), False),
    Row("police freeze of a negative amount", POLICE, BANK_A, "FREEZE", case(amount_minor=-5, whole_balance=True, duration_hours=24), False),
    Row("police stop-payment 49 h", POLICE, BANK_A, "STOP_PAYMENT", case(amount_minor=100, duration_hours=49), False),
    Row("police stop-payment 0 h", POLICE, BANK_A, "STOP_PAYMENT", case(amount_minor=100), False),
    Row("police extend over 180 days", POLICE, BANK_A, "EXTEND", case(duration_hours=4321), False),
    Row("police release without legal basis", POLICE, BANK_A, "RELEASE", case(legal_basis=""), False, ("forbid-case-work-without-case",)),
    Row("police actions over the hourly quota", POLICE, BANK_A, "FREEZE", case(amount_minor=1, duration_hours=1, sender_kind_last_hour=101), False, ("forbid-actions-over-quota",)),
    Row("bank freezes at police", BANK_A, POLICE, "FREEZE", case(amount_minor=1, duration_hours=1), False, ("forbid-actions-from-non-police", "forbid-bank-actions-to-non-banks")),
    Row("bank freezes at another bank", BANK_A, BANK_B, "FREEZE", case(amount_minor=1, duration_hours=1), False, ("forbid-actions-from-non-police",)),
    Row("carrier stops a payment", CARRIER, BANK_A, "STOP_PAYMENT", case(amount_minor=1, duration_hours=1), False, ("forbid-actions-from-non-police",)),
    Row("police freeze at a carrier", POLICE, CARRIER, "FREEZE", case(amount_minor=1, duration_hours=1), False, ("forbid-bank-actions-to-non-banks",)),
    # numbers
    Row("police suspend number over 30 days", POLICE, CARRIER, "SUSPEND_NUMBER", case(duration_hours=721), False),
    Row("police suspend number at a bank", POLICE, BANK_A, "SUSPEND_NUMBER", case(duration_hours=24), False, ("forbid-number-actions-to-non-carriers",)),
    Row("bank suspends a number", BANK_A, CARRIER, "SUSPEND_NUMBER", case(duration_hours=24), False, ("forbid-actions-from-non-police",)),
    # queries
    Row("police query over the batch cap", POLICE, BANK_A, "MATCH_QUERY", case(batch_size=10001), False),
    Row("police query of nothing", POLICE, BANK_A, "MATCH_QUERY", case(), False),
    Row("police query over the hourly quota", POLICE, BANK_A, "MATCH_QUERY", case(batch_size=5, sender_kind_last_hour=201), False, ("forbid-queries-over-quota",)),
    Row("police PSI over the hourly quota", POLICE, CARRIER, "PSI_REQUEST", case(batch_size=5, sender_kind_last_hour=201), False, ("forbid-queries-over-quota",)),
    Row("bank pings over the hourly quota", BANK_A, CARRIER, "PING", bare(sender_kind_last_hour=36001), False, ("forbid-pings-over-quota",)),
    # all kinds together, and bytes
    Row("police stop-payment over the all-actions quota", POLICE, BANK_A, "STOP_PAYMENT", case(amount_minor=1, duration_hours=1, sender_actions_last_hour=201), False, ("forbid-all-actions-over-quota",)),
    Row("police query over the bytes quota", POLICE, BANK_A, "MATCH_QUERY", case(batch_size=5, sender_bytes_last_hour=256 * 2**20 + 1), False, ("forbid-bytes-over-quota",)),
    Row("bank pings over the bytes quota", BANK_A, CARRIER, "PING", bare(sender_bytes_last_hour=256 * 2**20 + 1), False, ("forbid-bytes-over-quota",)),
    # sizes
    Row("police ping of 257 bytes", POLICE, BANK_A, "PING", bare(payload_bytes=257), False, ("forbid-oversized-ping-pong",)),
    Row("bank pong of 4 MiB", BANK_A, POLICE, "PONG", bare(payload_bytes=4 * 2**20), False, ("forbid-oversized-ping-pong",)),
    Row("police query larger than its batch", POLICE, BANK_A, "MATCH_QUERY", case(batch_size=10, payload_bytes=41 * 10 + 1025), False, ("forbid-oversized-match-query",)),
    Row("police PSI chunk larger than its batch", POLICE, CARRIER, "PSI_REQUEST", case(batch_size=10, payload_bytes=32 * 10 + 4097), False, ("forbid-oversized-psi-request",)),
    Row("bank PSI answer over two chunks", BANK_A, POLICE, "PSI_RESPONSE", bare(reply_to="m-1", payload_bytes=644_097), False, ("forbid-oversized-psi-response",)),
    Row("bank match answer larger than its batch", BANK_A, POLICE, "MATCH_RESPONSE", bare(reply_to="m-1", batch_size=1, payload_bytes=8192 + 4097), False, ("forbid-oversized-match-response",)),
    Row("bank match answer claiming a huge batch", BANK_A, POLICE, "MATCH_RESPONSE", bare(reply_to="m-1", batch_size=2**60, payload_bytes=10), False, ("forbid-oversized-match-response",)),
    Row("police freeze with a large payload", POLICE, BANK_A, "FREEZE", case(amount_minor=1, duration_hours=1, payload_bytes=1025), False, ("forbid-oversized-action-request",)),
    Row("bank receipt of 16 KiB and more", BANK_A, POLICE, "ACTION_RECEIPT", bare(reply_to="m-1", payload_bytes=16385), False, ("forbid-oversized-action-receipt",)),
    Row("carrier flags numbers in a large payload", CARRIER, POLICE, "FLAGGED_NUMBERS", case(batch_size=1, payload_bytes=64 + 4097), False, ("forbid-oversized-flagged-numbers",)),
    Row("police query without legal basis", POLICE, BANK_A, "MATCH_QUERY", case(batch_size=5, legal_basis=""), False, ("forbid-case-work-without-case",)),
    Row("bank match-queries a carrier", BANK_A, CARRIER, "MATCH_QUERY", case(batch_size=5), False),
    Row("bank PSI with another bank", BANK_A, BANK_B, "PSI_REQUEST", case(batch_size=5), False),
    Row("police query at the regulator", POLICE, REGULATOR, "MATCH_QUERY", case(batch_size=5), False, ("forbid-regulator-receives-other-than-pong",)),
    # answers and reports
    Row("match response without reply-to", BANK_A, POLICE, "MATCH_RESPONSE", bare(), False, ("forbid-answers-without-reply-to",)),
    Row("match response to a carrier", BANK_A, CARRIER, "MATCH_RESPONSE", bare(reply_to="m-1"), False),
    Row("police answer a bank", POLICE, BANK_A, "MATCH_RESPONSE", bare(reply_to="m-1"), False),
    Row("bank flags numbers", BANK_A, POLICE, "FLAGGED_NUMBERS", case(), False),
    Row("carrier flags numbers without a case", CARRIER, POLICE, "FLAGGED_NUMBERS", bare(), False),
    Row("carrier flags numbers to a bank", CARRIER, BANK_A, "FLAGGED_NUMBERS", case(), False),
    # alerts
    Row("bank's 61st alert this hour", BANK_A, POLICE, "SUSPICIOUS_ACCOUNT", alert(sender_kind_last_hour=61), False, ("forbid-alerts-over-quota",)),
    Row("bank alert over 8 KiB", BANK_A, POLICE, "SUSPICIOUS_ACCOUNT", alert(payload_bytes=8193), False, ("forbid-oversized-alert",)),
    Row("bank alert without a purpose", BANK_A, POLICE, "SUSPICIOUS_ACCOUNT", alert(purpose=""), False),
    Row("bank reports a suspicious number", BANK_A, POLICE, "SUSPICIOUS_NUMBER", alert(), False),
    Row("carrier reports a suspicious account", CARRIER, POLICE, "SUSPICIOUS_ACCOUNT", alert(), False),
    Row("bank alerts another bank", BANK_A, BANK_B, "SUSPICIOUS_ACCOUNT", alert(), False, ("forbid-alerts-other-than-member-to-police",)),
    Row("carrier alerts a bank", CARRIER, BANK_A, "SUSPICIOUS_NUMBER", alert(), False, ("forbid-alerts-other-than-member-to-police",)),
    Row("police alert police", POLICE, Party("police-2", "police", "Other Police"), "SUSPICIOUS_ACCOUNT", alert(), False, ("forbid-alerts-other-than-member-to-police",)),
    Row("regulator raises an alert", REGULATOR, POLICE, "SUSPICIOUS_NUMBER", alert(), False, ("forbid-alerts-other-than-member-to-police", "forbid-regulator-sends-other-than-audit-read-or-ping")),
    # the regulator
    Row("regulator queries a bank", REGULATOR, BANK_A, "MATCH_QUERY", case(batch_size=5), False, ("forbid-regulator-sends-other-than-audit-read-or-ping",)),
    Row("regulator freezes an account", REGULATOR, BANK_A, "FREEZE", case(amount_minor=1, duration_hours=1), False, ("forbid-actions-from-non-police", "forbid-regulator-sends-other-than-audit-read-or-ping")),
    Row("regulator flags numbers", REGULATOR, POLICE, "FLAGGED_NUMBERS", case(), False, ("forbid-regulator-sends-other-than-audit-read-or-ping",)),
    Row("regulator answers a ping", REGULATOR, POLICE, "PONG", bare(), False, ("forbid-regulator-sends-other-than-audit-read-or-ping",)),
    Row("regulator reads a bank's audit", REGULATOR, BANK_A, "AUDIT_READ", bare(), False),
    Row("police ping the regulator", POLICE, REGULATOR, "PING", bare(), False, ("forbid-regulator-receives-other-than-pong",)),
    Row("regulator pings the broker", REGULATOR, BROKER_NODE, "PING", bare(), False, ("forbid-broker-addressed-other-than-audit-read",)),
    # the audit log and the broker
    Row("police read the audit log", POLICE, BROKER_NODE, "AUDIT_READ", bare(), False),
    Row("bank reads the audit log", BANK_A, BROKER_NODE, "AUDIT_READ", bare(), False),
    Row("regulator asks for its own entries only", REGULATOR, BROKER_NODE, "AUDIT_READ_OWN", bare(), False, ("forbid-regulator-sends-other-than-audit-read-or-ping",)),
    Row("bank reads its own entries at another bank", BANK_A, BANK_B, "AUDIT_READ_OWN", bare(), False),
    Row("police ask a bank to cosign", POLICE, BANK_A, "WITNESS_COSIGN", bare(), False),
    Row("police query the broker", POLICE, BROKER_NODE, "MATCH_QUERY", case(batch_size=5), False, ("forbid-broker-addressed-other-than-audit-read",)),
    # membership
    Row("police ping themselves", POLICE, POLICE, "PING", bare(), False, ("forbid-self-addressed",)),
    Row("non-member pings a bank", Party("x-1", "auditor", "Someone"), BANK_A, "PING", bare(), False, ("forbid-non-members-send",)),
    Row("broker sends a ping", BROKER_NODE, BANK_A, "PING", bare(), False, ("forbid-non-members-send",)),
    # watchlist checks (issue 14)
    Row("bank checks above the hourly quota", BANK_A, POLICE, "WATCHLIST_CHECK", bare(batch_size=1, sender_kind_last_hour=360001), False, ("forbid-watchlist-checks-over-quota",)),
    Row("bank checks a batch above the cap", BANK_A, POLICE, "WATCHLIST_CHECK", bare(batch_size=257), False, ("forbid-oversized-watchlist-check",)),
    Row("bank check larger than its batch", BANK_A, POLICE, "WATCHLIST_CHECK", bare(batch_size=1, payload_bytes=41 + 1025), False, ("forbid-oversized-watchlist-check",)),
    Row("police answer larger than its batch", POLICE, BANK_A, "WATCHLIST_ANSWER", bare(reply_to="m-1", batch_size=1, payload_bytes=8192 + 4097), False, ("forbid-oversized-watchlist-answer",)),
    Row("police answer without reply-to", POLICE, BANK_A, "WATCHLIST_ANSWER", bare(batch_size=1), False, ("forbid-answers-without-reply-to",)),
    Row("police check the watchlist", POLICE, BANK_A, "WATCHLIST_CHECK", bare(batch_size=1), False),
    Row("bank checks another bank", BANK_A, BANK_B, "WATCHLIST_CHECK", bare(batch_size=1), False),
    Row("regulator checks the watchlist", REGULATOR, POLICE, "WATCHLIST_CHECK", bare(batch_size=1), False, ("forbid-regulator-sends-other-than-audit-read-or-ping",)),
    # filter mode
    Row("police filter query not padded", POLICE, BANK_A, "FILTER_QUERY", case(batch_size=100), False),
    Row("police filter query above the largest class", POLICE, BANK_A, "FILTER_QUERY", case(batch_size=16384), False),
    Row("police filter query below the smallest class", POLICE, BANK_A, "FILTER_QUERY", case(batch_size=32), False),
    Row("police filter query without a case", POLICE, BANK_A, "FILTER_QUERY", bare(batch_size=64), False, ("forbid-case-work-without-case",)),
    Row("police filter query over the hourly quota", POLICE, BANK_A, "FILTER_QUERY", case(batch_size=64, sender_kind_last_hour=201), False, ("forbid-queries-over-quota",)),
    Row("police filter query larger than its batch", POLICE, BANK_A, "FILTER_QUERY", case(batch_size=64, payload_bytes=35 * 64 + 1025), False, ("forbid-oversized-filter-query",)),
    Row("bank filter query to a carrier", BANK_A, CARRIER, "FILTER_QUERY", case(batch_size=64), False),
    Row("police label request above the largest class", POLICE, BANK_A, "LABEL_REQUEST", case(batch_size=8193), False),
    Row("police label request larger than its tags", POLICE, BANK_A, "LABEL_REQUEST", case(batch_size=1, payload_bytes=10 + 1025), False, ("forbid-oversized-label-request",)),
    Row("police filter sync over its hourly quota", POLICE, BANK_A, "FILTER_SYNC", bare(sender_kind_last_hour=601), False),
    Row("police filter sync of 1 KiB and more", POLICE, BANK_A, "FILTER_SYNC", bare(payload_bytes=1025), False, ("forbid-oversized-filter-sync",)),
    Row("carrier pulls a bank's filter", CARRIER, BANK_A, "FILTER_SYNC", bare(), False),
    Row("bank filter answer larger than its batch", BANK_A, POLICE, "FILTER_ANSWER", bare(reply_to="m-1", batch_size=64, payload_bytes=35 * 64 + 4097), False, ("forbid-oversized-filter-answer",)),
    Row("bank filter answer claiming a huge batch", BANK_A, POLICE, "FILTER_ANSWER", bare(reply_to="m-1", batch_size=2**60, payload_bytes=10), False, ("forbid-oversized-filter-answer",)),
    Row("bank label answer larger than its tags", BANK_A, POLICE, "LABEL_ANSWER", bare(reply_to="m-1", batch_size=1, payload_bytes=8192 + 4097), False, ("forbid-oversized-label-answer",)),
    Row("bank filter chunk above 3 MiB and 64 KiB", BANK_A, POLICE, "FILTER_CHUNK", bare(reply_to="m-1", payload_bytes=3 * 2**20 + 65537), False, ("forbid-oversized-filter-chunk",)),
    Row("filter chunk without reply-to", BANK_A, POLICE, "FILTER_CHUNK", bare(), False, ("forbid-answers-without-reply-to",)),
    Row("police answer a bank's filter query", POLICE, BANK_A, "FILTER_ANSWER", bare(reply_to="m-1"), False),
]
# fmt: on


@pytest.mark.parametrize("row", ALLOWED + DENIED, ids=lambda row: row.name)
def test_broker_decision_table(broker_engine: PolicyEngine, row: Row) -> None:
    decision = broker_engine.decide(PolicyRequest(row.sender, row.recipient, row.kind, row.context))
    assert decision.errors == ()
    assert (decision.allowed, decision.policy_ids) == (row.allowed, row.policy_ids)
    assert decision.policy_set_hash == broker_engine.policy_set_hash
    assert decision.subject == f"{row.kind} from {row.sender.node_id} to {row.recipient.node_id}"


@pytest.mark.parametrize("kind", ["TRANSFER", "freeze", "", "Query", "ActionRequest"])
def test_unknown_kind_is_denied(broker_engine: PolicyEngine, kind: str) -> None:
    # Action groups are Cedar actions too, but not message kinds.
    decision = broker_engine.decide(PolicyRequest(POLICE, BANK_A, kind, case(batch_size=5)))
    assert not decision.allowed
    assert decision.policy_ids == ()
    assert decision.errors == (f"unknown message kind {kind!r}",)


def test_denial_reasons_read_plainly(broker_engine: PolicyEngine) -> None:
    freeze = case(amount_minor=1, duration_hours=1, legal_basis="")
    forbidden = broker_engine.decide(PolicyRequest(POLICE, BANK_A, "FREEZE", freeze))
    assert forbidden.reason == "denied by forbid policy forbid-case-work-without-case"
    stop = case(amount_minor=1, duration_hours=49)
    unmatched = broker_engine.decide(PolicyRequest(POLICE, BANK_A, "STOP_PAYMENT", stop))
    assert unmatched.reason == "denied: no policy allows STOP_PAYMENT from police-1 to bank-a"
    allowed = broker_engine.decide(PolicyRequest(POLICE, BANK_A, "RELEASE", case()))
    assert allowed.reason == "allowed: RELEASE from police-1 to bank-a by policy police-release"


def test_every_broker_policy_decides_some_row(broker_engine: PolicyEngine) -> None:
    seen = {policy_id for row in ALLOWED + DENIED for policy_id in row.policy_ids}
    assert set(broker_engine.policy_ids) - seen == set()
