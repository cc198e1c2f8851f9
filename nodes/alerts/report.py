"""What an alert says, as the sealed payload carries it, and how it is checked.

A bank reports a suspicious account or card (SUSPICIOUS_ACCOUNT), a carrier a suspicious
number (SUSPICIOUS_NUMBER), to the police node whose jurisdiction covers the region
(`gateway.regions`). The payload is sealed to that police node; inside it, the reporter
(a teller, or a member of the public through the bank) is sealed a second time, bound
to the alert's id, so that the police node stores it unopened and opens it only for an
officer with the `tipoff_reader` role (`nodes.alerts.inbox`).

Checked on both sides with the same code: a sender refuses to send what the police
would refuse to take.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, replace

from gateway.identifiers import IdentifierKind, InvalidIdentifier, normalise
from gateway.kinds import Kind
from gateway.regions import check_region

KIND_OF_ROLE = {"bank": Kind.SUSPICIOUS_ACCOUNT, "carrier": Kind.SUSPICIOUS_NUMBER}
"""The one alert kind each role raises."""

IDENTIFIER_KINDS = {
    Kind.SUSPICIOUS_ACCOUNT: (IdentifierKind.BANK_ACCOUNT, IdentifierKind.BANK_CARD),
    Kind.SUSPICIOUS_NUMBER: (IdentifierKind.PHONE,),
}
"""What each alert kind may name."""

CATEGORIES = {
    Kind.SUSPICIOUS_ACCOUNT: (
        "unusual_withdrawal",
        "victim_transfer",
        "mule_pattern",
        "rented_or_sold",
        "other",
    ),
    Kind.SUSPICIOUS_NUMBER: (
        "fraud_calls",
        "mass_messaging",
        "sim_box",
        "rented_or_sold",
        "other",
    ),
}
"""What was seen, as a code the police desk can sort by; details go in free text."""

REPORTER_ROLES = ("teller", "public")
"""Who tipped the bank or carrier off: one of its staff, or a member of the public."""

SEEN_LIMIT = 1000
BRANCH_LIMIT = 128
HOLDER_LIMIT = 64
REPORTER_FIELD_LIMIT = 200
PURPOSE = "suspicious activity report"
"""The header's purpose: alerts carry no case yet (the police open one if they act)."""


class AlertError(ValueError):
    """An alert cannot be raised or taken as given; the message says what is wrong and
    never repeats the identifier."""


@dataclass(frozen=True)
class Reporter:
    """Who reported it. Sealed separately: only a `tipoff_reader` at the police opens it."""

    role: str
    name: str
    contact: str = ""
    staff_id: str = ""

    def __repr__(self) -> str:  # a tip-off's identity stays out of logs
        return f"Reporter({self.role}, sealed)"

    def check(self) -> Reporter:
        if self.role not in REPORTER_ROLES:
            raise AlertError(f"reporter role: one of {', '.join(REPORTER_ROLES)}")
        if not self.name.strip():
            raise AlertError("reporter name: must not be empty")
        for field in ("name", "contact", "staff_id"):
            if len(getattr(self, field)) > REPORTER_FIELD_LIMIT:
                raise AlertError(f"reporter {field}: at most {REPORTER_FIELD_LIMIT} characters")
        return self

    def to_json(self) -> bytes:
        fields = {"role": self.role, "name": self.name, "contact": self.contact}
        fields["staff_id"] = self.staff_id
        return json.dumps(fields, ensure_ascii=False, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Reporter:
        try:
            fields = json.loads(data)
            return cls(
                str(fields["role"]),
                str(fields["name"]),
                str(fields.get("contact", "")),
                str(fields.get("staff_id", "")),
            ).check()
        except (ValueError, KeyError, TypeError, RecursionError):
            raise AlertError("reporter: the sealed reporter is not well-formed") from None


@dataclass(frozen=True)
class AlertReport:
    """The alert's sealed payload. `identifier` is normalised."""

    kind: str
    region: str
    identifier_kind: str
    identifier: str
    category: str
    seen: str
    seen_at_ms: int
    branch: str
    reporter_sealed: bytes = b""
    """The reporter, sealed to the police node and bound to this alert's id; b"" if none."""
    holder_name: str = ""
    """An account's holder as the bank knows it: a stop-payment must state it."""
    txn_at_ms: int = 0
    txn_amount_minor: int = 0
    """The suspicious transaction (time, amount in fen), if there is one: a stop-payment
    must state it, so the police can draft one from the alert in one step."""

    def __repr__(self) -> str:  # the identifier and the tip-off stay out of logs
        return f"AlertReport({self.kind}, region={self.region}, category={self.category})"

    def to_json(self) -> bytes:
        fields = {
            "v": 1,
            "region": self.region,
            "identifier_kind": self.identifier_kind,
            "identifier": self.identifier,
            "category": self.category,
            "seen": self.seen,
            "seen_at_ms": self.seen_at_ms,
            "branch": self.branch,
            "reporter": base64.b64encode(self.reporter_sealed).decode(),
            "holder_name": self.holder_name,
            "txn_at_ms": self.txn_at_ms,
            "txn_amount_minor": self.txn_amount_minor,
        }
        return json.dumps(fields, ensure_ascii=False, sort_keys=True).encode()

    @classmethod
    def from_json(cls, kind: str, data: bytes, *, default_region: str = "CN") -> AlertReport:
        """Parse and check a received payload exactly as a sender checks it."""
        try:
            fields = json.loads(data)
            if not isinstance(fields, dict) or fields.get("v") != 1:
                raise AlertError("alert: payload is not a version 1 alert")
            report = cls(
                kind=kind,
                region=str(fields["region"]),
                identifier_kind=str(fields["identifier_kind"]),
                identifier=str(fields["identifier"]),
                category=str(fields["category"]),
                seen=str(fields["seen"]),
                seen_at_ms=int(fields["seen_at_ms"]),
                branch=str(fields["branch"]),
                reporter_sealed=base64.b64decode(str(fields.get("reporter", "")), validate=True),
                holder_name=str(fields.get("holder_name", "")),
                txn_at_ms=int(fields.get("txn_at_ms", 0)),
                txn_amount_minor=int(fields.get("txn_amount_minor", 0)),
            )
        except AlertError:
            raise
        except (ValueError, KeyError, TypeError, RecursionError, OverflowError):
            raise AlertError("alert: payload is not well-formed") from None
        return report.checked(default_region)

    def checked(self, default_region: str = "CN") -> AlertReport:
        """This report with its identifier normalised, if every field is acceptable."""
        kind = Kind(self.kind) if self.kind in IDENTIFIER_KINDS else None
        if kind is None:
            raise AlertError(f"alert kind: {' or '.join(sorted(IDENTIFIER_KINDS))}")
        try:
            check_region(self.region)
        except ValueError as exc:
            raise AlertError(str(exc)) from None
        allowed = IDENTIFIER_KINDS[kind]
        if self.identifier_kind not in allowed:
            names = " or ".join(allowed)
            raise AlertError(f"identifier kind: a {kind} alert names a {names}")
        try:
            identifier = normalise(
                self.identifier_kind, self.identifier, default_region=default_region
            )
        except InvalidIdentifier as exc:
            raise AlertError(f"identifier: {exc}") from None
        if self.category not in CATEGORIES[kind]:
            raise AlertError(f"category: one of {', '.join(CATEGORIES[kind])}")
        if not self.seen.strip():
            raise AlertError("seen: say what was seen")
        if len(self.seen) > SEEN_LIMIT:
            raise AlertError(f"seen: at most {SEEN_LIMIT} characters")
        if not self.branch.strip() or len(self.branch) > BRANCH_LIMIT:
            raise AlertError(f"branch: the reporting branch, 1 to {BRANCH_LIMIT} characters")
        if self.seen_at_ms <= 0:
            raise AlertError("seen at: a time after 1970")
        if len(self.holder_name) > HOLDER_LIMIT:
            raise AlertError(f"holder name: at most {HOLDER_LIMIT} characters")
        if self.holder_name and kind != Kind.SUSPICIOUS_ACCOUNT:
            raise AlertError("holder name: only an account alert names a holder")
        if (self.txn_at_ms > 0) != (self.txn_amount_minor > 0) or min(
            self.txn_at_ms, self.txn_amount_minor
        ) < 0:
            raise AlertError("transaction: give both its time and a positive amount, or neither")
        if self.txn_at_ms and kind != Kind.SUSPICIOUS_ACCOUNT:
            raise AlertError("transaction: only an account alert names a transaction")
        return replace(self, identifier=identifier.value)


def reporter_binding(alert_id: str) -> str:
    """What the reporter's sealed box is bound to: this alert, and its reporter field
    only (so it cannot be swapped into another alert, nor read as the alert itself)."""
    return f"{alert_id}/reporter"
